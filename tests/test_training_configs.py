"""Users' own TRL/peft settings, portable adapters, Hub ids and uploads, and data-parallel SFT under torchrun.

The trainer is real throughout (a tiny random Llama, tests/tiny_llama.py); only the Hub upload is patched, at the
``HfApi`` calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.training.config import TrainConfig, overrides_from_file, read_config_file
from langgraph_stl.training.dataset import DatasetError, Example, ExampleWriter, load_many, write_sharegpt
from langgraph_stl.training.hub import PushError, push_adapter
from langgraph_stl.training.sft import OwnedFieldError, train, training_dir

REPO = Path(__file__).resolve().parents[1]
PORTABLE = {
    "adapter_config.json",
    "adapter_model.safetensors",
    "README.md",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
}


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
                    iteration=1,
                )
            )
    return path


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **extra}


def _stl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "langgraph_stl", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env or _env(), timeout=600)


# ---------------------------------------------------------------------------------------------------------------
# Config files and owned fields (no training)


def test_config_files_yaml_json_and_flag_precedence(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("learning_rate: 0.001\nlr_scheduler_type: constant\nmax_steps: 7\n")
    (tmp_path / "l.json").write_text('{"r": 4, "lora_alpha": 8}')
    assert read_config_file(tmp_path / "l.json") == {"r": 4, "lora_alpha": 8}
    fields = {"learning_rate": "learning_rate", "max_steps": "max_steps"}
    # --max-steps given on the command line: the file's max_steps is dropped, its other fields stay
    got = overrides_from_file(tmp_path / "s.yaml", explicit={"max_steps"}, fields_map=fields)
    assert got == {"learning_rate": 0.001, "lr_scheduler_type": "constant"}
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: expected a mapping"):
        read_config_file(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match=r"nope\.yaml"):
        read_config_file(tmp_path / "nope.yaml")


def test_owned_fields_and_unknown_fields_fail_before_any_data_work(tmp_path: Path) -> None:
    from trl import SFTConfig  # type: ignore[attr-defined]

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")  # resolves as a base; nothing loads it
    missing = str(tmp_path / "missing.jsonl")  # the config errors must come first
    config = TrainConfig(data=[missing], out=str(tmp_path / "o"), base=f"hf:{tmp_path / 'base'}", device="cpu")
    with pytest.raises(OwnedFieldError, match="output_dir='/elsewhere'"):
        train(config, sft_config=SFTConfig(output_dir="/elsewhere", use_cpu=True))
    with pytest.raises(OwnedFieldError, match="completion_only_loss=False: contradicts loss='completion'"):
        train(config, sft_config={"completion_only_loss": False})
    with pytest.raises(OwnedFieldError, match="push_to_hub"):
        train(config, sft_config={"push_to_hub": True})
    with pytest.raises(ValueError, match=r"bad SFTConfig field.*learning_rat"):
        train(config, sft_config={"learning_rat": 1.0})
    with pytest.raises(ValueError, match=r"bad LoraConfig field.*rank"):
        train(config, peft_config={"rank": 4})
    with pytest.raises(DatasetError, match="no such dataset file"):
        train(config, sft_config={"lr_scheduler_type": "constant"})  # a good config reaches the data


def test_reference_file_without_depth_in_its_name_needs_depth(tmp_path: Path) -> None:
    ref = tmp_path / "improvement.json"
    write_sharegpt([Example("Determine the value. Input: 1", "Thus the correctness score is 5.00 / 10.00.", 3)], ref)
    with pytest.raises(DatasetError, match="give it with --depth K"):
        load_many([ref])
    (example,) = load_many([ref], depth=2).examples
    assert example.depth == 2
    named = tmp_path / "x_depth4.json"
    shutil.copy(ref, named)
    assert load_many([named], depth=2).examples[0].depth == 4  # the name still wins


# ---------------------------------------------------------------------------------------------------------------
# Real training


@pytest.mark.slow
def test_user_objects_pass_through_and_the_adapter_is_portable(tiny_base: Path, data: Path, tmp_path: Path) -> None:
    import torch
    from peft import AutoPeftModelForCausalLM, LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig  # type: ignore[attr-defined]

    steps: list[int] = []

    class Steps(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            steps.append(state.global_step)

    out = tmp_path / "run" / "adapter"
    config = TrainConfig(data=[str(data)], out=str(out), base=f"hf:{tiny_base}", device="cpu")
    sft = SFTConfig(
        max_steps=3,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        per_device_train_batch_size=4,
        logging_steps=1,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
    )
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    (summary,) = train(config, sft_config=sft, peft_config=lora, callbacks=[Steps()])
    assert steps == [1, 2, 3] and summary.steps == 3 and summary.world_size == 1
    assert summary.batches_per_rank == [3]  # trained batches: not the one prefetched past the max_steps stop
    assert sft.output_dir == "trainer_output"  # the user's object is not modified
    work = training_dir(out)
    assert (work / "checkpoints" / "checkpoint-3").is_dir()
    record = json.loads((work / "train_config.json").read_text())
    assert record["sft"]["lr_scheduler_type"] == "constant" and record["peft"]["r"] == 4
    assert sorted(record["peft"]["target_modules"]) == ["q_proj", "v_proj"]

    # The adapter folder holds only what peft and the Hub read.
    assert {p.name for p in out.iterdir()} <= PORTABLE
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    assert f"the local folder `{tiny_base}`" in card and "V_2" in card  # data labelled by V_1
    assert "| lora_alpha" not in card and "r=4 alpha=8" in card and "constant" in card
    assert f"{summary.loss_first:.4f} → {summary.loss_last:.4f}" in card
    assert "| 1 | 4 | 0 |" in card  # examples per depth

    moved = tmp_path / "elsewhere" / "v2"
    shutil.move(str(out), moved)
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        auto = AutoPeftModelForCausalLM.from_pretrained(str(moved))(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_base)
        base_logits = base(ids).logits
        explicit = PeftModel.from_pretrained(base, str(moved))(ids).logits
    assert torch.allclose(auto, explicit, atol=1e-6)
    assert (auto - base_logits).abs().max() > 1e-4


def _hub_cache(root: Path, repo_id: str, folder: Path) -> Path:
    """A Hugging Face cache entry for ``repo_id`` holding ``folder``'s files (what a download would leave)."""
    revision = "0" * 40
    entry = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, entry / "snapshots" / revision)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(revision)
    return root


@pytest.mark.slow
def test_cli_hub_base_config_files_json_and_moved_adapter(tiny_base: Path, data: Path, tmp_path: Path) -> None:
    cache = _hub_cache(tmp_path / "hub", "stl-test/tiny-llama", tiny_base)
    env = _env(HF_HUB_CACHE=str(cache))
    (tmp_path / "sft.yaml").write_text("learning_rate: 0.005\nlr_scheduler_type: constant\nmax_steps: 9\n")
    (tmp_path / "lora.json").write_text('{"r": 4, "lora_alpha": 4, "target_modules": ["q_proj", "k_proj"]}')
    out = tmp_path / "v1"
    res = _stl(
        *("train", "--data", str(data), "--out", str(out), "--base", "hf:stl-test/tiny-llama", "--device", "cpu"),
        *("--sft-config", str(tmp_path / "sft.yaml"), "--lora-config", str(tmp_path / "lora.json")),
        *("--max-steps", "2", "--lora-alpha", "8", "--batch-size", "4", "--report-to", "tensorboard", "--json"),
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)  # stdout is the JSON alone
    assert summary["world_size"] == 1 and summary["tokens_per_second"] > 0
    (adapter,) = summary["adapters"]
    assert adapter["steps"] == 2 and adapter["steps_per_second"] > 0
    record = json.loads((training_dir(out) / "train_config.json").read_text())
    # defaults < file < flags: --max-steps and --lora-alpha win, the file's other fields win over the defaults
    assert record["sft"]["max_steps"] == 2 and record["sft"]["learning_rate"] == 0.005
    assert record["sft"]["lr_scheduler_type"] == "constant" and record["sft"]["report_to"] == ["tensorboard"]
    assert list((training_dir(out) / "checkpoints" / "runs").glob("*/events.out.tfevents.*"))  # TensorBoard logged
    assert record["peft"]["r"] == 4 and record["peft"]["lora_alpha"] == 8
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "stl-test/tiny-llama"  # the Hub id, not the cache path
    assert "base_model: stl-test/tiny-llama" in (out / "README.md").read_text()

    moved = tmp_path / "moved"
    shutil.move(str(out), moved)
    load = (
        "import sys; from peft import AutoPeftModelForCausalLM; "
        "m = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1]); "
        "print(m.peft_config['default'].base_model_name_or_path, m.peft_config['default'].r)"
    )
    res = subprocess.run([sys.executable, "-c", load, str(moved)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == ["stl-test/tiny-llama", "4"]


def test_missing_hub_base_offline_is_one_clear_line(tmp_path: Path) -> None:
    env = _env(HF_HUB_CACHE=str(tmp_path / "empty"))
    res = _stl("train", "--data", "x.jsonl", "--out", str(tmp_path / "o"), "--base", "hf:nobody/nothing", env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "hf:nobody/nothing is not in the local Hugging Face cache" in res.stdout and "HF_HUB_OFFLINE=1" in res.stdout


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_each_see_half_the_batches(tiny_base: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    res = _stl(
        *("train", "--data", str(data), "--out", str(out), "--base", f"hf:{tiny_base}", "--device", "cpu"),
        *("--epochs", "1", "--batch-size", "2", "--lr", "0.01", "--nproc", "2", "--json"),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (adapter,) = json.loads(res.stdout)["adapters"]
    # 8 examples in batches of 2: one process would take 4 batches; two ranks take 2 each, in 2 optimizer steps.
    assert adapter["world_size"] == 2 and adapter["batches_per_rank"] == [2, 2] and adapter["steps"] == 2
    assert adapter["tokens"] > 0 and adapter["loss_first"] is not None
    assert (out / "adapter_model.safetensors").is_file() and not (out / "training_args.bin").exists()
    assert json.loads((training_dir(out) / "train_summary.json").read_text())[0]["world_size"] == 2


# ---------------------------------------------------------------------------------------------------------------
# Upload


def _fake_adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base"}))
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / "README.md").write_text("card")
    return folder


def test_push_uploads_the_adapter_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi, constants

    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def create(self: HfApi, repo_id: str, **kw: Any) -> None:
        calls.append(("create", {"id": repo_id, **kw}))

    monkeypatch.setattr(HfApi, "create_repo", create)

    def upload(self: HfApi, **kw: Any) -> str:
        calls.append(("upload", kw))
        return "https://huggingface.co/me/v1/commit/abc"

    monkeypatch.setattr(HfApi, "upload_folder", upload)
    adapter = _fake_adapter(tmp_path / "v1")
    assert push_adapter(adapter, "me/v1", private=True) == "https://huggingface.co/me/v1/commit/abc"
    assert calls[0] == ("create", {"id": "me/v1", "repo_type": "model", "private": True, "exist_ok": True})
    assert calls[1][0] == "upload" and calls[1][1]["folder_path"] == str(adapter) and calls[1][1]["repo_id"] == "me/v1"

    from typer.testing import CliRunner

    from langgraph_stl.cli import app

    res = CliRunner().invoke(app, ["push", str(adapter), "me/v1"])
    assert res.exit_code == 0 and "pushed" in res.output and calls[-1][0] == "upload"

    (adapter / "training_args.bin").write_bytes(b"x")
    with pytest.raises(PushError, match="holds training state"):
        push_adapter(adapter, "me/v1")
    res = CliRunner().invoke(app, ["push", str(tmp_path), "me/v1"])
    assert res.exit_code == 2 and "is not a LoRA adapter folder" in res.output
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    (adapter / "training_args.bin").unlink()
    with pytest.raises(PushError, match="HF_HUB_OFFLINE"):
        push_adapter(adapter, "me/v1")
