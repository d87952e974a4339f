"""STL iterations on a toy environment with scripted V_0 and a tiny random Llama as training base: the manifest,
the model registry, crash-resume without redoing finished steps, and the Studio graph."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.training.improve import (
    ImproveConfig,
    RunConfigMismatchError,
    run_improve,
    summary_rows,
    value_spec_of,
)
from tests.fakes import ScriptedChatModel, TreeEnv, path_value_responder


def tree_env() -> TreeEnv:
    return TreeEnv(branching=2, depth=3, forbid_true_reward=False)


def v0_chat() -> ScriptedChatModel:
    return ScriptedChatModel(responder=path_value_responder({"/a": 8, "/a/b": 9}, default=4))


class Crash(RuntimeError):
    pass


def _config(out: Path, base: Path, **kw: Any) -> ImproveConfig:
    settings: dict[str, Any] = {
        "env": "py:tests.test_training_improve:tree_env",
        "out": str(out),
        "policy": "enumerate",
        "value": "py:tests.test_training_improve:v0_chat",
        "base": f"hf:{base}",
        "train_tasks": ["t0", "t1"],
        "eval_tasks": ["t2", "t3"],
        "beam": 1,
        "explore": 1,
        "width": 2,
        "depth": 3,
        "value_samples": 1,
        "train": {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3, "device": "cpu", "max_length": 256},
    }
    return ImproveConfig(**{**settings, **kw})


@pytest.mark.slow
def test_iteration_registers_model_and_resumes_after_a_crash(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = _config(out, tiny_base)

    def crash_in_eval(step: str, event: dict[str, Any]) -> None:
        if step == "iter1.eval" and event["event"] == "task_done":
            raise Crash("killed during evaluation")

    with pytest.raises(Crash):
        run_improve(config, hook=crash_in_eval)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"iter0.eval", "iter1.collect", "iter1.train", "iter1.export"} <= set(manifest["steps"])
    assert "iter1.eval" not in manifest["steps"]
    done_at = {s: manifest["steps"][s]["at"] for s in ("iter1.collect", "iter1.train")}
    data_lines = (out / "iter_1" / "data.jsonl").read_text().count("\n")
    assert data_lines > 0
    assert (out / "iter_1" / "eval.jsonl").read_text().count("\n") == 2  # header + the first task's result survived

    events: list[tuple[str, str]] = []
    final = run_improve(config, hook=lambda step, e: events.append((step, e["event"])))
    steps = final.data["steps"]
    assert {s: steps[s]["at"] for s in done_at} == done_at  # not redone
    assert (out / "iter_1" / "data.jsonl").read_text().count("\n") == data_lines
    assert ("iter1.eval", "task_skipped") in events and events.count(("iter1.eval", "task_done")) == 1
    assert (out / "iter_1" / "eval.jsonl").read_text().count("\n") == 3

    v1 = final.model(1)
    assert v1["adapter"] == str(out / "iter_1" / "model") and v1["base"] == str(tiny_base)
    assert len(v1["data_sha256"]) == 64 and v1["train"]["steps"] == 2
    assert value_spec_of(v1) == f"stl:hf:{out / 'iter_1' / 'model'}"  # fine-tuned prompt format, no GGUF base
    assert steps["iter1.export"]["skipped"]
    assert v1["metrics"]["tasks"] == 2 and "greedy success rate on 2" in v1["metrics"]["label"]
    rows = summary_rows(final)
    assert [r["k"] for r in rows] == [0, 1] and rows[1]["examples"] == data_lines

    with pytest.raises(RunConfigMismatchError, match="beam"):
        run_improve(_config(out, tiny_base, beam=2))


def test_registered_adapter_loads_with_load_chat_model(tiny_base: Path, tmp_path: Path) -> None:
    from langgraph_stl.models import load_chat_model
    from langgraph_stl.training.config import TrainConfig
    from langgraph_stl.training.dataset import Example, ExampleWriter
    from langgraph_stl.training.sft import train

    data = tmp_path / "d.jsonl"
    with ExampleWriter(data, fsync=False) as w:
        w.write(Example(prompt="Input: 4 4 6 8", completion="Thus the correctness score is 7.50 / 10.00.", depth=1))
    train(TrainConfig(data=[str(data)], out=str(tmp_path / "a"), base=f"hf:{tiny_base}", max_steps=1, device="cpu"))
    model = load_chat_model(f"hf:{tmp_path / 'a'}", max_tokens=4, temperature=0.0)
    reply = model.invoke("Input: 4 4 6 8")
    assert isinstance(reply.content, str)


def test_bad_settings_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown training option"):
        _config(tmp_path, tmp_path, train={"epochz": 1})
    with pytest.raises(ValueError, match="no training tasks"):
        _config(tmp_path, tmp_path, train_tasks=[])


@pytest.mark.slow
def test_studio_graph_runs_the_loop(tiny_base: Path, tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("improve_graph", Path(__file__).parents[1] / "graphs" / "improve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["improve_graph"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    context = module.ImproveContext(
        env="py:tests.test_training_improve:tree_env",
        out=str(tmp_path / "studio"),
        policy="enumerate",
        value="py:tests.test_training_improve:v0_chat",
        base=f"hf:{tiny_base}",
        train_tasks="t0",
        eval_tasks="t1",
        width=2,
        max_steps=1,
        batch_size=2,
        max_length=256,
        sft={"lr_scheduler_type": "constant"},
        peft={"r": 4},
    )
    final = module.graph.invoke({}, context=context)
    assert final["k"] == 2
    assert [row["k"] for row in final["summary"]] == [0, 1]
    assert final["summary"][1]["train steps"] == 1  # trained in the child process
    from langgraph_stl.training.sft import training_dir

    record = json.loads((training_dir(tmp_path / "studio" / "iter_1" / "model") / "train_config.json").read_text())
    assert record["sft"]["lr_scheduler_type"] == "constant" and record["peft"]["r"] == 4  # the dicts crossed over
    manifest = json.loads(Path(final["manifest"]).read_text())
    assert manifest["steps"]["iter1.eval"]["metrics"]["tasks"] == 1


def test_search_context_carries_every_search_knob() -> None:
    """Evaluation of each iteration must search with the run's settings (breadth was once dropped)."""
    from langgraph_stl.training.improve import ImproveConfig

    config = ImproveConfig(
        env="game24", out="x", train_tasks=["0"], eval_tasks=["900"], width=7, breadth=2, depth=3, value_mode="logits"
    )
    ctx = config.search_context()
    assert (ctx.width, ctx.breadth, ctx.depth, ctx.value_mode) == (7, 2, 3, "logits")


@pytest.mark.slow
def test_per_depth_iteration_trains_and_serves_one_model_per_depth(
    tiny_base: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from langgraph_stl.search.specs import make_value
    from langgraph_stl.search.value import DepthValue
    from langgraph_stl.training.dataset import load_many
    from langgraph_stl.training.sft import training_dir

    out = tmp_path / "run"
    events: list[tuple[str, dict[str, Any]]] = []
    config = _config(out, tiny_base, per_depth=True, baseline=False, sft={"lr_scheduler_type": "constant"})
    final = run_improve(config, hook=lambda step, e: events.append((step, e)))
    depths = sorted({e.depth for e in load_many([out / "iter_1" / "data.jsonl"]).examples})
    assert len(depths) >= 2
    v1 = final.model(1)
    assert sorted(int(d) for d in v1["depths"]) == depths
    for d in depths:
        adapter = out / "iter_1" / "model" / f"depth_{d}"
        assert v1["depths"][str(d)]["adapter"] == str(adapter) and (adapter / "adapter_model.safetensors").is_file()
        record = json.loads((training_dir(out / "iter_1" / "model") / "train_config.json").read_text())
        assert record["sft"]["lr_scheduler_type"] == "constant"  # the user's SFTConfig field reached the trainer
    assert v1["train"]["steps"] == 2 * len(depths) and v1["train"]["depths"] == depths
    spec = value_spec_of(v1)
    assert spec.startswith("depths:")
    value = make_value(spec)
    assert isinstance(value, DepthValue) and sorted(value.models) == depths
    assert v1["metrics"]["tasks"] == 2  # evaluated with the per-depth value
    train_steps = [e for step, e in events if step == "iter1.train"]
    assert train_steps and train_steps[-1]["event"] == "train_step" and train_steps[-1]["step"] == 2
    # The hook is the one progress display: no trainer bar, printed loss dicts or dataset-map bars (the evaluation's
    # transformers value models still show their weight loading).
    out_text, err_text = capfd.readouterr()
    bars = [line for line in err_text.replace("\r", "\n").splitlines() if "it/s" in line or "s/it" in line]
    assert all(line.startswith("Loading weights") for line in bars), bars
    assert "Map" not in err_text and "'loss'" not in out_text and "FutureWarning" not in err_text


async def test_depth_value_routes_each_state_to_its_depth() -> None:
    from langgraph_stl.search.value import DepthValue, ProgrammaticValue, ValueItem

    class Const(ProgrammaticValue):
        def __init__(self, v: float) -> None:
            super().__init__(f"v{v}")
            self.v = v

        def score(self, item: ValueItem) -> float:
            return self.v

    value = DepthValue({2: Const(0.2), 4: Const(0.4)})
    items = [ValueItem("t", "a", "o", previous_actions=("x",) * n) for n in (0, 1, 2, 3, 5)]
    # depth = previous actions + 1: 1 has no model below (the lowest is used), 3 uses 2, 6 uses 4
    assert [e.value for e in await value.aevaluate("game24", items)] == [0.2, 0.2, 0.2, 0.4, 0.4]
    assert value.name == "per-depth(2: v0.2, 4: v0.4)"


def test_unservable_lora_config_and_older_manifests(tmp_path: Path) -> None:
    from langgraph_stl.training.improve import Manifest

    settings: dict[str, Any] = {"env": "game24", "out": str(tmp_path), "train_tasks": ["0"]}
    with pytest.raises(ValueError, match=r"cannot be served by llama\.cpp.*DoRA"):
        ImproveConfig(**settings, peft={"use_dora": True})
    ImproveConfig(**settings, peft={"use_dora": True}, gguf=False)  # fine without GGUF export
    config = ImproveConfig(**settings)
    manifest = Manifest(tmp_path, config)
    for key in ("per_depth", "sft", "peft"):  # a manifest written before these settings existed
        del manifest.data["config"][key]
    manifest.save()
    Manifest(tmp_path, config)  # still resumes
    with pytest.raises(RunConfigMismatchError, match="per_depth"):
        Manifest(tmp_path, ImproveConfig(**settings, per_depth=True))


@pytest.mark.slow
def test_improve_cli_json_with_config_files_and_per_depth(tiny_base: Path, tmp_path: Path) -> None:
    import os
    import subprocess

    from langgraph_stl.training.sft import training_dir

    (tmp_path / "sft.yaml").write_text("lr_scheduler_type: constant\nlearning_rate: 0.003\nmax_steps: 9\n")
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "langgraph_stl",
        "improve",
        *("--env", "py:tests.test_training_improve:tree_env", "--out", str(out), "--policy", "enumerate"),
        *("--value", "py:tests.test_training_improve:v0_chat", "--base", f"hf:{tiny_base}"),
        *("--train-tasks", "t0", "--eval-tasks", "t1", "--no-baseline", "--width", "2", "--depth", "3"),
        *("--value-samples", "1", "--max-steps", "1", "--batch-size", "2", "--max-length", "256"),
        *("--per-depth", "--sft-config", str(tmp_path / "sft.yaml"), "--json"),
    ]
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout)  # stdout is the JSON alone; progress went to stderr
    assert report["manifest"] == str(out / "manifest.json")
    assert [row["k"] for row in report["iterations"]] == [0, 1] and report["iterations"][1]["success"] is not None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["per_depth"] and "depths" in manifest["models"]["1"]
    record = json.loads((training_dir(out / "iter_1" / "model") / "train_config.json").read_text())
    # --max-steps given on the command line wins over the file; the file's other fields win over the defaults
    assert record["sft"]["max_steps"] == 1 and record["sft"]["learning_rate"] == 0.003
    assert record["sft"]["lr_scheduler_type"] == "constant"
