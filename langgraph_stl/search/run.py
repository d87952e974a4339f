"""Run one search end to end and return a JSON-able result (what the CLI, evaluation and Studio users read).

The search itself never sees ground truth. Only after it has finished does :func:`arun_search` call the
environment's ``true_reward`` on each final leaf, for display, under clearly labelled keys:

* ``reward`` / ``true_reward.value_selected``: the trajectory the value model picked (what a deployed agent does);
* ``true_reward.pass_at_n``: the best of the n rollouts' true rewards (the paper's oracle pass@n metric);
* ``true_reward.mean``: the mean over rollouts (single-trajectory performance).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import RetryPolicy

from langgraph_stl.envs.base import Environment
from langgraph_stl.evaluation.trees import tree_nodes
from langgraph_stl.models.usage import TokenUsageCallback
from langgraph_stl.search.calls import MODEL_RETRY
from langgraph_stl.search.context import SearchContext
from langgraph_stl.search.graph import Algorithm, create_search_graph
from langgraph_stl.search.policy import Policy
from langgraph_stl.search.value import ValueModel

EventHandler = Callable[[dict[str, Any]], None]


class SearchResult(dict[str, Any]):
    """What :func:`arun_search` returns: a plain JSON-able dict that notebooks render as its tree (or trajectory)."""

    def _repr_html_(self) -> str:
        from langgraph_stl.view import render_html, view_of_result

        return render_html(view_of_result(self), inline=True)


async def arun_search(
    env: Environment,
    policy: Policy | None,
    value: ValueModel | None,
    task_id: str,
    *,
    algorithm: Algorithm = "greedy",
    context: SearchContext | dict[str, Any] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    thread_id: str | None = None,
    on_event: EventHandler | None = None,
    callbacks: list[BaseCallbackHandler] | None = None,
    true_reward: bool = True,
    retry_policy: RetryPolicy | None = MODEL_RETRY,
    keep_tree: bool = False,
) -> SearchResult:
    """Search task ``task_id``; returns the graph's result plus ``tokens``, ``wall_time_s`` and true rewards.

    With a ``checkpointer`` and an existing ``thread_id`` an interrupted or failed run resumes where it stopped
    (the tree and counters come from the checkpoint; ``tokens`` and ``wall_time_s`` cover this process only).
    Errors of the task itself (unknown task, a model failing after the ``retry_policy``'s attempts) are recorded
    in ``result["error"]`` as ``"<ExceptionType>: <message>"``, never raised.
    ``keep_tree`` adds ``result["tree"]``: every node (without environment states), terminal nodes with their
    true reward when ``true_reward`` is on; ``langgraph_stl.evaluation.trees.SearchTree.from_result`` reads it.
    """
    ctx = SearchContext.from_any(context)
    usage = TokenUsageCallback()
    # A checkpointer is always used: the finished tree is read back from it for the true rewards.
    saver = checkpointer if checkpointer is not None else InMemorySaver()
    builder = create_search_graph(env, policy, value, algorithm=algorithm, retry_policy=retry_policy)
    graph = builder.compile(checkpointer=saver)
    config: RunnableConfig = {
        "callbacks": [usage, *(callbacks or [])],
        "configurable": {"thread_id": thread_id or uuid.uuid4().hex},
        "recursion_limit": 10_000,
    }
    resume = False
    if checkpointer is not None and thread_id is not None:
        snapshot = await graph.aget_state(config)
        resume = bool(snapshot.next)
    start = time.perf_counter()
    final: dict[str, Any] = {}
    try:
        async for mode, chunk in graph.astream(
            None if resume else {"task_id": task_id}, config, context=ctx, stream_mode=["custom", "values"]
        ):
            if mode == "custom" and on_event is not None:
                on_event(cast(dict[str, Any], chunk))
            elif mode == "values":
                final = cast(dict[str, Any], chunk)
    except Exception as exc:  # a task's failure is its record, whatever the cause
        return SearchResult(_failed(task_id, algorithm, f"{type(exc).__name__}: {exc}", usage, start))
    wall = time.perf_counter() - start
    result = dict(final.get("result") or {})
    if not result:  # interrupted (interrupt_before/after) before finalize: report where it stands
        return SearchResult({**_failed(task_id, algorithm, None, usage, start), "interrupted": True})
    result["tokens"] = usage.as_dict()
    result["wall_time_s"] = round(wall, 4)
    result["reward"] = None
    if (true_reward and not result.get("error")) or keep_tree:
        nodes = (await graph.aget_state(config)).values["nodes"]
        if true_reward and not result.get("error"):
            await _add_true_rewards(env, nodes, result)
        if keep_tree:
            terminal = [n for n, v in nodes.items() if v["terminal"]] if true_reward else []
            result["tree"] = tree_nodes(nodes, {n: await env.atrue_reward(nodes[n]["env_state"]) for n in terminal})
    return SearchResult(result)


_RUNNERS = threading.local()


def run_search(*args: Any, **kwargs: Any) -> SearchResult:
    """Synchronous :func:`arun_search` (not from inside a running event loop).

    Successive calls in one thread share one event loop: async HTTP clients that chat models cache across calls
    (langchain-openai keeps a process-wide pool) stay bound to a live loop, so searching many tasks in a row works.
    """
    runner = getattr(_RUNNERS, "runner", None)
    if runner is None:
        runner = _RUNNERS.runner = asyncio.Runner()
    result: SearchResult = runner.run(arun_search(*args, **kwargs))
    return result


def _failed(task_id: str, algorithm: str, error: str | None, usage: TokenUsageCallback, start: float) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "algorithm": algorithm,
        "trajectory": [],
        "leaf": None,
        "value": None,
        "rollouts": [],
        "states_expanded": 0,
        "policy_calls": 0,
        "value_calls": 0,
        "invalid_proposals": 0,
        "value_parse_failures": 0,
        "tokens": usage.as_dict(),
        "wall_time_s": round(time.perf_counter() - start, 4),
        "reward": None,
        "error": error,
    }


async def _add_true_rewards(env: Environment, nodes: dict[str, Any], result: dict[str, Any]) -> None:
    """Ground truth for display only, computed after the search has finished."""
    rewards = []
    for rollout in result["rollouts"]:
        reward = await env.atrue_reward(nodes[rollout["leaf"]]["env_state"])
        rollout["true_reward"] = reward
        rewards.append(reward)
    chosen = await env.atrue_reward(nodes[result["leaf"]]["env_state"]) if result["leaf"] else 0.0
    result["reward"] = chosen
    result["true_reward"] = {
        "value_selected": chosen,
        "pass_at_n": max(rewards, default=0.0),
        "mean": sum(rewards) / len(rewards) if rewards else 0.0,
        "n": len(rewards),
    }
