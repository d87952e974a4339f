"""WebShop benchmarks: environment step latency (HTTP, browser) and server throughput.

    python tools/bench_webshop.py                      # every section
    python tools/bench_webshop.py --only env-http      # one section (repeatable)

Sections: ``env-http`` (WebShopHttpEnv.step p50/p99), ``env-browser`` (WebShopBrowserEnv.step p50/p99, headless
Chromium), ``server`` (requests/s of ``stl webshop serve`` under concurrent loopback clients, bounded by a request
count). The server runs as a separate process (``python -m langgraph_stl webshop serve``), as a user would run it, so
client and server do not share a GIL. Every number is printed with the load average at the time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

REPO = Path(__file__).resolve().parents[1]
console = Console()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}/{fifteen:.2f}"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


@contextmanager
def shop_process(goals: str = "synthetic") -> Iterator[str]:
    """``stl webshop serve --attrs`` on a free loopback port, as a child process."""
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
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def episode_actions(site_goals: list[dict], products: dict[str, dict], index: int) -> list[str]:
    """A winning episode for synthetic goal ``index`` with a detour through every page type."""
    goal = products[site_goals[index]["asin"]]
    actions = [f"search[{goal['Title'][:80]}]", "click[Next >]", "click[< Prev]", f"click[{goal['asin']}]"]
    actions += [f"click[{v}]" for v in site_goals[index]["goal_options"].values()]
    return [*actions, "click[Description]", "click[< Prev]", "click[Features]", "click[< Prev]", "click[Buy Now]"]


def run_episodes(step: Callable[[dict, str], object], reset: Callable[[str], dict], episodes: int) -> list[float]:
    from langgraph_stl.envs.webshop import load_webshop

    data = load_webshop(goals="synthetic", seed=0)
    times: list[float] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("episodes", total=episodes)
        for index in range(episodes):
            state = reset(f"fixed_{index}")
            for action in episode_actions(data.goals, data.products_by_asin, index):
                start = time.perf_counter()
                result = step(state, action)
                times.append(time.perf_counter() - start)
                if result.valid:  # type: ignore[attr-defined]
                    state = result.state  # type: ignore[attr-defined]
            progress.advance(task)
    return times


def bench_env_http(url: str, episodes: int) -> str:
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

    with WebShopHttpEnv(url) as env:
        run_episodes(env.step, env.reset, 2)  # warm-up
        times = run_episodes(env.step, env.reset, episodes)
    p50, p99 = percentiles(times)
    return (
        f"| HTTP env step | {len(times)} steps ({episodes} episodes) | p50 {p50:.2f} ms | p99 {p99:.2f} ms | {load()} |"
    )


def bench_env_browser(url: str, episodes: int) -> str:
    from langgraph_stl.envs.webshop.browser_env import WebShopBrowserEnv

    env = WebShopBrowserEnv(url, max_pages=1)
    try:
        run_episodes(env.step, env.reset, 1)  # warm-up: launches Chromium
        times = run_episodes(env.step, env.reset, episodes)
    finally:
        env.close()
    p50, p99 = percentiles(times)
    workload = f"{len(times)} steps ({episodes} episodes)"
    return f"| browser env step | {workload} | p50 {p50:.1f} ms | p99 {p99:.1f} ms | {load()} |"


def bench_server(url: str, requests: int, concurrency: int) -> str:
    from langgraph_stl.envs.webshop import urls

    paths = [
        urls.search_results_path("fixed_0", ["men", "shorts"], 1),
        urls.item_page_path("fixed_0", "B09PYSKD7H", ["men", "shorts"], 1, {"color": "navy"}),
        urls.search_results_path("fixed_0", ["organic", "green", "tea"], 2),
        urls.item_sub_page_path("fixed_0", "B09PYSKD7H", ["men", "shorts"], 1, "Features", {}),
        "/fixed_0",
    ]

    async def main() -> tuple[float, int]:
        errors = 0
        queue = iter(range(requests))

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal errors
            for i in queue:
                response = await client.get(paths[i % len(paths)])
                errors += response.status_code != 200

        async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=concurrency)) as client:
            start = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
            return time.perf_counter() - start, errors

    elapsed, errors = asyncio.run(main())
    return (
        f"| server throughput | {requests} GETs, {concurrency} concurrent clients, {errors} errors | "
        f"{requests / elapsed:.0f} req/s | | {load()} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["env-http", "env-browser", "server"], help="sections")
    parser.add_argument("--episodes", type=int, default=20, help="HTTP env episodes (browser: a quarter)")
    parser.add_argument("--requests", type=int, default=2000, help="server load test: total requests")
    parser.add_argument("--concurrency", type=int, default=8, help="server load test: concurrent clients")
    args = parser.parse_args()
    sections = args.only or ["env-http", "env-browser", "server"]
    rows = []
    console.print(f"[bold]WebShop environments and server[/bold] ({os.cpu_count()} CPUs, {load()})")
    with shop_process() as url:
        if "env-http" in sections:
            rows.append(bench_env_http(url, args.episodes))
            console.print(rows[-1])
        if "env-browser" in sections:
            rows.append(bench_env_browser(url, max(1, args.episodes // 4)))
            console.print(rows[-1])
        if "server" in sections:
            rows.append(bench_server(url, args.requests, args.concurrency))
            console.print(rows[-1])
    console.print("\n| what | workload | p50 / rate | p99 | load |\n|---|---|---|---|---|")
    for row in rows:
        console.print(row, soft_wrap=True)


if __name__ == "__main__":
    main()
