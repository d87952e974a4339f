"""WebShop benchmarks for docs/BENCHMARKS.md: independent sections, chosen with ``--only``.

    python tools/bench_webshop.py                    # every section
    python tools/bench_webshop.py --only search      # BM25 index build and query latency (1k and 100k documents)

Each section returns rows of (what, value, unit, load average at the time of measuring); the script prints them as a
Markdown table (and as JSON with ``--json PATH``). The machine is shared and noisy: read numbers with their load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph_stl.envs.webshop import analyzer
from langgraph_stl.envs.webshop.search_engine import SearchEngine, catalog_documents
from langgraph_stl.paths import data_file


@dataclass
class Row:
    what: str
    value: float
    unit: str
    load: str


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _row(what: str, value: float, unit: str) -> Row:
    return Row(what, round(value, 3), unit, _load())


# ---------------------------------------------------------------------------------------------------------------------
# search


def _realistic_queries() -> dict[str, list[str]]:
    """Human search queries typed by MTurk workers, and the synthetic instructions of the 1k catalogue (long)."""
    goal_map = json.loads(data_file("webshop/goal_query_map.json").read_text())
    human = sorted({q for qs in goal_map.values() for q in qs})
    items = json.loads(data_file("webshop/items_ins_v2_1000.json").read_text())
    instructions = sorted({v["instruction"] for v in items.values() if v.get("instruction")})
    return {"human queries": human, "instructions": instructions}


def _build(documents: list[tuple[str, str]]) -> tuple[SearchEngine, float, float]:
    """A fresh index and its wall and CPU build seconds (CPU time is the stabler number on a busy machine)."""
    analyzer.analyze_chunk.cache_clear()
    analyzer.porter_stem.cache_clear()
    wall, cpu = time.perf_counter(), time.process_time()
    engine = SearchEngine(documents)
    return engine, time.perf_counter() - wall, time.process_time() - cpu


def _latency_rows(engine: SearchEngine, queries: dict[str, list[str]]) -> Iterator[Row]:
    """Wall-clock p50/p99 per query set, plus CPU-time p99: on a shared 2-core machine the wall p99 is mostly time
    spent preempted, which the thread's CPU time leaves out."""
    for name, qs in queries.items():
        for q in qs[:20]:  # warm the analyzer caches, as in a running server
            engine.search(q)
        wall, cpu = [], []
        for q in qs:
            w, c = time.perf_counter_ns(), time.thread_time_ns()
            engine.search(q)
            cpu.append(time.thread_time_ns() - c)
            wall.append(time.perf_counter_ns() - w)
        wall_ms, cpu_ms = np.array(wall, dtype=np.float64) / 1e6, np.array(cpu, dtype=np.float64) / 1e6
        what = f"{len(engine)} docs, {len(qs)} {name}"
        yield _row(f"query p50, wall, {what}", float(np.percentile(wall_ms, 50)), "ms")
        yield _row(f"query p99, wall, {what}", float(np.percentile(wall_ms, 99)), "ms")
        yield _row(f"query p99, CPU, {what}", float(np.percentile(cpu_ms, 99)), "ms")


def bench_search(args: argparse.Namespace) -> Iterator[Row]:
    """Index build and top-50 query latency on the 1k catalogue and on copies of it with distinct ids."""
    docs = catalog_documents()
    queries = _realistic_queries()
    copies = max(1, args.big // len(docs))
    big = [(f"{doc_id}-{r:03d}", text) for r in range(copies) for doc_id, text in docs]
    for corpus, repeat, label in ((docs, args.repeat, "the 1k catalogue"), (big, 1, f"{copies} copies of it")):
        runs = [_build(corpus) for _ in range(repeat)]
        engine = runs[-1][0]
        what = f"build index, {len(corpus)} docs ({label}, cold analyzer cache, median of {repeat})"
        yield _row(f"{what}, wall", statistics.median(r[1] for r in runs), "s")
        yield _row(f"{what}, CPU", statistics.median(r[2] for r in runs), "s")
        del runs
        yield from _latency_rows(engine, queries)
        del engine


SECTIONS: dict[str, Callable[[argparse.Namespace], Iterator[Row]]] = {"search": bench_search}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only this section (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="builds of the 1k index to take the median of")
    parser.add_argument("--big", type=int, default=100_000, help="documents in the replicated catalogue")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    print("| what | value | unit | load avg 1/5/15 min |\n|---|---:|---|---|")
    for name in args.only or sorted(SECTIONS):
        for row in SECTIONS[name](args):
            rows.append(row)
            print(f"| {row.what} | {row.value:g} | {row.unit} | {row.load} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
