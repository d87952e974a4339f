"""The value model inside other agents: as a Runnable over states, or as a tool that scores candidate actions.

``value_runnable`` maps a list of states (siblings) to their values in one batched call; ``as_value_tool`` gives
any tool-calling agent (``create_react_agent``, ``langchain.agents.create_agent``) a ``score_actions`` tool: it
steps each candidate in a copy of the agent's current environment state (no side effects: environments are pure),
values the successors together, and answers with JSON, best first. The agent keeps its own control flow; the
value model only advises.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from langgraph_stl.envs.base import Environment, State, StepResult
from langgraph_stl.search.steps import evaluation_steps
from langgraph_stl.search.twins import Gather, Steps, Twin, adrive, drive
from langgraph_stl.search.value import ValueItem, ValueModel

Session = Callable[[], tuple[str, Sequence[tuple[str, str]], State]]
"""Returns the agent's ``(root observation, [(action, observation), ...], current environment state)``."""


def value_runnable(
    value: ValueModel, env_name: str, *, n_samples: int = 1
) -> Runnable[list[dict[str, Any]], list[dict[str, Any]]]:
    """A Runnable valuing sibling states given as ``{"trajectory", "action", "observation", "terminal"?}`` dicts.

    Output per state: ``{"value", "rationale"}`` (value in [0, 1], −1 when unparseable). ``invoke`` works inside a
    running event loop too (a notebook cell): the sync path never starts a loop of its own for chat models.
    """

    def scoring(states: list[dict[str, Any]]) -> Steps[list[dict[str, Any]]]:
        items = [
            ValueItem(s["trajectory"], s["action"], s["observation"], bool(s.get("terminal", False))) for s in states
        ]
        estimates = yield from value.steps(env_name, items, n_samples=n_samples)
        return [{"value": e.value, "rationale": e.rationale} for e in estimates]

    async def ascore(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await adrive(scoring(states))

    return RunnableLambda(lambda states: drive(scoring(states)), afunc=ascore, name="stl_value")


class ScoreActionsInput(BaseModel):
    actions: list[str] = Field(description="Candidate next actions to compare, written exactly as you would take them.")


def as_value_tool(
    value: ValueModel,
    env: Environment,
    session: Session,
    *,
    n_samples: int = 1,
    name: str = "score_actions",
    description: str = (
        "Estimate how promising each candidate next action is (0 = hopeless, 1 = solves the task) by trying it "
        "in a sandbox copy of the current state. Returns JSON, best first. Invalid actions are reported as such."
    ),
) -> BaseTool:
    """A tool scoring candidate actions from the agent's current state (see module doc). Sync calls (``invoke``)
    work inside a running event loop (notebooks): they use the environment's and the model's sync paths."""

    def scoring(actions: list[str]) -> Steps[str]:
        root_observation, path, state = session()
        results: list[StepResult] = yield Gather([Twin(env.step, env.astep, state, a) for a in actions])
        valid = [(a, r) for a, r in zip(actions, results, strict=True) if r.valid]
        observations: list[str] = yield Gather([Twin(env.observation, env.aobservation, r.state) for _, r in valid])
        children = [(a, obs, env.is_terminal(r.state)) for (a, r), obs in zip(valid, observations, strict=True)]
        estimates = yield from evaluation_steps(env.name, value, root_observation, path, children, n_samples=n_samples)
        ranked = sorted(zip(children, estimates, strict=True), key=lambda pair: -pair[1].value)
        scored: list[dict[str, Any]] = [
            {"action": a, "value": round(e.value, 4), "terminal": t, "rationale": e.rationale}
            for (a, _, t), e in ranked
        ]
        invalid = [{"action": a, "invalid": r.message} for a, r in zip(actions, results, strict=True) if not r.valid]
        return json.dumps(scored + invalid)

    async def ascore_actions(actions: list[str]) -> str:
        return await adrive(scoring(actions))

    return StructuredTool.from_function(
        func=lambda actions: drive(scoring(actions)),
        coroutine=ascore_actions,
        name=name,
        description=description,
        args_schema=ScoreActionsInput,
    )
