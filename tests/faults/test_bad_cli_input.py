"""Bad task ids and model specs on the command line: one clear error, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_stl.cli import app
from langgraph_stl.envs.base import InvalidTaskError
from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv, session_for


def test_stl_eval_with_a_missing_hf_folder_says_so(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    args = ["eval", "--env", "game24", "--tasks", "0-0", "--policy", "enumerate", "--value", "hf:/nonexistent"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2
    assert "hf:/nonexistent: no such folder" in result.output and "Repo id must" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("task", ["fixed_²", "fixed_" + "9" * 5000, "9" * 5000, "fixed_٣", "x" * 500])
def test_malformed_webshop_task_ids_are_invalid_tasks(task: str) -> None:
    env = WebShopHttpEnv("http://127.0.0.1:9", num_goals=10)  # never contacted: the id is refused first
    try:
        with pytest.raises(InvalidTaskError):
            env.reset(task)
    finally:
        env.close()
    assert session_for("7") == "fixed_7" and session_for("²") == "²"
