"""LoRA SFT on a tiny random Llama: learning happens, adapters merge exactly, training resumes, bad bases fail fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langgraph_stl.training.config import TrainConfig
from langgraph_stl.training.dataset import Example, ExampleWriter
from langgraph_stl.training.sft import UnknownBaseError, merge_adapter, resolve_base, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    with ExampleWriter(path, fsync=False) as w:
        for i in range(8):
            w.write(
                Example(
                    prompt=f"Determine the value of the current state. Input: 4 4 6 {i}",
                    completion="Best Next Action: 4 + 8 = 12\nThus the correctness score is 7.50 / 10.00.",
                    depth=1 + i % 2,
                    value=0.75,
                    task=f"t{i}",
                )
            )
    return path


def _config(data: Path, base: Path, out: Path, **kw: object) -> TrainConfig:
    defaults: dict[str, object] = {"learning_rate": 1e-2, "warmup_steps": 0, "device": "cpu", "save_steps": 2}
    return TrainConfig(data=[str(data)], out=str(out), base=f"hf:{base}", **{**defaults, **kw})  # type: ignore[arg-type]


@pytest.mark.slow
def test_loss_falls_and_adapter_merges_exactly(tiny_base: Path, data: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    (summary,) = train(_config(data, tiny_base, tmp_path / "a", max_steps=12, batch_size=4))
    assert summary.steps == 12 and summary.tokens > 0 and summary.seconds > 0
    assert summary.loss_first is not None and summary.loss_last is not None
    assert summary.loss_last < summary.loss_first - 0.5  # 6.05 -> 5.18 with this seed
    cfg = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_base)  # absolute
    assert cfg["r"] == 16 and cfg["lora_alpha"] == 16
    weights = load_file(tmp_path / "a" / "adapter_model.safetensors")
    assert any("q_proj" in k for k in weights) and any("down_proj" in k for k in weights)  # all linear layers
    assert all(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at zero: it trained

    merged_dir = merge_adapter(tmp_path / "a", tmp_path / "merged")
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
        base_logits = base(ids).logits
        peft_logits = PeftModel.from_pretrained(base, str(tmp_path / "a"))(ids).logits
        merged_logits = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)(ids).logits
    assert (peft_logits - base_logits).abs().max() > 1e-3
    assert torch.allclose(peft_logits, merged_logits, atol=1e-5)


@pytest.mark.slow
def test_interrupted_training_resumes_from_checkpoint(tiny_base: Path, data: Path, tmp_path: Path) -> None:
    (first,) = train(_config(data, tiny_base, tmp_path / "r", max_steps=2))
    assert first.start_step == 0 and first.resumed_from is None
    (second,) = train(_config(data, tiny_base, tmp_path / "r", max_steps=4))
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-2")
    assert second.start_step == 2 and second.steps == 4
    assert (tmp_path / "r_training" / "checkpoints" / "checkpoint-4").is_dir()


@pytest.mark.slow
def test_per_depth_adapters_with_full_text_loss(tiny_base: Path, data: Path, tmp_path: Path) -> None:
    summaries = train(_config(data, tiny_base, tmp_path / "d", max_steps=1, per_depth=True, loss="full"))
    assert [s.depth for s in summaries] == [1, 2]
    assert all(s.examples == 4 for s in summaries)
    for d in (1, 2):
        assert (tmp_path / "d" / f"depth_{d}" / "adapter_model.safetensors").is_file()


def test_unknown_base_fails_before_data(tmp_path: Path) -> None:
    with pytest.raises(UnknownBaseError, match="unknown base model 'nope'"):
        # the data path does not exist either: the base error must come first
        train(TrainConfig(data=[str(tmp_path / "missing.jsonl")], out=str(tmp_path / "o"), base="nope"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(UnknownBaseError, match="is a LoRA adapter"):
        resolve_base(f"hf:{adapter}")
    with pytest.raises(ValueError, match="loss must be"):
        TrainConfig(loss="bogus")  # type: ignore[arg-type]


def test_train_cli_reports_bad_base_cleanly(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "langgraph_stl",
        "train",
        "--data",
        "x.jsonl",
        "--out",
        str(tmp_path),
        "--base",
        "nope",
    ]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2
    assert "unknown base model 'nope'" in res.stdout
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_prompts_longer_than_max_length_are_one_clear_error(tiny_base: Path, data: Path, tmp_path: Path) -> None:
    from langgraph_stl.training.dataset import DatasetError

    with pytest.raises(DatasetError, match=r"all 8 training examples have prompts of at least max_length=4"):
        train(_config(data, tiny_base, tmp_path / "short", max_steps=1, max_length=4))
