"""One real STL iteration with the embedded SmolLM2 on Game of 24, through the CLI: collect with V_0 (llama.cpp),
train V_1 a few LoRA steps on CPU, convert it to a GGUF LoRA, evaluate with V_1 served by llama.cpp.

The value readout is ``logits``: SmolLM2 almost never writes a parseable "the correctness score is N" for Game of 24
with generation (0 of 8 samples in a probe), so generated values would leave nothing to train on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langgraph_stl.training.dataset import read_jsonl

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.model
def test_one_stl_iteration_on_game24_with_smollm2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "langgraph_stl", "improve", "--env", "game24", "--out", str(out),
        "--policy", "enumerate:shuffle", "--value", "smollm2", "--base", "smollm2",
        "--train-tasks", "0", "--eval-tasks", "900", "--no-baseline",
        "--beam", "1", "--explore", "0", "--width", "2", "--depth", "3", "--value-samples", "1",
        "--value-mode", "logits", "--max-steps", "2", "--batch-size", "2", "--max-length", "1024",
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "STL iterations" in res.stdout

    manifest = json.loads((out / "manifest.json").read_text())
    assert {"iter1.collect", "iter1.train", "iter1.export", "iter1.eval"} <= set(manifest["steps"])
    examples = read_jsonl(out / "iter_1" / "data.jsonl", strict=True).examples
    assert examples and all(e.env == "game24" and e.iteration == 0 and e.task == "0" for e in examples)
    assert all(e.value_model == "smollm2" for e in examples)
    v1 = manifest["models"]["1"]
    assert Path(v1["gguf"]).stat().st_size > 0
    assert v1["spec_fast"] == f"smollm2+lora={out / 'iter_1' / 'model.gguf'}"
    assert v1["train"]["steps"] == 2 and v1["train"]["tokens"] > 0
    assert v1["metrics"]["tasks"] == 1 and v1["metrics"]["label"].startswith("greedy success rate on 1 game24")
    rows = [json.loads(line) for line in (out / "iter_1" / "eval.jsonl").read_text().splitlines()[1:]]
    assert rows[0]["task_id"] == "900" and rows[0]["error"] is None and rows[0]["value_calls"] > 0

    # rerunning a finished run does nothing and says so through the same summary
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert json.loads((out / "manifest.json").read_text())["steps"] == manifest["steps"]
