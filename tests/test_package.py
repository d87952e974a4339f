"""Package-level guarantees: light import, CLI wiring."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_import_is_light() -> None:
    code = (
        "import sys, langgraph_stl, langgraph_stl.envs, langgraph_stl.cli, langgraph_stl.models\n"
        "import langgraph_stl.execution, langgraph_stl.execution.ray_executor\n"
        "heavy = {'torch', 'transformers', 'trl', 'peft', 'playwright', 'xllamacpp', 'ray'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "langgraph_stl", "--help"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    assert "Self-Taught Lookahead" in out
    assert "version" in out
