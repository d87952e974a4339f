"""The bridge from the search core to the eval runner: environments by name, and ``run_task`` over ``arun_search``."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from langgraph_stl.envs.base import Environment
from langgraph_stl.evaluation.results import Rollout, TaskRecord, record_from_search
from langgraph_stl.evaluation.run import RunTask
from langgraph_stl.evaluation.trees import SearchTree, tree_path, write_tree


def api_models(specs: Iterable[str]) -> set[str]:
    """Usage names of the models among ``specs`` that are remote APIs (``openai:`` specs not on this machine).

    Everything else (the embedded model, llama.cpp, transformers, a local OpenAI-compatible server) is local.
    """
    from langgraph_stl.models.loader import parse_spec
    from langgraph_stl.search.specs import component_specs

    names = set()
    for spec in (c for s in specs for c in component_specs(s)):
        if spec.startswith(("enumerate", "py:")):
            continue
        parsed = parse_spec(spec)
        if parsed.backend == "openai" and not _is_loopback(parsed.base_url):
            names.add(parsed.name)
    return names


def _is_loopback(url: str | None) -> bool:
    if url is None:
        return False  # the OpenAI API itself
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_search_task(
    env: Environment,
    *,
    policy: str,
    value: str,
    algorithm: str = "greedy",
    context: dict[str, Any] | None = None,
    trees: Path | None = None,
) -> RunTask:
    """``run_task`` for the runner: one ``arun_search`` per task with models built once from their specs.

    With ``trees`` (a folder), each task's whole search tree is written there before its record is returned,
    so every task that has a results line also has its tree (a resumed run skips both together).
    """
    from langgraph_stl.search import ALGORITHMS, SearchContext, arun_search, make_policy, make_value

    algo = next((a for a in ALGORITHMS if a == algorithm), None)
    if algo is None:
        raise ValueError(f"unknown algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)}")
    ctx = SearchContext.from_any(context)
    policy_obj = make_policy(policy, temperature=ctx.temperature)
    value_obj = make_value(
        value, temperature=ctx.temperature, mode="logits" if ctx.value_mode == "logits" else "generate"
    )
    api = api_models([policy, value])

    async def run_task(task_id: str) -> TaskRecord:
        result = await arun_search(
            env, policy_obj, value_obj, task_id, algorithm=algo, context=ctx, keep_tree=trees is not None
        )
        if trees is not None and result.get("tree"):
            config = {"policy": policy, "value": value, "search": dataclasses.asdict(ctx)}
            await asyncio.to_thread(
                write_tree, SearchTree.from_result(result, config=config), tree_path(trees, task_id)
            )
        return record_from_search(result, api)

    return run_task


_PRODUCT = re.compile(r"^click\[([A-Z0-9]{10})\]$")


def make_rule_task(env: Environment) -> RunTask:
    """WebShop's rule baseline (Yao et al. 2022): search the instruction verbatim, open the first result, buy it.

    No model is involved, so it is the floor a value-guided search has to beat. The episode stops (reward 0) when a
    step is refused, e.g. when the search returns no product.
    """

    async def run_task(task_id: str) -> TaskRecord:
        state = await env.areset(task_id)
        trajectory: list[str] = []

        async def act(action: str) -> bool:
            nonlocal state
            result = await env.astep(state, action)
            if result.valid:
                state = result.state
                trajectory.append(action)
            return result.valid

        if await act(f"search[{env.instruction(state)}]"):
            products = [a for a in (await env.alegal_actions(state) or []) if _PRODUCT.match(a)]
            if products and await act(products[0]):
                await act("click[Buy Now]")
        reward = await env.atrue_reward(state) if env.is_terminal(state) else 0.0
        return TaskRecord.from_rollouts(
            task_id, [Rollout(reward, trajectory=tuple(trajectory))], states_expanded=len(trajectory)
        )

    return run_task
