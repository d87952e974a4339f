"""docs/ENVIRONMENTS.md stays true: its example environment and Game of 24 pass the same protocol checks."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.envs.base import Environment, InvalidTaskError, State
from langgraph_stl.envs.game24 import Game24Env
from tests.conftest import REPO

DOC = REPO / "docs" / "ENVIRONMENTS.md"


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def _doc_environment() -> Environment:
    namespace: dict[str, Any] = {}
    exec(compile(_doc_blocks()[0], str(DOC), "exec"), namespace)  # our own documentation, not model output
    env = namespace["DoublingEnv"]()
    assert isinstance(env, Environment)
    return env


def _round_trip(state: State) -> State:
    restored = json.loads(json.dumps(state))
    assert restored == state, "state does not survive JSON"
    return restored  # type: ignore[no-any-return]


def check_protocol(env: Environment, task_ids: list[str], *, walks: int = 5, seed: int = 0) -> None:
    """The checklist of docs/ENVIRONMENTS.md, on random walks from each task."""
    rng = random.Random(seed)
    with pytest.raises(InvalidTaskError):
        env.reset("no such task")
    for task_id in task_ids:
        for _ in range(walks):
            state = _round_trip(env.reset(task_id))
            assert env.instruction(state) and env.observation(state)
            while not env.is_terminal(state):
                before = copy.deepcopy(state)
                nonsense = env.step(state, "definitely not an action")
                assert not nonsense.valid and nonsense.message and nonsense.state == before
                actions = env.legal_actions(state)
                assert actions, "a non-terminal state with a closed action space needs legal actions"
                result = env.step(state, rng.choice(actions))
                assert result.valid, result.message
                assert state == before, "step mutated its input"
                state = _round_trip(result.state)
            assert env.legal_actions(state) == []
            assert 0.0 <= env.true_reward(state) <= 1.0


def test_doc_example_passes_the_protocol() -> None:
    env = _doc_environment()
    check_protocol(env, env.task_ids("test"))


def test_doc_example_is_solvable_by_search() -> None:
    """Exhaustive search over the example's tree finds reward 1 for every test target (its tasks are well posed)."""
    env = _doc_environment()

    def best(state: State) -> float:
        if env.is_terminal(state):
            return env.true_reward(state)
        return max(best(env.step(state, a).state) for a in env.legal_actions(state) or [])

    assert all(best(env.reset(t)) == 1.0 for t in env.task_ids("test"))


async def test_doc_example_async_twins() -> None:
    env = _doc_environment()
    state = await env.areset("20")
    result = await env.astep(state, "*2")
    assert result.valid and result.state["value"] == 2
    assert await env.alegal_actions(result.state) == ["+1", "*2"]
    await env.aclose()


def test_game24_passes_the_protocol(data_dir: Path) -> None:
    env = Game24Env(data_dir)
    check_protocol(env, env.task_ids("test")[:20], walks=3)


def test_game24_doc_snippet_runs(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(_doc_blocks()[1], str(DOC), "exec"), {})
    assert capsys.readouterr().out == "Input: 4 5 6 10\nSteps:\n10 - 6 = 4 (left: 4 4 5)\nLeft: 4 4 5\n"
