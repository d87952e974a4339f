"""`stl eval` end to end on Game of 24 (enumerated moves, a scripted value model), resuming, failures, bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from langgraph_stl.evaluation.results import load_results, record_from_search
from langgraph_stl.evaluation.search_task import api_models
from tests.conftest import REPO
from tests.fakes import ScriptedChatModel


def fake_value() -> ScriptedChatModel:
    """Scores a state 8/10 when 24 is among its numbers, else 5/10: enough to make greedy search find 24."""

    def respond(prompt: str, k: int) -> str:
        tail = prompt.split("Current Action:")[-1]
        return f"Thus the correctness score is {8 if '(left: 24)' in tail else 5}"

    return ScriptedChatModel(responder=respond, name_="fake-value")


def _eval(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "langgraph_stl", "eval", "--env", "game24", "--out", str(out), "--policy", "enumerate"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=REPO, timeout=300)


SMALL = ("--rollouts", "2", "--value-samples", "1", "--concurrency", "2")


@pytest.mark.slow
def test_eval_runs_resumes_extends_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "g24.jsonl"
    first = _eval(out, "--value", "py:tests.test_eval_cli:fake_value", "--limit", "2", *SMALL)
    assert first.returncode == 0, first.stderr
    assert "2 tasks run (0 failed), 0 already" in first.stdout and "rollouts per task: 2" in first.stdout
    again = _eval(out, "--value", "py:tests.test_eval_cli:fake_value", "--tasks", "0-3", *SMALL, "--label", "g24")
    assert again.returncode == 0, again.stderr
    assert "2 tasks run (0 failed), 2 already" in again.stdout
    results = load_results(out)
    assert results.header is not None and results.header.task_ids == ("900", "901", "902", "903")
    assert len(results.tasks) == 4 and len(out.read_text().splitlines()) == 5  # header + 4 tasks, no duplicates
    task = results.tasks["900"]
    assert len(task.rollouts) == 2 and len(task.rollouts[0].trajectory) == 3
    assert task.states_expanded and task.value_calls and task.usage["fake-value"].local
    assert task.wall_time_s is not None and task.error is None

    report = subprocess.run(
        [sys.executable, "-m", "langgraph_stl", "report", str(out), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)["files"][0]
    expected = 100 * sum(t.true_reward for t in results.tasks.values()) / 4
    assert doc["n_tasks"] == 4 and doc["variants"]["oracle"]["score"] == pytest.approx(expected)

    other = _eval(out, "--value", "py:tests.test_eval_cli:fake_value", "--limit", "2", "--rollouts", "3")
    assert other.returncode == 2 and "differs in: search" in other.stderr and "Traceback" not in other.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_unreachable_model_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "down.jsonl"
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    res = _eval(
        out, "--value", f"openai:gpt-4o@{url}", "--limit", "2", "--max-retries", "0", "--max-attempts", "2", *SMALL
    )
    assert res.returncode == 1, res.stderr  # no task succeeded to run: a failure, not a score of 0
    assert "2 tasks run (2 failed)" in res.stdout and "all 2 tasks failed to run" in res.stderr
    tasks = load_results(out).tasks
    assert all(t.error and "Connection" in t.error for t in tasks.values())
    assert all(t.true_reward == 0 and t.attempts == 2 for t in tasks.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--value", "smollm2", "--env", "chess"), "unknown environment 'chess'"),
        (("--value", "smollm2", "--tasks", "7-3"), "range 7-3 is empty"),
        (("--value", "smollm2", "--tasks", "0-5000"), "the split has only 100 tasks"),
        (("--value", "smollm2", "--env", "webshop", "--webshop-url", "http://127.0.0.1:1"), "--webshop-goals"),
        (("--value", "nonsense-spec"), "invalid model spec"),
        (("--value", "smollm2", "--algorithm", "astar"), "unknown algorithm"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    res = _eval(tmp_path / "x.jsonl", *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_record_from_search_and_api_models() -> None:
    result = {
        "task_id": "7",
        "algorithm": "greedy",
        "rollouts": [
            {"trajectory": ["a", "b"], "values": [0.5, 0.9], "value": 0.9, "true_reward": 0.25},
            {"trajectory": ["c"], "values": [-1.0], "value": -1.0, "true_reward": 1.0},
        ],
        "states_expanded": 12,
        "policy_calls": 3,
        "value_calls": 9,
        "tokens": {"gpt-4o": {"input_tokens": 100, "output_tokens": 10, "calls": 3}},
        "error": None,
    }
    rec = record_from_search(result, {"gpt-4o"})
    assert (rec.true_reward, rec.success, rec.states_expanded, rec.value_calls) == (1.0, True, 12, 9)
    assert rec.rollouts[0].values == (0.5, 0.9) and rec.rollouts[1].trajectory == ("c",)
    assert not rec.usage["gpt-4o"].local and rec.usage["gpt-4o"].prompt_tokens == 100
    failed = record_from_search({**result, "error": "model down"})
    assert failed.error == "model down" and failed.rollouts == () and failed.true_reward == 0
    specs = ["openai:gpt-4o", "stl:openai:my-llama@http://127.0.0.1:8020/v1", "openai:x@https://api.example.com/v1"]
    assert api_models([*specs, "smollm2", "enumerate", "py:m:f", "hf:some/model"]) == {"gpt-4o", "x"}


@pytest.mark.slow
def test_webshop_rule_baseline(tmp_path: Path) -> None:
    out = tmp_path / "rule.jsonl"
    cmd = [sys.executable, "-m", "langgraph_stl", "eval", "--env", "webshop", "--algorithm", "rule", "--out", str(out)]
    res = subprocess.run([*cmd, "--limit", "3"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    tasks = load_results(out).tasks
    assert sorted(tasks) == ["fixed_0", "fixed_1", "fixed_2"]
    for task in tasks.values():
        (rollout,) = task.rollouts
        assert rollout.trajectory[0].startswith("search[") and rollout.trajectory[-1] == "click[Buy Now]"
        assert len(rollout.trajectory) == 3 and task.states_expanded == 3 and 0 <= task.true_reward <= 1
    assert any(t.true_reward > 0 for t in tasks.values())


def test_models_are_required_except_for_the_rule_baseline(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "langgraph_stl", "eval", "--env", "game24", "--out", str(tmp_path / "x.jsonl")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and "--policy and --value are required" in res.stderr


def test_demo_rejects_an_unknown_environment(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "langgraph_stl", "demo", "--env", "chess", "--out", str(tmp_path / "demo")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and "unknown environment 'chess'" in res.stderr and not (tmp_path / "demo").exists()
