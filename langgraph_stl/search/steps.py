"""The search's building blocks, shared by the graph nodes, :func:`~langgraph_stl.search.lookahead.lookahead` and
the plain-Python baseline of the benchmark: expand a state, value its children together, pick the best. Each is
written once as steps (:mod:`.twins`); the graph's sync and async nodes drive the same steps.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_stl.envs.base import Environment, StepResult
from langgraph_stl.search import prompts as P
from langgraph_stl.search.policy import Policy, PolicyInput, proposal_steps
from langgraph_stl.search.twins import Gather, Steps, Twin, adrive
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


def expansion_steps(
    env: Environment,
    policy: Policy,
    inp: PolicyInput,
    *,
    force_terminal: bool = False,
    retries: int = 0,
    config: RunnableConfig | None = None,
) -> Steps[Expansion]:
    """Propose actions, step each in the real environment (concurrently on the async path), keep the valid distinct
    successors.

    With ``force_terminal`` and ``inp.last_step`` only terminal successors are kept (the last allowed action must
    end the episode); the others are not invalid, merely out of budget. An expansion without any successor is
    retried up to ``retries`` times (the reference retries 3 times: sampled proposals may all be unusable).
    """
    invalid = calls = 0
    for _ in range(retries + 1):
        expansion = yield from _expand_once(env, policy, inp, force_terminal, config)
        invalid += expansion.invalid
        calls += expansion.policy_calls
        if expansion.children:
            break
    return Expansion(expansion.children, invalid, calls)


async def expand_state(
    env: Environment,
    policy: Policy,
    inp: PolicyInput,
    *,
    force_terminal: bool = False,
    retries: int = 0,
    config: RunnableConfig | None = None,
) -> Expansion:
    """:func:`expansion_steps`, async."""
    return await adrive(
        expansion_steps(env, policy, inp, force_terminal=force_terminal, retries=retries, config=config)
    )


def _expand_once(
    env: Environment, policy: Policy, inp: PolicyInput, force_terminal: bool, config: RunnableConfig | None
) -> Steps[Expansion]:
    proposals = yield from proposal_steps(policy, env, inp, config)
    results: list[StepResult] = yield Gather([Twin(env.step, env.astep, inp.state, a) for a in proposals.actions])
    kept: list[tuple[str, StepResult, bool]] = []
    invalid = proposals.dropped
    for action, result in zip(proposals.actions, results, strict=True):
        if not result.valid:
            invalid += 1
            continue
        terminal = env.is_terminal(result.state)
        if force_terminal and inp.last_step and not terminal:
            continue
        kept.append((action, result, terminal))
    observations: list[str] = yield Gather([Twin(env.observation, env.aobservation, r.state) for _, r, _ in kept])
    children = [Child(a, r.state, obs, t) for (a, r, t), obs in zip(kept, observations, strict=True)]
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


def evaluation_steps(
    env_name: str,
    value: ValueModel,
    root_observation: str,
    path: Sequence[tuple[str, str]],
    children: Sequence[tuple[str, str, bool]],
    *,
    n_samples: int,
    config: RunnableConfig | None = None,
) -> Steps[list[ValueEstimate]]:
    """Values of all siblings in one batched/concurrent value-model call."""
    items = value_items(root_observation, path, children)
    return (yield from value.steps(env_name, items, n_samples=n_samples, config=config))


async def evaluate_children(
    env_name: str,
    value: ValueModel,
    root_observation: str,
    path: Sequence[tuple[str, str]],
    children: Sequence[tuple[str, str, bool]],
    *,
    n_samples: int,
    config: RunnableConfig | None = None,
) -> list[ValueEstimate]:
    """:func:`evaluation_steps`, async."""
    return await adrive(
        evaluation_steps(env_name, value, root_observation, path, children, n_samples=n_samples, config=config)
    )


def select_best(values: Sequence[float], terminal: Sequence[bool], rng: random.Random) -> int:
    """Index of the best child: shuffle, non-terminal before terminal, then the first maximum (reference `max`)."""
    order = list(range(len(values)))
    rng.shuffle(order)
    order.sort(key=lambda i: terminal[i])
    return max(order, key=lambda i: values[i])
