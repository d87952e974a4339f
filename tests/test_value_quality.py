"""Value-quality metrics for Game of 24: AUC, Wilson intervals, solver labels, state samples, baseline values and
the digit-aware logits readout (no language model needed)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from typing import Any

import pytest

from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.evaluation import value_quality as vq
from langgraph_stl.search import EnumeratePolicy, SearchContext, ValueItem, run_search


def test_auc_known_values() -> None:
    assert vq.auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert vq.auc([4, 3, 2, 1], [False, False, True, True]) == 0.0
    assert vq.auc([1, 1, 1, 1], [False, True, False, True]) == 0.5
    assert vq.auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert vq.auc([0.5, 0.5, 0.9], [False, True, True]) == 0.75  # tie counts one half
    assert vq.auc([0.1, 0.2], [True, True]) is None
    with pytest.raises(ValueError):
        vq.auc([0.1], [True, False])


def test_auc_interval_contains_estimate() -> None:
    scores = [0.1, 0.3, 0.2, 0.6, 0.5, 0.9, 0.4, 0.8]
    labels = [False, False, False, True, False, True, True, True]
    lo, hi = vq.auc_interval(scores, labels, resamples=500) or (math.nan, math.nan)
    assert lo <= vq.auc(scores, labels) <= hi  # type: ignore[operator]
    assert 0.0 <= lo < hi <= 1.0


def test_wilson() -> None:
    lo, hi = vq.wilson(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.31
    lo, hi = vq.wilson(10, 10)
    assert hi == pytest.approx(1.0) and 0.69 < lo < 0.75
    lo, hi = vq.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    with pytest.raises(ValueError):
        vq.wilson(0, 0)


def test_solvable() -> None:
    assert vq.solvable(["24"])
    assert not vq.solvable(["23"])
    assert vq.solvable(["4", "6"])
    assert vq.solvable(["8/3", "9"])  # exact fractions: (8/3) * 9 = 24
    assert not vq.solvable(["1", "1"])
    assert vq.solvable([4, 5, 6, 10])


@pytest.mark.slow
def test_sample_states_balanced_labelled_and_fixed() -> None:
    env = Game24Env()
    samples = vq.sample_states(env, ["900", "901"], [1, 2, 3], 6, seed=3)
    assert samples == vq.sample_states(env, ["900", "901"], [1, 2, 3], 6, seed=3)
    assert samples != vq.sample_states(env, ["900", "901"], [1, 2, 3], 6, seed=4)
    per = Counter((s.task, s.depth, s.solvable) for s in samples)
    for task in ("900", "901"):
        for depth in (2, 3):  # deep levels have plenty of both classes
            assert per[(task, depth, True)] == 3 and per[(task, depth, False)] == 3
    for s in samples:
        state = env.reset(s.task)
        for action in s.actions:
            state = env.step(state, action).state
        assert tuple(state["numbers"]) == s.numbers
        assert s.solvable == vq.solvable(s.numbers)
        if s.depth == 3:
            assert env.is_terminal(state) and s.solvable == (env.true_reward(state) == 1.0)
    with pytest.raises(ValueError):
        vq.sample_states(env, ["900"], [0], 4)


@pytest.mark.slow
def test_sample_states_in_sibling_groups() -> None:
    env = Game24Env()
    samples = vq.sample_states(env, ["900", "950"], [1, 2, 3], 6, seed=1, parents=2)
    for task in ("900", "950"):
        for depth in (1, 2, 3):
            group = [s for s in samples if s.task == task and s.depth == depth]
            assert 1 <= len({s.actions[:-1] for s in group}) <= 2 and len(group) <= 6
            assert len(group) == len(set(group))
    assert any(s.solvable for s in samples) and not all(s.solvable for s in samples)


def test_samples_round_trip(tmp_path: Any) -> None:
    samples = vq.sample_states(Game24Env(), ["905"], [1, 3], 4)
    vq.save_samples(samples, tmp_path / "s.jsonl")
    assert vq.load_samples(tmp_path / "s.jsonl") == samples


def test_solver_value_is_an_oracle_and_random_value_is_fixed() -> None:
    env = Game24Env()
    ctx = SearchContext(width=100, depth=3, breadth=1, n_value_samples=1)
    result = run_search(env, EnumeratePolicy(), vq.solver_value(), "4 5 6 10", algorithm="bfs", context=ctx)
    assert result["true_reward"]["value_selected"] == 1.0
    items = [
        ValueItem("t", "4 * 6 = 24 (left: 24)", "Terminal State", True),
        ValueItem("t", "1 + 1 = 2", "Left: 1 1 2"),
    ]
    values = [e.value for e in asyncio.run(vq.solver_value().aevaluate("game24", items))]
    assert values == [1.0, 0.0]  # the first reads the action's "(left: ...)", the second the observation
    first = asyncio.run(vq.random_value().aevaluate("game24", items))
    again = asyncio.run(vq.RandomValue().aevaluate("game24", items))
    assert [e.value for e in first] == [e.value for e in again]
    assert all(0.0 <= e.value < 1.0 for e in first)
