"""One step of lookahead: the STL training target of a state (spec §1a, "Facts" 1–2).

Successors come from the policy executed in the real environment; V_k values them all together; the target is
the best successor's action, its real observation (``Terminal State`` when it ends the episode), V_k's rationale
for it and its value, with no discount. The environment's ground-truth reward is never consulted.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_stl.envs.base import Environment
from langgraph_stl.search import prompts as P
from langgraph_stl.search.context import SearchContext
from langgraph_stl.search.policy import Policy, PolicyInput
from langgraph_stl.search.steps import default_force_terminal, evaluate_children, expand_state, select_best
from langgraph_stl.search.value import ValueModel


@dataclass(slots=True)
class LookaheadTarget:
    """The best successor and the STL prompt/target pair it yields for the current state."""

    best_action: str
    successor_observation: str
    rationale: str
    value: float
    terminal: bool
    prompt: str
    target: str
    candidates: list[tuple[str, float]] = field(default_factory=list)
    invalid: int = 0
    policy_calls: int = 0
    value_calls: int = 0
    value_parse_failures: int = 0


async def lookahead(
    env: Environment,
    policy: Policy,
    value: ValueModel,
    state: dict[str, Any],
    *,
    root_observation: str,
    path: Sequence[tuple[str, str]],
    instruction: str | None = None,
    context: SearchContext | None = None,
    config: RunnableConfig | None = None,
) -> LookaheadTarget | None:
    """Lookahead target of the non-terminal ``state`` reached by ``path`` (its last step is the current action).

    ``path`` holds ``(action, observation)`` pairs from the root; it must be non-empty because the STL format
    names a current action. Returns None when no successor is valid. A best value of −1 (nothing parsed) is
    returned as is: callers that build training data should skip it. Successor count and value samples come from
    ``context`` (``width``/``root_width``, ``n_value_samples``, ``depth`` for the forced last step).
    """
    if not path:
        raise ValueError("lookahead needs the action that led to the state: path must not be empty")
    ctx = context or SearchContext()
    depth = len(path)
    force = ctx.force_terminal if ctx.force_terminal is not None else default_force_terminal(env.name)
    inp = PolicyInput(
        env_name=env.name,
        state=state,
        observation=path[-1][1],
        root_observation=root_observation,
        instruction=instruction if instruction is not None else root_observation,
        path=tuple(path),
        depth=depth,
        n=ctx.width,
        last_step=depth + 1 >= ctx.depth,
        seed=ctx.seed,
        max_retries=ctx.max_retries,
    )
    expansion = await expand_state(env, policy, inp, force_terminal=force, retries=ctx.expand_retries, config=config)
    if not expansion.children:
        return None
    triples = [(c.action, c.observation, c.terminal) for c in expansion.children]
    estimates = await evaluate_children(
        env.name,
        value,
        root_observation,
        path,
        triples,
        n_samples=ctx.n_value_samples,
        config=config,
    )
    values = [e.value for e in estimates]
    rng = random.Random(f"{ctx.seed}|lookahead|" + "|".join(a for a, _ in path))
    best = select_best(values, [c.terminal for c in expansion.children], rng)
    child, estimate = expansion.children[best], estimates[best]
    successor_obs = P.TERMINAL_OBSERVATION if child.terminal else child.observation
    trajectory = P.format_trajectory(root_observation, path[:-1])
    return LookaheadTarget(
        best_action=child.action,
        successor_observation=successor_obs,
        rationale=estimate.rationale,
        value=estimate.value,
        terminal=child.terminal,
        prompt=P.stl_prompt(trajectory, path[-1][0], path[-1][1]),
        target=P.stl_target(child.action, successor_obs, estimate.rationale, estimate.value),
        candidates=[(c.action, v) for c, v in zip(expansion.children, values, strict=True)],
        invalid=expansion.invalid,
        policy_calls=expansion.policy_calls,
        value_calls=sum(len(e.samples) for e in estimates if not e.rule),
        value_parse_failures=sum(e.failures for e in estimates),
    )
