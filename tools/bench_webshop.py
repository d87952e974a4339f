"""WebShop benchmarks for docs/BENCHMARKS.md: independent sections, chosen with ``--only``.

    python tools/bench_webshop.py                    # every section
    python tools/bench_webshop.py --only search      # BM25 index build and query latency (1k and 100k documents)
    python tools/bench_webshop.py --only env-http --only env-browser --only server   # environments and server

Each section returns rows of (what, value, unit, load average at the time of measuring); the script prints them as a
Markdown table (and as JSON with ``--json PATH``). The machine is shared and noisy: read numbers with their load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


# ---------------------------------------------------------------------------------------------------------------------
# environments and server
#
# The server runs as its own process (``python -m langgraph_stl webshop serve --attrs``), as a user runs it, so client
# and server do not share a GIL. Besides wall-clock latency, the CPU time a step costs each process is reported: it is
# what an idle machine would approach, and contention inflates it far less than wall time.

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux ``/proc``), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants_cpu_seconds(root: int, exclude: int) -> float:
    """CPU time of every live descendant of ``root`` (Playwright's driver and Chromium), except ``exclude``'s tree."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])

    def under(pid: int) -> bool:
        while pid in parents and pid not in (root, exclude, 0, 1):
            pid = parents[pid]
        return pid == root

    return sum(cpu_seconds(pid) for pid in parents if pid != root and under(pid))


@dataclass
class Shop:
    url: str
    pid: int


@contextmanager
def shop_process(goals: str = "synthetic") -> Iterator[Shop]:
    """``stl webshop serve --attrs`` on a free loopback port, as a child process."""
    import httpx

    from langgraph_stl.envs.webshop.server import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "langgraph_stl", "webshop", "serve", "--port", str(port), "--goals", goals, "--attrs"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/fixed_0", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        yield Shop(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def _episode_actions(goals: list[dict], products: dict[str, dict], index: int) -> list[str]:
    """A winning episode for synthetic goal ``index`` with a detour through every page type (11+ steps)."""
    target = products[goals[index]["asin"]]
    actions = [f"search[{target['Title'][:80]}]", "click[Next >]", "click[< Prev]", f"click[{target['asin']}]"]
    actions += [f"click[{v}]" for v in goals[index]["goal_options"].values()]
    return [*actions, "click[Description]", "click[< Prev]", "click[Features]", "click[< Prev]", "click[Buy Now]"]


def _run_episodes(step: Callable[[dict, str], object], reset: Callable[[str], dict], episodes: int) -> list[float]:
    """Wall seconds of every step of ``episodes`` episodes (goals 0, 1, ...)."""
    from langgraph_stl.envs.webshop import load_webshop

    data = load_webshop(goals="synthetic", seed=0)
    times: list[float] = []
    for index in range(episodes):
        state = reset(f"fixed_{index}")
        for action in _episode_actions(data.goals, data.products_by_asin, index):
            start = time.perf_counter()
            result = step(state, action)
            times.append(time.perf_counter() - start)
            if result.valid:  # type: ignore[attr-defined]
                state = result.state  # type: ignore[attr-defined]
    return times


def _latency(label: str, times: list[float]) -> Iterator[Row]:
    ms = np.array(times, dtype=np.float64) * 1000
    for pct in (50, 99):
        yield _row(f"{label} p{pct}", float(np.percentile(ms, pct)), "ms")


def bench_env_http(args: argparse.Namespace) -> Iterator[Row]:
    """WebShopHttpEnv.step over winning episodes with detours through every page type."""
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

    with shop_process() as shop, WebShopHttpEnv(shop.url) as env:
        _run_episodes(env.step, env.reset, 2)  # warm-up
        client, server = time.process_time(), cpu_seconds(shop.pid)
        times = _run_episodes(env.step, env.reset, args.episodes)
        client, server = time.process_time() - client, cpu_seconds(shop.pid) - server
        requests = len(times) + args.episodes  # resets are requests too
        label = f"HTTP env step, {len(times)} steps ({args.episodes} episodes)"
        yield from _latency(label, times)
        yield _row("HTTP env CPU per request, client (httpx, parse, render)", client / requests * 1000, "ms")
        yield _row("HTTP env CPU per request, server", server / requests * 1000, "ms")


def bench_env_browser(args: argparse.Namespace) -> Iterator[Row]:
    """WebShopBrowserEnv.step (headless Chromium, real clicks) over the same episodes."""
    from langgraph_stl.envs.webshop.browser_env import WebShopBrowserEnv

    episodes = max(1, args.episodes // 4)
    with shop_process() as shop:
        env = WebShopBrowserEnv(shop.url, max_pages=1)
        try:
            _run_episodes(env.step, env.reset, 1)  # warm-up: launches Chromium
            me = os.getpid()
            before = time.process_time(), descendants_cpu_seconds(me, shop.pid), cpu_seconds(shop.pid)
            times = _run_episodes(env.step, env.reset, episodes)
            after = time.process_time(), descendants_cpu_seconds(me, shop.pid), cpu_seconds(shop.pid)
        finally:
            env.close()
        steps = len(times) + episodes
        python, browser, server = ((b - a) / steps * 1000 for a, b in zip(before, after, strict=True))
        yield from _latency(f"browser env step, {len(times)} steps ({episodes} episodes)", times)
        yield _row("browser env CPU per step, Python", python, "ms")
        yield _row("browser env CPU per step, Chromium and Playwright driver", browser, "ms")
        yield _row("browser env CPU per step, server", server, "ms")


def bench_server(args: argparse.Namespace) -> Iterator[Row]:
    """Requests/s of ``stl webshop serve`` (one uvicorn worker) under concurrent loopback clients, bounded."""
    import httpx

    from langgraph_stl.envs.webshop import urls

    paths = [
        urls.search_results_path("fixed_0", ["men", "shorts"], 1),
        urls.item_page_path("fixed_0", "B09PYSKD7H", ["men", "shorts"], 1, {"color": "navy"}),
        urls.search_results_path("fixed_0", ["organic", "green", "tea"], 2),
        urls.item_sub_page_path("fixed_0", "B09PYSKD7H", ["men", "shorts"], 1, "Features", {}),
        "/fixed_0",
    ]

    async def load(url: str) -> tuple[float, int]:
        errors = 0
        queue = iter(range(args.requests))

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal errors
            for i in queue:
                response = await client.get(paths[i % len(paths)])
                errors += response.status_code != 200

        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits) as client:
            start = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(args.concurrency)))
            return time.perf_counter() - start, errors

    with shop_process() as shop:
        asyncio.run(load(shop.url))  # warm-up
        server = cpu_seconds(shop.pid)
        elapsed, errors = asyncio.run(load(shop.url))
        server = cpu_seconds(shop.pid) - server
    what = f"server throughput, {args.requests} GETs, {args.concurrency} concurrent clients, {errors} errors"
    yield _row(what, args.requests / elapsed, "req/s")
    yield _row("server CPU per request", server / args.requests * 1000, "ms")


SECTIONS: dict[str, Callable[[argparse.Namespace], Iterator[Row]]] = {
    "search": bench_search,
    "env-http": bench_env_http,
    "env-browser": bench_env_browser,
    "server": bench_server,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only this section (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="builds of the 1k index to take the median of")
    parser.add_argument("--big", type=int, default=100_000, help="documents in the replicated catalogue")
    parser.add_argument("--episodes", type=int, default=20, help="HTTP env episodes (browser env: a quarter)")
    parser.add_argument("--requests", type=int, default=2000, help="server load test: total requests")
    parser.add_argument("--concurrency", type=int, default=8, help="server load test: concurrent clients")
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
