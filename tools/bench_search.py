"""Benchmarks of the search graphs (docs/BENCHMARKS.md, "Search graphs").

(a) fan-out: a fake value model with fixed latency L; one expansion with k children (k x n value requests) should
    take about L, not k·L;
(b) orchestration overhead: the LangGraph greedy search vs a plain-Python loop running the same steps with the same
    zero-latency fakes (time per expanded node);
(c) the embedded model: value evaluations/s for k WebShop-length siblings, concurrent (shared prefix, server slots)
    vs one at a time; plus the logits readout.

Usage: ``python tools/bench_search.py [--only a,b,c] [--json]``. Every number is printed with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph_stl.search import EnumeratePolicy, PolicyInput, SearchContext, ValueModel, create_search_graph
from langgraph_stl.search.steps import evaluate_children, expand_state, select_best
from tests.fakes import ScriptedChatModel, TreeEnv, fixed, score


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


async def _graph_run(env: TreeEnv, value: ValueModel, ctx: SearchContext, graph: Any = None) -> dict[str, Any]:
    graph = graph or create_search_graph(env, EnumeratePolicy(), value).compile()
    out = await graph.ainvoke({"task_id": "t0"}, context=ctx)
    return dict(out["result"])


def bench_fanout(latency: float) -> list[dict[str, Any]]:
    """One root expansion with k children, n samples each, against a model that takes ``latency`` per call."""
    rows = []
    for k, n in ((1, 1), (5, 1), (10, 1), (5, 5), (20, 5)):
        env = TreeEnv(branching=k, depth=1, with_stop=False)
        ctx = SearchContext(n_rollouts=1, n_value_samples=n, depth=1, width=k, root_width=k)
        walls = {}
        for lat in (0.0, latency):  # the zero-latency run measures everything but the model's own time
            value = ValueModel(ScriptedChatModel(responder=fixed(score(5)), latency=lat))
            start = time.perf_counter()
            result = asyncio.run(_graph_run(env, value, ctx))
            walls[lat] = time.perf_counter() - start
            assert result["value_calls"] == k * n
        rows.append(
            {
                "k": k,
                "n": n,
                "requests": k * n,
                "wall_s": round(walls[latency], 3),
                "wall_over_L": round(walls[latency] / latency, 2),
                "zero_latency_wall_s": round(walls[0.0], 3),
                "model_wait_over_L": round((walls[latency] - walls[0.0]) / latency, 2),
            }
        )
    return rows


async def _plain_greedy(env: TreeEnv, value: ValueModel, ctx: SearchContext) -> int:
    """The same greedy search as the graph, as a plain loop over the shared building blocks."""
    root = env.reset("t0")
    root_obs = env.observation(root)
    instruction = env.instruction(root)
    expanded = 0
    for rollout in range(ctx.n_rollouts):
        state, path, node_id = root, [], f"r{rollout}"
        for depth in range(ctx.depth):
            inp = PolicyInput(
                env.name, state, env.observation(state), root_obs, instruction, tuple(path), depth,
                ctx.effective_root_width if depth == 0 else ctx.width, depth + 1 >= ctx.depth,
                ctx.seed + 1009 * rollout,
            )  # fmt: skip
            expansion = await expand_state(env, EnumeratePolicy(), inp, retries=ctx.expand_retries)
            expanded += 1
            children = [(c.action, c.observation, c.terminal) for c in expansion.children]
            estimates = await evaluate_children(
                env.name, value, root_obs, path, children, n_samples=ctx.n_value_samples
            )
            rng = random.Random(f"{ctx.seed}|select|{node_id}")
            best = select_best([e.value for e in estimates], [c.terminal for c in expansion.children], rng)
            child = expansion.children[best]
            node_id = f"{node_id}.{best}"
            state, path = child.state, [*path, (child.action, child.observation)]
            if child.terminal:
                break
    return expanded


def bench_overhead(repeats: int) -> dict[str, Any]:
    """Seconds per expanded node: LangGraph graph vs plain loop, zero-latency fakes, same search."""
    env = TreeEnv(branching=5, depth=6, with_stop=False)
    value = ValueModel(ScriptedChatModel(responder=fixed(score(5))))
    ctx = SearchContext(n_rollouts=3, n_value_samples=5, depth=6, width=5, root_width=5)
    graph_times, plain_times = [], []
    expansions = 0
    graph = create_search_graph(env, EnumeratePolicy(), value).compile()  # built once, like a deployed graph
    for _ in range(repeats):
        start = time.perf_counter()
        result = asyncio.run(_graph_run(env, value, ctx, graph))
        graph_times.append((time.perf_counter() - start) / result["expansions"])
        start = time.perf_counter()
        expansions = asyncio.run(_plain_greedy(env, value, ctx))
        plain_times.append((time.perf_counter() - start) / expansions)
        assert expansions == result["expansions"]
    g, p = statistics.median(graph_times), statistics.median(plain_times)
    return {
        "expansions_per_run": expansions,
        "value_requests_per_expansion": 5 * 5,
        "graph_ms_per_node": round(g * 1000, 2),
        "plain_ms_per_node": round(p * 1000, 2),
        "ratio": round(g / p, 3),
        "repeats": repeats,
    }


def _webshop_items(k: int) -> list[Any]:
    """k sibling states under a real WebShop trajectory from the reference data (depth-2 prompts, ~3 k chars)."""
    from langgraph_stl.paths import data_file
    from langgraph_stl.search.value import ValueItem

    records = json.loads(data_file("stl_reference/webshop/improvement_data/gpt-35-turbo_depth2.json").read_text())
    prompt = next(h["value"] for h, _ in records if "of the current state" in h["value"][:80])
    trajectory = prompt.split("Trajectory: \n", 1)[1].rsplit("\nCurrent Action: ", 1)[0]
    observation = prompt.rsplit("\nCurrent Observation: ", 1)[1]
    return [ValueItem(trajectory, f"click[option {i}]", observation) for i in range(k)]


def bench_embedded(k: int, max_tokens: int, threads: int | None) -> dict[str, Any]:
    from langgraph_stl.models import load_chat_model

    extra = {} if threads is None else {"threads": threads}
    model = load_chat_model("smollm2", temperature=1.0, max_tokens=max_tokens, **extra)
    # the naive baseline: same server, but every request re-reads its whole prompt (no prefix cache)
    uncached = load_chat_model(
        "smollm2", temperature=1.0, max_tokens=max_tokens, extra_body={"cache_prompt": False}, **extra
    )
    items = _webshop_items(k)
    generate = ValueModel(model)
    naive = ValueModel(uncached)
    logits = ValueModel(model, mode="logits")

    async def concurrent(vm: ValueModel) -> float:
        start = time.perf_counter()
        await vm.aevaluate("webshop", items, n_samples=1)
        return time.perf_counter() - start

    async def one_at_a_time(vm: ValueModel) -> float:
        start = time.perf_counter()
        for item in items:
            await vm.aevaluate("webshop", [item], n_samples=1)
        return time.perf_counter() - start

    async def measure() -> tuple[float, float, float, float]:
        # one event loop for all: the model's async HTTP pool is bound to the loop that opened it
        await concurrent(generate)  # warm-up: server start, every slot's prompt cache filled
        return (
            await one_at_a_time(naive),
            await one_at_a_time(generate),
            await concurrent(generate),
            await concurrent(logits),
        )

    naive_t, seq, conc, logit = asyncio.run(measure())
    prompt_chars = len(generate.prompt("webshop", items[0]))
    return {
        "k": k,
        "llama_threads": threads or "default (all cores)",
        "prompt_chars": prompt_chars,
        "max_tokens": max_tokens,
        "naive_one_at_a_time_no_prefix_cache_evals_per_s": round(k / naive_t, 3),
        "one_at_a_time_prefix_cache_evals_per_s": round(k / seq, 3),
        "concurrent_prefix_cache_evals_per_s": round(k / conc, 3),
        "speedup_concurrent_vs_naive": round(naive_t / conc, 2),
        "speedup_concurrent_vs_one_at_a_time": round(seq / conc, 2),
        "logits_evals_per_s": round(k / logit, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="a,b,c", help="which benchmarks: a,b,c")
    parser.add_argument("--latency", type=float, default=0.2, help="(a) fake model latency L in seconds")
    parser.add_argument("--repeats", type=int, default=5, help="(b) repetitions (median reported)")
    parser.add_argument("--k", type=int, default=5, help="(c) siblings")
    parser.add_argument("--max-tokens", type=int, default=48, help="(c) value generation cap")
    parser.add_argument("--threads", type=int, default=None, help="(c) llama.cpp threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    which = set(args.only.split(","))
    out: dict[str, Any] = {"cpu_count": os.cpu_count()}
    if "a" in which:
        out["a_fanout"] = {
            "L_s": args.latency,
            "load_before": _load(),
            "rows": bench_fanout(args.latency),
            "load_after": _load(),
        }
    if "b" in which:
        out["b_overhead"] = {"load_before": _load(), **bench_overhead(args.repeats), "load_after": _load()}
    if "c" in which:
        out["c_embedded"] = {
            "load_before": _load(),
            **bench_embedded(args.k, args.max_tokens, args.threads),
            "load_after": _load(),
        }
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
