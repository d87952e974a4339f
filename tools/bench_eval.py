"""Evaluation benchmarks: runner throughput (tasks/hour) by concurrency, and greedy vs MCTS cost per task.

* ``--mode fake``: tasks of ``--calls`` model calls of fixed ``--latency`` seconds each (an API or a model server
  that is never the bottleneck). This measures what bounded concurrency buys and what the runner itself costs (a
  JSON line, flush and fsync per task).
* ``--mode search``: the real search on Game of 24 (enumerated moves, value model ``--value``, default the
  embedded SmolLM2), so the model is the bottleneck.
* ``--mode algorithms``: greedy and MCTS on the same Game of 24 tasks at equal width/depth/value samples; states
  expanded and tokens per task.

Every row carries the 1-minute load average, because this machine is shared.

    python tools/bench_eval.py --mode fake --tasks 40 --calls 10 --latency 0.05 --concurrency 1 2 4
    python tools/bench_eval.py --mode search --tasks 4 --concurrency 1 2 4
    python tools/bench_eval.py --mode algorithms --tasks 4 --concurrency 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def embedded_value_model() -> Any:
    """The embedded SmolLM2 on ``STL_BENCH_THREADS`` llama.cpp threads (default 1).

    Use it as ``--value py:tools.bench_eval:embedded_value_model``.
    On an oversubscribed machine llama.cpp's default (all cores) spins against other processes; 1 thread was 19x
    faster per value call here under a load average of ~15 (see docs/BENCHMARKS.md).
    """
    from langgraph_stl.models import load_chat_model

    return load_chat_model("smollm2", temperature=1.0, threads=int(os.environ.get("STL_BENCH_THREADS", "1")))


SEARCH_CONTEXT = {"n_rollouts": 1, "width": 2, "depth": 3, "n_value_samples": 1, "budget": 6}
"""Small enough for 2 CPU cores: 1 rollout, 2 proposals per expansion (4 at the root), 1 value sample."""


async def _throughput(args: argparse.Namespace) -> list[str]:
    ids = [str(i) for i in range(900, 900 + args.tasks)]
    if args.mode == "fake":
        run_task, name = (
            fake_task(args.calls, args.latency),
            f"fake ({args.calls} calls × {args.latency * 1000:.0f} ms)",
        )
        ideal_per_hour: float | None = 3600 / (args.calls * args.latency)
    else:
        from langgraph_stl.envs.game24 import Game24Env
        from langgraph_stl.evaluation.search_task import make_search_task

        context = {**SEARCH_CONTEXT, "value_mode": args.value_mode}
        run_task = make_search_task(Game24Env(), policy="enumerate", value=args.value, context=context)
        await run_task(ids[0])  # start the model server outside the timings
        name, ideal_per_hour = f"game24 greedy, value {args.value}, {context}", None
    rows = []
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory() as tmp:
            load = os.getloadavg()[0]
            outcome = await run_eval(
                ids, run_task, Path(tmp) / "bench.jsonl", config={}, concurrency=concurrency, progress=False
            )
            ideal = f"{ideal_per_hour * concurrency:,.0f}" if ideal_per_hour else "–"
            rows.append(
                f"| {name} | {concurrency} | {args.tasks} | {outcome.failed} | {outcome.wall_time_s:.2f} "
                f"| {outcome.tasks_per_hour:,.0f} | {ideal} | {load:.2f} / {os.getloadavg()[0]:.2f} |"
            )
    return [
        "| task | concurrency | tasks | failed | wall s | tasks/hour | ideal tasks/hour | load avg before / after |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
    ]


async def _algorithms(args: argparse.Namespace) -> list[str]:
    from langgraph_stl.envs.game24 import Game24Env
    from langgraph_stl.evaluation.metrics import summarize, task_universe
    from langgraph_stl.evaluation.results import load_results
    from langgraph_stl.evaluation.search_task import make_search_task

    env, ids = Game24Env(), [str(i) for i in range(900, 900 + args.tasks)]
    rows = [
        "| algorithm | settings | tasks | states expanded / task | value calls / task | prompt tokens / task "
        "| completion tokens / task | oracle score | wall s | load avg before / after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    common = {k: v for k, v in SEARCH_CONTEXT.items() if k not in ("n_rollouts", "budget")}
    common["value_mode"] = args.value_mode
    for algorithm, extra in (("greedy", {"n_rollouts": 3}), ("mcts", {"budget": 9})):
        context = {**common, **extra}
        run_task = make_search_task(env, policy="enumerate", value=args.value, algorithm=algorithm, context=context)
        with tempfile.TemporaryDirectory() as tmp:
            out, load = Path(tmp) / "bench.jsonl", os.getloadavg()[0]
            outcome = await run_eval(ids, run_task, out, config={}, concurrency=args.concurrency[0], progress=False)
            results = load_results(out)
            s = summarize(results, task_universe(results))
            n = max(s.n_present, 1)
            calls = sum(t.value_calls or 0 for t in results.tasks.values()) / n
            prompt = sum(int(t["prompt_tokens"]) for t in s.tokens.values()) / n
            completion = sum(int(t["completion_tokens"]) for t in s.tokens.values()) / n
            rows.append(
                f"| {algorithm} | {context} | {args.tasks} ({outcome.failed} failed) "
                f"| {s.states_expanded_per_task or 0:.1f} | {calls:.1f} | {prompt:,.0f} | {completion:,.0f} "
                f"| {s.variants['oracle'].score:.0f} | {outcome.wall_time_s:.1f} "
                f"| {load:.2f} / {os.getloadavg()[0]:.2f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["fake", "search", "algorithms"], default="fake")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--calls", type=int, default=10, help="fake: model calls per task")
    parser.add_argument("--latency", type=float, default=0.05, help="fake: seconds per model call")
    parser.add_argument("--value", default="smollm2", help="search/algorithms: value model spec")
    parser.add_argument("--value-mode", choices=["generate", "logits"], default="generate")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    rows = asyncio.run(_algorithms(args) if args.mode == "algorithms" else _throughput(args))
    print("\n".join(rows))
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
