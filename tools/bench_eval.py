"""Evaluation throughput (tasks/hour) of the `stl eval` runner at several concurrency levels.

``--mode fake`` runs tasks that make ``--calls`` model calls of fixed ``--latency`` seconds each (an API or a
model server that is never the bottleneck), so it measures what bounded concurrency buys and what the runner
itself costs (a JSON line, flush and fsync per task). Every row carries the 1-minute load average, because this
machine is shared.

    python tools/bench_eval.py --mode fake --tasks 40 --calls 10 --latency 0.05 --concurrency 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from langgraph_stl.evaluation.results import ModelUsage, Rollout, TaskRecord
from langgraph_stl.evaluation.run import RunTask, run_eval


def fake_task(calls: int, latency: float) -> RunTask:
    """A task of ``calls`` sequential fixed-latency model calls, as a greedy search over an API would make."""

    async def run(task_id: str) -> TaskRecord:
        for _ in range(calls):
            await asyncio.sleep(latency)
        usage = {"fake-model": ModelUsage(prompt_tokens=500 * calls, completion_tokens=50 * calls, calls=calls)}
        return TaskRecord.from_rollouts(task_id, [Rollout(1.0, value=1.0)], usage=usage, states_expanded=calls)

    return run


async def _bench(args: argparse.Namespace) -> list[str]:
    rows = []
    ids = [str(i) for i in range(args.tasks)]
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory() as tmp:
            load = os.getloadavg()[0]
            outcome = await run_eval(
                ids,
                fake_task(args.calls, args.latency),
                Path(tmp) / "bench.jsonl",
                config={"bench": "fake", "calls": args.calls, "latency": args.latency},
                concurrency=concurrency,
                progress=False,
            )
            ideal = 3600 * concurrency / (args.calls * args.latency)
            rows.append(
                f"| fake ({args.calls} calls × {args.latency * 1000:.0f} ms) | {concurrency} | {args.tasks} "
                f"| {outcome.wall_time_s:.2f} | {outcome.tasks_per_hour:,.0f} | {ideal:,.0f} "
                f"| {load:.2f} / {os.getloadavg()[0]:.2f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["fake"], default="fake")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--calls", type=int, default=10, help="model calls per task")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per model call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print("| task | concurrency | tasks | wall s | tasks/hour | ideal tasks/hour | load avg before / after |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in asyncio.run(_bench(args)):
        print(row)
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
