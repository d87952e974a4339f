"""How fast `stl view` pages open: synthetic search trees of several sizes in headless Chromium from file://.

Reports, per size, the page size and (median of ``--repeat`` loads) the wall time until the page says it is ready,
the page's own clock for parse + render (``window.stlReady``), and opening a subtree + selecting a node + one
arrow key. Usage: ``python tools/bench_view.py [--sizes 1000,5000,20000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph_stl.envs.webshop.browser_env import chromium_executable
from langgraph_stl.evaluation.trees import write_tree
from langgraph_stl.view import load_view, write_html
from tests.test_view import OPEN_AND_ANSWER, synthetic_tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores")
    print("| nodes | page MB | wall to ready (s) | page: parse + render (ms) | page: open + select + key (ms) |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable())
        for size in (int(s) for s in args.sizes.split(",")):
            tree = write_tree(synthetic_tree(size), Path(tmp) / f"t{size}.json.gz")
            html = write_html(load_view(tree), Path(tmp) / f"t{size}.html")
            walls, ready, answer = [], [], []
            for _ in range(args.repeat):
                page = browser.new_page()
                start = time.perf_counter()
                page.goto(html.as_uri())
                page.wait_for_selector("html[data-ready]")
                walls.append(time.perf_counter() - start)
                ready.append(page.evaluate("window.stlReady"))
                answer.append(page.evaluate(OPEN_AND_ANSWER) - ready[-1])
                page.close()
            print(
                f"| {size:,} | {html.stat().st_size / 1e6:.1f} | {statistics.median(walls):.2f} | "
                f"{statistics.median(ready):.0f} | {statistics.median(answer):.1f} |"
            )
        browser.close()
    print(f"load average after {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
