"""Supervised fine-tuning of STL value models: TRL ``SFTTrainer`` with a peft LoRA adapter.

One call trains either a single adapter on all depths (the default; the STL prompt's trajectory already shows how
many actions were taken) or, with ``per_depth``, one adapter per depth as the reference did, each from the base
model. Checkpoints go to ``<out>/checkpoints`` every ``save_steps`` steps and a rerun resumes from the last one.
torch, transformers, trl and peft are imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph_stl.training.config import TrainConfig
from langgraph_stl.training.dataset import DatasetError, Example, RowFormat, file_digest, load_many, to_trl_row

log = logging.getLogger(__name__)

SUMMARY_FILE = "train_summary.json"


class UnknownBaseError(ValueError):
    """The base-model spec names nothing we can train on."""


def resolve_base(spec: str) -> Path:
    """Absolute folder of a trainable Hugging Face model for ``spec``; raises :class:`UnknownBaseError` early.

    Accepted: ``smollm2`` (the embedded model, converted once to a plain folder in the cache), ``hf:<folder>``,
    ``hf:<org/name>`` (a Hub model: downloaded, or from the local cache when offline) or a folder holding
    ``config.json``. A LoRA adapter folder is refused: STL retrains each value model from the base.
    """
    if spec in ("smollm2", "hf:smollm2"):
        from langgraph_stl.models import embedded_hf_folder

        return Path(embedded_hf_folder()).resolve()
    from langgraph_stl.models.hub import HubModelNotFoundError, resolve_hf_model

    try:
        folder = resolve_hf_model(spec.removeprefix("hf:")).folder
    except HubModelNotFoundError as exc:
        raise UnknownBaseError(f"unknown base model {spec!r}: {exc}") from exc
    if (folder / "adapter_config.json").is_file():
        raise UnknownBaseError(
            f"base {spec!r} is a LoRA adapter; train from its base model instead "
            f"(see base_model_name_or_path in {folder / 'adapter_config.json'})"
        )
    if not (folder / "config.json").is_file():
        raise UnknownBaseError(
            f"unknown base model {spec!r}: expected 'smollm2', 'hf:<folder>', 'hf:<org/name>' or a folder with "
            f"config.json ({folder} has none)"
        )
    return folder


@dataclass(slots=True)
class TrainSummary:
    """What one adapter's training did (written to ``<adapter>/train_summary.json``)."""

    adapter_dir: str
    base: str
    depth: int | None
    examples: int
    eval_examples: int
    start_step: int
    steps: int
    loss_first: float | None
    loss_last: float | None
    eval_loss: float | None
    eval_loss_by_depth: dict[int, float]
    tokens: int
    seconds: float
    data_sha256: str
    resumed_from: str | None = None
    merged_dir: str | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    """(global step, training loss) at every logging step: the curve ``stl view`` draws."""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_per_step(self) -> float:
        run_steps = self.steps - self.start_step
        return self.seconds / run_steps if run_steps > 0 else 0.0


def train(config: TrainConfig) -> list[TrainSummary]:
    """Train the adapter(s) ``config`` describes and return one summary per adapter."""
    base = resolve_base(config.base)  # before any data work: a typo in the base fails in milliseconds
    if not config.data:
        raise DatasetError("no training data given")
    result = load_many(config.data, strict=config.strict)
    if result.errors:
        log.warning("skipped %d malformed line(s), first: %s", len(result.errors), result.errors[0])
    examples = [e for e in result.examples if not config.depths or e.depth in config.depths]
    if not examples:
        raise DatasetError(f"no examples to train on in {config.data} (depth filter: {config.depths or 'none'})")
    digest = file_digest(config.data)
    out = Path(config.out).expanduser().resolve()
    if config.per_depth:
        groups: dict[int, list[Example]] = {}
        for e in examples:
            groups.setdefault(e.depth, []).append(e)
        jobs: list[tuple[int | None, list[Example], Path]] = [
            (d, groups[d], out / f"depth_{d}") for d in sorted(groups)
        ]
    else:
        jobs = [(None, examples, out)]
    summaries = [_train_one(config, base, exs, folder, depth, digest) for depth, exs, folder in jobs]
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    return summaries


def _pick_device(config: TrainConfig) -> str:
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def _quantization(config: TrainConfig, device: str) -> Any:
    """A 4-bit BitsAndBytesConfig (QLoRA, as the reference) when on CUDA and bitsandbytes is present, else None."""
    import importlib.util

    have_bnb = importlib.util.find_spec("bitsandbytes") is not None
    if config.quantize == "4bit" and (device != "cuda" or not have_bnb):
        raise RuntimeError("--quantize 4bit needs a CUDA device and the bitsandbytes package")
    if config.quantize == "none" or device != "cuda" or not have_bnb:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )


def _split(examples: list[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    """Hold out by a hash of the text, so an example is held out (or not) whatever else is in the run: per-depth
    and single-model runs over the same data are evaluated on exactly the same examples."""
    if fraction <= 0:
        return examples, []
    train_ex: list[Example] = []
    held: list[Example] = []
    for e in examples:
        digest = hashlib.sha256((e.prompt + "\x00" + e.completion).encode()).digest()
        (held if int.from_bytes(digest[:8], "big") < fraction * 2**64 else train_ex).append(e)
    return train_ex, held


def _checkpoint_step(checkpoint: str) -> int:
    state = Path(checkpoint) / "trainer_state.json"
    return int(json.loads(state.read_text())["global_step"]) if state.is_file() else 0


def _train_one(
    config: TrainConfig,
    base: Path,
    examples: list[Example],
    out: Path,
    depth: int | None,
    digest: str,
) -> TrainSummary:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    device = _pick_device(config)
    train_ex, eval_ex = _split(examples, config.eval_fraction)
    fmt: RowFormat = "prompt_completion" if config.loss == "completion" else "messages"
    train_ds = Dataset.from_list([to_trl_row(e, fmt) for e in train_ex])
    eval_ds = Dataset.from_list([to_trl_row(e, fmt) for e in eval_ex]) if eval_ex else None

    tokenizer = AutoTokenizer.from_pretrained(base)
    if not tokenizer.chat_template:
        raise UnknownBaseError(f"base model {base} has no chat template; STL value prompts are chat messages")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    quant = _quantization(config, device)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, quantization_config=quant)
    targets: str | list[str] = (
        config.target_modules
        if config.target_modules == "all-linear"
        else [m.strip() for m in config.target_modules.split(",") if m.strip()]
    )
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        optim="adamw_8bit" if quant is not None else "adamw_torch",
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="no",
        seed=config.seed,
        bf16=device == "cuda",
        fp16=False,
        # Checkpointing only saves memory an 8B model needs; on CPU it just costs time (ecosystem notes).
        gradient_checkpointing=quant is not None,
        use_cpu=device == "cpu",
        report_to="none",
        max_length=config.max_length,
        completion_only_loss=config.loss == "completion",
        assistant_only_loss=False,
        packing=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora,
    )
    losses: list[float] = []
    curve: list[tuple[int, float]] = []
    counted = [0]
    collate = trainer.data_collator

    def counting_collator(batch: list[dict[str, Any]]) -> dict[str, Any]:
        out_batch = collate(batch)
        mask = out_batch.get("attention_mask")
        counted[0] += int(mask.sum()) if mask is not None else int(out_batch["input_ids"].numel())
        return out_batch

    trainer.data_collator = counting_collator

    class _Recorder(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logs: dict[str, float] | None = kwargs.get("logs")
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                curve.append((int(state.global_step), float(logs["loss"])))

    trainer.add_callback(_Recorder())
    ckpt_dir = out / "checkpoints"
    checkpoint: str | None = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None  # type: ignore[no-untyped-call]
    start_step = _checkpoint_step(checkpoint) if checkpoint else 0
    if checkpoint:
        log.info("resuming from %s (step %d)", checkpoint, start_step)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - t0
    train_tokens = counted[0]  # before evaluation batches go through the same collator
    eval_loss = float(trainer.evaluate()["eval_loss"]) if eval_ds is not None else None
    by_depth: dict[int, float] = {}
    for d in sorted({e.depth for e in eval_ex}):
        subset = Dataset.from_list([to_trl_row(e, fmt) for e in eval_ex if e.depth == d])
        by_depth[d] = float(trainer.evaluate(eval_dataset=subset)["eval_loss"])
    trainer.save_model(str(out))
    _absolutize_base(out, base)
    summary = TrainSummary(
        adapter_dir=str(out),
        base=str(base),
        depth=depth,
        examples=len(train_ex),
        eval_examples=len(eval_ex),
        start_step=start_step,
        steps=int(trainer.state.global_step),
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
        eval_loss=eval_loss,
        eval_loss_by_depth=by_depth,
        tokens=train_tokens,
        seconds=seconds,
        data_sha256=digest,
        resumed_from=checkpoint,
        loss_curve=curve,
    )
    del trainer, model
    if config.merge:
        summary.merged_dir = str(merge_adapter(out, out / "merged"))
    (out / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2))
    return summary


def _absolutize_base(adapter_dir: Path, base: Path) -> None:
    """peft stores the base path exactly as it was passed; make sure it is absolute so the adapter loads anywhere."""
    cfg_path = adapter_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("base_model_name_or_path") != str(base):
        cfg["base_model_name_or_path"] = str(base)
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Save base + adapter merged into plain weights (fp32 reload of the base, so QLoRA adapters merge exactly too)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    base = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(out_dir)
    return out_dir


def _main(argv: list[str]) -> int:
    """``python -m langgraph_stl.training.sft CONFIG.json``: train in a child process (Studio's training node)."""
    if len(argv) != 1:
        print("usage: python -m langgraph_stl.training.sft CONFIG.json", file=sys.stderr)
        return 2
    config = TrainConfig(**json.loads(Path(argv[0]).read_text()))
    train(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
