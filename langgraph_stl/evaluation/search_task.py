"""The bridge from the search core to the eval runner: environments by name, and ``run_task`` over ``arun_search``."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any
from urllib.parse import urlparse

from langgraph_stl.envs.base import Environment
from langgraph_stl.evaluation.results import ModelUsage, Rollout, TaskRecord
from langgraph_stl.evaluation.run import RunTask

ENVS = ("game24", "webshop")


def make_env(name: str, *, webshop_url: str | None = None, webshop_goals: int | None = None) -> Environment:
    """An environment by name. WebShop starts its embedded server over the local catalogue unless a URL is given;
    a remote server's number of goals (``webshop_goals``) fixes its task ids (``fixed_0``...)."""
    if name == "game24":
        from langgraph_stl.envs.game24 import Game24Env

        return Game24Env()
    if name == "webshop":
        from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

        if webshop_url is not None and webshop_goals is None:
            raise ValueError("--webshop-url needs --webshop-goals (how many goals the server has, e.g. 12087)")
        return WebShopHttpEnv(webshop_url, num_goals=webshop_goals)
    raise ValueError(f"unknown environment {name!r}: one of {', '.join(ENVS)}")


def api_models(specs: Iterable[str]) -> set[str]:
    """Usage names of the models among ``specs`` that are remote APIs (``openai:`` specs not on this machine).

    Everything else (the embedded model, llama.cpp, transformers, a local OpenAI-compatible server) is local.
    """
    from langgraph_stl.models.loader import parse_spec

    names = set()
    for spec in specs:
        spec = spec.removeprefix("stl:")
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


def record_from_search(result: dict[str, Any], api: AbstractSet[str] = frozenset()) -> TaskRecord:
    """Our task record from an ``arun_search`` result (rollouts with true rewards, counters, tokens)."""
    usage = {
        model: ModelUsage(
            prompt_tokens=int(t.get("input_tokens", 0)),
            completion_tokens=int(t.get("output_tokens", 0)),
            calls=int(t.get("calls", 0)),
            local=model not in api,
        )
        for model, t in (result.get("tokens") or {}).items()
    }
    task_id = str(result["task_id"])
    error = str(result["error"]) if result.get("error") else None
    rollouts = [
        Rollout(
            true_reward=float(r["true_reward"]),
            value=r.get("value"),
            values=tuple(r.get("values", ())),
            trajectory=tuple(r.get("trajectory", ())),
        )
        for r in ([] if error else result.get("rollouts", []))
    ]
    return TaskRecord.from_rollouts(
        task_id,
        rollouts,
        states_expanded=int(result.get("states_expanded", 0)),
        policy_calls=int(result.get("policy_calls", 0)),
        value_calls=int(result.get("value_calls", 0)),
        usage=usage,
        error=error,
    )


def make_search_task(
    env: Environment,
    *,
    policy: str,
    value: str,
    algorithm: str = "greedy",
    context: dict[str, Any] | None = None,
) -> RunTask:
    """``run_task`` for the runner: one ``arun_search`` per task with models built once from their specs."""
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
        result = await arun_search(env, policy_obj, value_obj, task_id, algorithm=algo, context=ctx)
        return record_from_search(result, api)

    return run_task
