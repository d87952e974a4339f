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
        # The notebook's default value model is the embedded SmolLM2; CI swaps in a scripted one (same spec path,
        # make_value) because a 135M model on 2 shared cores needs minutes per puzzle.
        "STL_NB_VALUE": "py:tests.test_eval_cli:fake_value",
        "STL_NB_WIDTH": "2",
        "STL_NB_ROLLOUTS": "1",
        "STL_NB_VALUE_SAMPLES": "1",
        "STL_NB_EVAL_TASKS": "1",
    },
    "02_stl_game24.ipynb": {
        # V0 scripted, V1 fine-tuned from a ~100k-parameter random Llama (tests/tiny_llama.py): the notebook's
        # whole pipeline (collect, LoRA SFT, evaluate both, report) in seconds; users get SmolLM2 by default.
        "STL_NB_VALUE": "py:tests.test_eval_cli:fake_value",
        "STL_NB_TRAIN_TASKS": "1",
        "STL_NB_EVAL_TASKS": "1",
        "STL_NB_TRAIN_STEPS": "2",
        "STL_NB_GGUF": "0",
    },
    "03_webshop.ipynb": {
        "STL_NB_RULE_TASKS": "3",
        "STL_NB_SEARCH_VALUE": "py:langgraph_stl.evaluation.baselines:random_value",
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
    for key, value in {**SMALL[name], "STL_NB_OUT": str(tmp_path / "out")}.items():
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
def test_quickstart_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = _text(_execute("01_quickstart.ipynb", monkeypatch, tmp_path))
    assert "search 900 with greedy" in text and "expand r0" in text and "value" in text
    assert "true reward:" in text and "pass_at_n" in text
    assert "oracle pass@k score" in text and "1 tasks in" in text
    assert text.count("<iframe") == 2 and "stl-data" in text  # the tree and the run, rendered inline


@pytest.mark.slow
def test_stl_game24_runs_one_iteration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.tiny_llama import build_tiny_llama

    monkeypatch.setenv("STL_NB_BASE", f"hf:{build_tiny_llama(tmp_path / 'tiny-llama')}")
    text = _text(_execute("02_stl_game24.ipynb", monkeypatch, tmp_path))
    assert "examples; depths" in text and "TARGET:" in text and "Thus the correctness score is" in text
    assert "V1 (after STL)" in text and "V0 (base) (baseline)" in text and "p (score)" in text
    assert (tmp_path / "out" / "iter_1" / "eval.jsonl").is_file()
    assert text.count("<iframe") == 1 and "stl-data" in text  # the run folder, rendered inline


@pytest.mark.slow
@pytest.mark.browser
def test_webshop_notebook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nb = _execute("03_webshop.ipynb", monkeypatch, tmp_path)
    text = _text(nb)
    assert "shop at http://127.0.0.1:" in text and "same page as over HTTP: True" in text
    assert "Your score (min 0.0, max 1.0)" in text and "reward:" in text
    assert "| rule baseline | 3 |" in text and "72.845" in text and "p (score)" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2
    assert "chosen:" in text and text.count("<iframe") == 1  # the search tree, rendered inline
