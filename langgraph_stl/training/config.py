"""Training configuration. The field help texts are the single source for the ``stl train`` option help.

Defaults follow the STL paper's value-model training (r=16, alpha=16, dropout 0, all linear projections, lr 2e-4,
warm-up 10 steps, weight decay 0.01, per-device batch 8) except where the reference made a choice that only
suits an 8B model on a GPU; those differences are noted per field.

:class:`TrainConfig` holds the project's knobs. Any other ``SFTConfig``/``LoraConfig`` field comes from the user's
own config (a file for the CLI, an object or a dict in Python) and is applied on top, TrlParser-style: project
defaults, then the user's file, then explicit command-line flags (:func:`overrides_from_file`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

LossMode = Literal["completion", "full"]
Device = Literal["auto", "cpu", "cuda"]
Quantize = Literal["auto", "4bit", "none"]


@dataclass(slots=True)
class TrainConfig:
    """Everything one ``stl train`` run needs; saved next to the adapter as ``train_config.json``."""

    data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Training data: project JSONL and/or reference ShareGPT files (JSON arrays of human/gpt pairs)."
        },
    )
    out: str = field(
        default="",
        metadata={"help": "Output folder: the LoRA adapter (or depth_<k>/ adapters with --per-depth) and checkpoints."},
    )
    base: str = field(
        default="smollm2",
        metadata={"help": "Base model: 'smollm2' (the embedded model), 'hf:<folder>' or a model folder."},
    )
    epochs: float = field(
        default=3.0, metadata={"help": "Epochs over the data (the reference used 20 on ~8 steps per epoch)."}
    )
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimizer steps (overrides epochs when > 0)."}
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate (linear decay after warm-up)."})
    warmup_steps: int = field(default=10, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    batch_size: int = field(default=8, metadata={"help": "Per-device batch size."})
    grad_accum: int = field(
        default=1,
        metadata={"help": "Gradient accumulation steps (the reference used 4, i.e. an effective batch of 32)."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scale = alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    target_modules: str = field(
        default="all-linear",
        metadata={"help": "Modules to adapt: 'all-linear' (q/k/v/o/gate/up/down for Llama) or a comma-separated list."},
    )
    loss: LossMode = field(
        default="completion",
        metadata={
            "help": "'completion': loss on the target only (default); 'full': loss on prompt + target (reference)."
        },
    )
    max_length: int = field(
        default=4096, metadata={"help": "Truncate tokenized examples to this many tokens (reference: 8192)."}
    )
    per_depth: bool = field(
        default=False,
        metadata={"help": "Train one adapter per depth (the reference's layout) instead of one for all depths."},
    )
    depths: list[int] = field(
        default_factory=list, metadata={"help": "Only use examples of these depths (default: all)."}
    )
    merge: bool = field(
        default=False, metadata={"help": "Also save the base with the adapter merged in (<out>/merged)."}
    )
    seed: int = field(default=3407, metadata={"help": "Random seed (the reference's)."})
    save_steps: int = field(
        default=25, metadata={"help": "Checkpoint every N steps; an interrupted run resumes from the last checkpoint."}
    )
    eval_fraction: float = field(
        default=0.0, metadata={"help": "Hold out this share of the examples and report their loss at the end."}
    )
    device: Device = field(default="auto", metadata={"help": "'auto' (CUDA when available), 'cpu' or 'cuda'."})
    quantize: Quantize = field(
        default="auto", metadata={"help": "'auto': 4-bit QLoRA on CUDA when bitsandbytes is installed; '4bit'; 'none'."}
    )
    strict: bool = field(default=False, metadata={"help": "Fail on malformed dataset lines instead of skipping them."})
    logging_steps: int = field(default=1, metadata={"help": "Log the loss every N steps."})
    report_to: str = field(
        default="none",
        metadata={"help": "Where the trainer logs: none, tensorboard (<out>_training/checkpoints/runs) or wandb."},
    )

    def __post_init__(self) -> None:
        problems = []
        if self.loss not in ("completion", "full"):
            problems.append(f"loss must be 'completion' or 'full', got {self.loss!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.quantize not in ("auto", "4bit", "none"):
            problems.append(f"quantize must be auto, 4bit or none, got {self.quantize!r}")
        for name in ("batch_size", "grad_accum", "lora_r", "max_length", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if not 0.0 <= self.eval_fraction < 1.0:
            problems.append("eval_fraction must be in [0, 1)")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# TrainConfig fields that set an SFTConfig / LoraConfig field (the CLI flag wins over the user's file for these).
SFT_FIELDS: dict[str, str] = {
    "epochs": "num_train_epochs",
    "max_steps": "max_steps",
    "learning_rate": "learning_rate",
    "warmup_steps": "warmup_steps",
    "weight_decay": "weight_decay",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "max_length": "max_length",
    "seed": "seed",
    "save_steps": "save_steps",
    "logging_steps": "logging_steps",
    "report_to": "report_to",
}
LORA_FIELDS: dict[str, str] = {
    "lora_r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "target_modules",
}


class ConfigFileError(ValueError):
    """A user's ``--sft-config`` / ``--lora-config`` file cannot be used; the message names the file."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of config fields (JSON is YAML, so one parser reads both)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigFileError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path}: not valid YAML/JSON ({exc})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise ConfigFileError(f"{path}: expected a mapping of field names to values, got {type(raw).__name__}")
    return raw


def overrides_from_file(
    path: str | Path | None, *, explicit: Collection[str], fields_map: Mapping[str, str]
) -> dict[str, Any]:
    """The fields of a user's config file, minus those an explicit CLI flag sets (``fields_map``: TrainConfig
    field -> config field), so that the precedence is: project defaults < file < flags."""
    if path is None:
        return {}
    overrides = read_config_file(path)
    for name in explicit:
        overrides.pop(fields_map.get(name, ""), None)
    return overrides


def help_for(name: str) -> str:
    """The help text of a :class:`TrainConfig` field (used by the CLI)."""
    for f in fields(TrainConfig):
        if f.name == name:
            return str(f.metadata["help"])
    raise KeyError(name)
