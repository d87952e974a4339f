"""The search's building blocks, shared by the graph nodes, :func:`~langgraph_stl.search.lookahead.lookahead` and
the plain-Python baseline of the benchmark: expand a state, value its children together, pick the best.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_stl.envs.base import Environment
from langgraph_stl.search import prompts as P
from langgraph_stl.search.policy import Policy, PolicyInput
from langgraph_stl.search.value import ValueEstimate, ValueItem, ValueModel


@dataclass(frozen=True, slots=True)
class Child:
    """A successor reached by a valid action; ``observation`` is the real environment text."""

    action: str
    state: dict[str, Any]
    observation: str
    terminal: bool


@dataclass(frozen=True, slots=True)
class Expansion:
    """Children of one expansion plus its bookkeeping (invalid = dropped by the policy or refused by the env)."""

    children: list[Child]
    invalid: int
    policy_calls: int


def default_force_terminal(env_name: str) -> bool:
    """WebShop forces ``Buy Now`` at the last step (reference); other environments end by themselves."""
    return P.env_kind(env_name) == "webshop"


async def expand_state(
    env: Environment,
    policy: Policy,
    inp: PolicyInput,
    *,
    force_terminal: bool = False,
    retries: int = 0,
    config: RunnableConfig | None = None,
) -> Expansion:
    """Propose actions, step each in the real environment (concurrently), keep the valid distinct successors.

    With ``force_terminal`` and ``inp.last_step`` only terminal successors are kept (the last allowed action must
    end the episode); the others are not invalid, merely out of budget. An expansion without any successor is
    retried up to ``retries`` times (the reference retries 3 times: sampled proposals may all be unusable).
    """
    invalid = calls = 0
    for _ in range(retries + 1):
        expansion = await _expand_once(env, policy, inp, force_terminal, config)
        invalid += expansion.invalid
        calls += expansion.policy_calls
        if expansion.children:
            break
    return Expansion(expansion.children, invalid, calls)


async def _expand_once(
    env: Environment, policy: Policy, inp: PolicyInput, force_terminal: bool, config: RunnableConfig | None
) -> Expansion:
    proposals = await policy.propose(env, inp, config=config)
    results = await asyncio.gather(*(env.astep(inp.state, a) for a in proposals.actions))
    children: list[Child] = []
    invalid = proposals.dropped
    for action, result in zip(proposals.actions, results, strict=True):
        if not result.valid:
            invalid += 1
            continue
        terminal = env.is_terminal(result.state)
        if force_terminal and inp.last_step and not terminal:
            continue
        children.append(Child(action, result.state, await env.aobservation(result.state), terminal))
    return Expansion(children, invalid, proposals.calls)


def value_items(
    root_observation: str, path: Sequence[tuple[str, str]], children: Sequence[tuple[str, str, bool]]
) -> list[ValueItem]:
    """Value-model inputs for siblings ``(action, observation, terminal)`` under the node reached by ``path``.

    All items share the parent's trajectory text, so their prompts share that prefix.
    """
    trajectory = P.format_trajectory(root_observation, path)
    previous = tuple(a for a, _ in path)
    return [
        ValueItem(trajectory, action, P.TERMINAL_OBSERVATION if terminal else obs, terminal, previous)
        for action, obs, terminal in children
    ]


async def evaluate_children(
    env_name: str,
    value: ValueModel,
    root_observation: str,
    path: Sequence[tuple[str, str]],
    children: Sequence[tuple[str, str, bool]],
    *,
    n_samples: int,
    config: RunnableConfig | None = None,
    max_retries: int = 3,
    retry_delay: float = 0.5,
) -> list[ValueEstimate]:
    """Values of all siblings in one batched/concurrent value-model call."""
    return await value.aevaluate(
        env_name,
        value_items(root_observation, path, children),
        n_samples=n_samples,
        config=config,
        max_retries=max_retries,
        retry_delay=retry_delay,
    )


def select_best(values: Sequence[float], terminal: Sequence[bool], rng: random.Random) -> int:
    """Index of the best child: shuffle, non-terminal before terminal, then the first maximum (reference `max`)."""
    order = list(range(len(values)))
    rng.shuffle(order)
    order.sort(key=lambda i: terminal[i])
    return max(order, key=lambda i: values[i])
