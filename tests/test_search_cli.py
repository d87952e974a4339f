"""`stl search` end to end in a subprocess (scripted value model through a ``py:`` spec)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

ORACLE = "py:tests.fakes:game24_oracle_model"


def _stl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langgraph_stl", "search", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_search_json_has_the_documented_keys() -> None:
    out = _stl("--task", "900", "--policy", "enumerate", "--value", ORACLE, "--algorithm", "bfs", "--width", "40",
               "--breadth", "2", "--value-samples", "1", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("trajectory", "reward", "states_expanded", "policy_calls", "value_calls", "tokens"):
        assert key in result
    assert result["reward"] == 1.0 and len(result["trajectory"]) == 3
    assert result["tokens"]["oracle"]["calls"] == result["value_calls"]
    # live progress on stderr (not a terminal here: one line per expansion, then a final one)
    lines = [line for line in out.stderr.splitlines() if line.startswith("stl search: ")]
    assert len(lines) >= result["expansions"] + 1
    calls, tokens_in = result["value_calls"], result["tokens"]["oracle"]["input_tokens"]
    assert (
        f"{result['expansions']} expanded · {calls} valued · best 1.00 · {calls} model calls (0 running)" in lines[-1]
    )
    assert f"{tokens_in:,} in" in lines[-1]


@pytest.mark.slow
def test_search_report_labels_the_true_reward_and_bad_input_fails_cleanly() -> None:
    out = _stl("--task", "900", "--policy", "enumerate", "--value", ORACLE, "--width", "40", "--rollouts", "1",
               "--value-samples", "1", "--quiet")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "true reward (display only" in out.stdout and "statistics" in out.stdout
    assert out.stderr == ""  # --quiet
    bad_env = _stl("--env", "chess")
    assert bad_env.returncode == 2 and "unknown environment 'chess'" in bad_env.stderr
    bad_spec = _stl("--policy", "foo:bar")
    assert bad_spec.returncode == 2 and "Accepted forms" in bad_spec.stderr and "Traceback" not in bad_spec.stderr
    bad_task = _stl("--task", "99999", "--policy", "enumerate", "--value", ORACLE, "--json")
    assert bad_task.returncode == 1
    assert json.loads(bad_task.stdout)["error"].startswith("InvalidTaskError")
