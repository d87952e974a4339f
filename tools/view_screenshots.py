"""Screenshots of every `stl view` page for the docs (docs/img/view_*.png), taken in headless Chromium.

Each page is opened from file:// with every other request aborted; a screenshot whose grey levels are all alike
(a blank or broken page) is an error. Usage::

    python tools/view_screenshots.py --tree T.json.gz --results R.jsonl --compare A.jsonl B.jsonl \
        --dataset D.jsonl --run RUN_DIR [--out docs/img]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from langgraph_stl.envs.webshop.browser_env import chromium_executable
from langgraph_stl.view import View, load_view, write_html
from tests.test_view import non_blank

DIVERGED = "#compare tbody tr[data-diverge-step]:not([data-diverge-step='']) >> nth=0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--compare", type=Path, nargs=2, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    shots: list[tuple[str, View, list[str]]] = [
        ("tree", load_view(args.tree), [".tn.chosen > .row >> nth=1"]),
        ("results", load_view(args.results), ["#tasks tbody tr >> nth=0"]),
        ("compare", load_view(args.compare[0], compare=args.compare[1]), [DIVERGED]),
        ("dataset", load_view(args.dataset), ["#dataset details >> nth=0"]),
        ("run", load_view(args.run), ["[data-iteration='1'] details >> nth=0"]),
    ]
    from PIL import Image
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable())
        for name, view, clicks in shots:
            context = browser.new_context(viewport={"width": 1280, "height": 1150}, device_scale_factor=1)
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
            page = context.new_page()
            page.goto(write_html(view, Path(tmp) / f"{name}.html").as_uri())
            page.wait_for_selector("html[data-ready]")
            for selector in clicks:
                page.locator(selector).first.click()
            page.evaluate("window.scrollTo(0, 0)")  # a click may scroll the task detail into view
            png = page.screenshot(full_page=False)
            if not non_blank(png):
                print(f"error: the {name} page looks blank", file=sys.stderr)
                return 1
            target = args.out / f"view_{name}.png"
            Image.open(io.BytesIO(png)).save(target, optimize=True)
            print(target, f"{target.stat().st_size // 1024} KiB")
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
