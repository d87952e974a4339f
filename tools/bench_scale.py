"""Scale-out benchmark: the Ray executor against the local one, in the I/O-bound regime real clusters are in.

A loopback OpenAI-compatible fake server (``tools/fake_openai.py``, its own process) answers every request after
``--latency`` seconds. Each task makes ``--calls`` sequential chat calls through the project's real client stack
(``load_chat_model("openai:fake@URL")``), like a greedy search over an API. Measured:

* tasks/hour for workers x concurrency in ``--workers`` x ``--concurrency`` (Ray, one local loopback cluster), and
  the local executor at the same total concurrency; actor start-up is timed apart from the task phase;
* Ray dispatch overhead per task: ``--overhead-tasks`` no-op tasks, one at a time, Ray minus local;
* memory of the local cluster: RSS of Ray's own processes, and per worker actor.

Every line carries the 1-minute load average, because this machine is shared.

    python tools/bench_scale.py --latency 0.1 --calls 4 --workers 1 2 4 8 --concurrency 1 4 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph_stl.evaluation.results import Rollout, TaskRecord
from langgraph_stl.evaluation.run import run_eval
from langgraph_stl.execution import Execution, TaskRunner, WorkSpec, make_executor


def bench_work(spec: WorkSpec) -> TaskRunner:
    """``calls`` sequential chat calls to the fake server per task (``calls`` 0: a no-op task)."""
    calls = int(spec.options["calls"])
    model = None
    if calls:
        from langgraph_stl.models import load_chat_model

        model = load_chat_model(f"openai:fake@{spec.options['url']}", max_retries=0, max_tokens=8)

    async def run(task_id: str) -> TaskRecord:
        for i in range(calls):
            assert model is not None
            await model.ainvoke(f"task {task_id} call {i}")
        return TaskRecord.from_rollouts(task_id, [Rollout(1.0, value=1.0)], states_expanded=calls)

    return TaskRunner(run)


def _load() -> float:
    return os.getloadavg()[0]


def _rss_mib(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def _run(
    execution: Execution, work: WorkSpec, n_tasks: int, out: Path, session: str | None = None
) -> tuple[float, float, float]:
    """(start-up seconds, task-phase seconds, RSS MiB of the processes the start-up added) for ``n_tasks`` tasks."""
    from langgraph_stl.execution.reaper import cluster_pids

    before = cluster_pids(session) if session else set()
    executor = make_executor(work, execution)
    t0 = time.perf_counter()
    await executor.start()
    started = time.perf_counter() - t0
    added = _rss_mib(cluster_pids(session) - before) if session else 0.0
    outcome = await run_eval([f"t{i}" for i in range(n_tasks)], executor, out, config={}, progress=False)
    assert outcome.ran == n_tasks and outcome.failed == 0, outcome
    return started, outcome.wall_time_s, added


async def _dispatch(execution: Execution, work: WorkSpec, n: int) -> float:
    """Seconds for ``n`` no-op tasks run one after another through a started executor."""
    executor = make_executor(work, execution)
    await executor.start()
    try:
        await executor.run("warm-up")
        t0 = time.perf_counter()
        for i in range(n):
            await executor.run(f"t{i}")
        return time.perf_counter() - t0
    finally:
        await executor.close()


async def main(args: argparse.Namespace) -> None:
    import ray

    from langgraph_stl.execution.ray_executor import init_local_cluster
    from langgraph_stl.execution.reaper import cluster_pids

    fake = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_openai.py")), "--latency", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    rows: list[dict[str, Any]] = []
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        work = WorkSpec("py:tools.bench_scale:bench_work", "none", options={"url": url, "calls": args.calls})
        noop = WorkSpec("py:tools.bench_scale:bench_work", "none", options={"url": url, "calls": 0})
        before = {p for p in map(int, filter(str.isdigit, os.listdir("/proc")))}
        t0 = time.perf_counter()
        session = init_local_cluster(num_cpus=max(args.workers) * 2, num_gpus=0)
        print(f"# local cluster up in {time.perf_counter() - t0:.1f} s (load {_load():.1f})", flush=True)
        await asyncio.sleep(2)
        ray_pids = cluster_pids(session) - before
        idle_mib = _rss_mib(ray_pids)
        print(f"# Ray's own processes idle: {idle_mib:.0f} MiB RSS ({len(ray_pids)} processes)", flush=True)
        task_s = args.calls * args.latency

        # dispatch overhead: no-op tasks, one at a time, through the executor alone (no sink, no fsync)
        n = args.overhead_tasks
        local_s = await _dispatch(Execution(concurrency=1, progress=False), noop, n)
        ray_s = await _dispatch(Execution(executor="ray", concurrency=1, progress=False), noop, n)
        overhead = {"local_ms": 1000 * local_s / n, "ray_ms": 1000 * ray_s / n, "load": _load()}
        print(f"# dispatch per no-op task: local {overhead['local_ms']:.2f} ms, ray {overhead['ray_ms']:.2f} ms")

        local_done: dict[int, dict[str, Any]] = {}
        for k in args.concurrency:
            for w in args.workers:
                total = w * k
                n_tasks = max(args.rounds * total, args.min_tasks)
                ex = Execution(executor="ray", workers=w, concurrency=k, progress=False)
                start_s, ray_s, added_mib = await _run(ex, work, n_tasks, tmp / f"r{w}x{k}.jsonl", session)
                worker_mib = added_mib / w
                if total not in local_done:
                    local = Execution(concurrency=total, progress=False)
                    _, loc_s, _ = await _run(local, work, n_tasks, tmp / f"l{total}.jsonl")
                    local_done[total] = {"tasks": n_tasks, "s": loc_s}
                loc = local_done[total]
                row = {
                    "workers": w,
                    "concurrency": k,
                    "tasks": n_tasks,
                    "ray_tph": 3600 * n_tasks / ray_s,
                    "local_tph": 3600 * loc["tasks"] / loc["s"],
                    "ideal_tph": 3600 * total / task_s,
                    "actor_start_s": start_s,
                    "worker_rss_mib": worker_mib,
                    "load": _load(),
                }
                rows.append(row)
                print(json.dumps({k2: round(v, 2) if isinstance(v, float) else v for k2, v in row.items()}), flush=True)
        busy_mib = _rss_mib(ray_pids)
        print(f"# Ray's own processes after the runs: {busy_mib:.0f} MiB RSS", flush=True)
        _table(rows, args, overhead, idle_mib, busy_mib)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        fake.terminate()
        fake.wait()


def _table(
    rows: list[dict[str, Any]], args: argparse.Namespace, overhead: dict[str, float], idle: float, busy: float
) -> None:
    print(f"\nL = {args.latency} s, {args.calls} calls per task (ideal task time {args.calls * args.latency:.2f} s)\n")
    print(
        "| workers × concurrency | tasks | Ray tasks/h | local tasks/h (same total) | ideal tasks/h | Ray / ideal "
        "| scaling vs 1 worker | actor start-up | RSS per worker | load |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = {r["concurrency"]: r["ray_tph"] for r in rows if r["workers"] == 1}
    for r in rows:
        scaling = r["ray_tph"] / base[r["concurrency"]] if r["concurrency"] in base else float("nan")
        print(
            f"| {r['workers']} × {r['concurrency']} | {r['tasks']} | {r['ray_tph']:,.0f} | {r['local_tph']:,.0f} | "
            f"{r['ideal_tph']:,.0f} | {r['ray_tph'] / r['ideal_tph']:.2f} | {scaling:.2f} (N={r['workers']}) | "
            f"{r['actor_start_s']:.1f} s | {r['worker_rss_mib']:.0f} MiB | {r['load']:.1f} |"
        )
    print(
        f"\nDispatch per no-op task, one at a time: local {overhead['local_ms']:.2f} ms, "
        f"Ray {overhead['ray_ms']:.2f} ms (overhead {overhead['ray_ms'] - overhead['local_ms']:.2f} ms). "
        f"Ray's own processes: {idle:.0f} MiB RSS idle, {busy:.0f} MiB after the runs."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=int, default=4, help="tasks per slot (tasks = rounds x workers x concurrency)")
    parser.add_argument("--min-tasks", type=int, default=16)
    parser.add_argument("--overhead-tasks", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
