"""The collection graph: lookahead examples per visited state, the tree policy, no ground truth, resumability."""

from __future__ import annotations

from pathlib import Path

import pytest

from langgraph_stl.search import EnumeratePolicy, SearchContext, ValueModel
from langgraph_stl.training.collect import CollectConfig, collect, read_done
from langgraph_stl.training.dataset import read_jsonl
from tests.fakes import ScriptedChatModel, TreeEnv, path_value_responder

VALUES = {"/a": 8, "/b": 6, "/c": 2, "/a/a": 3, "/a/b": 9, "/b/a": 7, "/a/b/stop!": 9, "/a/stop!": 4}


def _value() -> ValueModel:
    return ValueModel(ScriptedChatModel(responder=path_value_responder(VALUES, default=5, stl=True)), style="stl")


def _config(**kw: object) -> CollectConfig:
    ctx = SearchContext(width=4, depth=3, n_value_samples=2)
    return CollectConfig(**{"beam": 1, "explore": 1, "search": ctx, "iteration": 2, "policy_name": "enum", **kw})  # type: ignore[arg-type]


def test_collects_lookahead_and_terminal_examples_without_ground_truth(tmp_path: Path) -> None:
    env = TreeEnv(branching=3, depth=3, forbid_true_reward=True)
    out = tmp_path / "data.jsonl"
    stats = collect(env, EnumeratePolicy(), _value(), ["t0", "t1"], out, _config())
    assert env.true_reward_calls == 0  # raises if called: structurally unreachable
    examples = read_jsonl(out, strict=True).examples
    assert stats.tasks == 2 and stats.examples + stats.terminal_examples == len(examples)
    assert read_done(out) == {"t0", "t1"}
    # beam 1 + explore 1: two depth-1 states and two depth-2 states per task get a lookahead
    t0 = [e for e in examples if e.task == "t0"]
    assert sorted(e.depth for e in t0 if e.kind == "lookahead") == [1, 1, 2, 2]
    assert stats.states == 8
    best = next(e for e in t0 if e.kind == "lookahead" and e.prompt.rstrip().endswith("at /a"))
    # /a's best successor is /a/b (9): target = its action, real observation, value with no discount
    assert "Best Next Action: b" in best.completion and "at /a/b" in best.completion
    assert best.value == pytest.approx(0.9) and best.completion.endswith("9.00 / 10.00.")
    assert best.iteration == 2 and best.env == "tree" and best.policy_model == "enum"
    # every candidate the lookahead compared is kept (stl view lists them): /a's successors, b the best
    candidates = dict(best.extra["candidates"])
    assert set(candidates) == {"a", "b", "c", "stop"} and max(candidates, key=candidates.__getitem__) == "b"
    # /a/b's best successor is the terminal /a/b/stop (9): lookahead says Terminal State, and a terminal example
    # at depth 3 carries V_k's judgement with the same value (as the reference data does)
    deep = next(e for e in t0 if e.kind == "lookahead" and e.prompt.rstrip().endswith("at /a/b"))
    assert "Terminal State" in deep.completion and deep.extra["terminal_successor"]
    term = [e for e in t0 if e.kind == "terminal"]
    assert any(e.depth == 3 and e.value == deep.value and "Current Action: stop" in e.prompt for e in term)


def test_rerun_skips_done_tasks_and_never_duplicates(tmp_path: Path) -> None:
    env = TreeEnv(branching=3, depth=3, forbid_true_reward=True)
    out = tmp_path / "data.jsonl"
    collect(env, EnumeratePolicy(), _value(), ["t0"], out, _config())
    n = len(read_jsonl(out).examples)
    again = collect(env, EnumeratePolicy(), _value(), ["t0", "t1"], out, _config())
    assert again.tasks_skipped == 1 and again.tasks == 1
    # a task killed midway (not in .done) is redone without writing the same state twice
    done = out.with_name(out.name + ".done")
    done.write_text("t0\n")
    third = collect(env, EnumeratePolicy(), _value(), ["t0", "t1"], out, _config())
    assert third.tasks == 1 and third.examples == 0 and third.duplicates > 0
    examples = read_jsonl(out, strict=True).examples
    assert len({(e.task, e.prompt) for e in examples}) == len(examples) == 2 * n


def test_bad_tree_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="beam >= 1"):
        CollectConfig(beam=0)
