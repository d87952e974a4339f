"""The notebooks run top to bottom with small settings, and match their generator (tools/make_notebooks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

SMALL = {
    "01_quickstart.ipynb": {
        "STL_NB_WIDTH": "2",
        "STL_NB_ROLLOUTS": "1",
        "STL_NB_VALUE_SAMPLES": "1",
        "STL_NB_EVAL_TASKS": "1",
    },
}


def test_notebooks_match_their_generator() -> None:
    res = subprocess.run(
        [sys.executable, "tools/make_notebooks.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


def test_committed_notebooks_have_no_outputs() -> None:
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def _execute(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> nbformat.NotebookNode:
    for key, value in SMALL[name].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.model
def test_quickstart_runs_with_the_embedded_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = _text(_execute("01_quickstart.ipynb", monkeypatch, tmp_path))
    assert "search 900 with greedy" in text and "expand r0" in text and "value" in text
    assert "true reward:" in text and "pass_at_n" in text
    assert "oracle score" in text and "1 tasks in" in text
