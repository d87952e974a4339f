"""Supervised fine-tuning of STL value models: TRL ``SFTTrainer`` with a peft LoRA adapter.

One call trains either a single adapter on all depths (the default; the STL prompt's trajectory already shows how
many actions were taken) or, with ``per_depth``, one adapter per depth as the reference did, each from the base
model. ``<out>`` is a portable adapter folder (:mod:`langgraph_stl.training.hub`); checkpoints (every
``save_steps`` steps, a rerun resumes from the last one), the resolved configs and the summary go to
``<out>_training/``. The user's own ``SFTConfig``/``LoraConfig`` (objects, or dicts over the project's defaults)
and callbacks go straight to TRL; only the fields the project must own are checked (:func:`with_owned_fields`).
Under ``torchrun`` every rank runs :func:`train` (data-parallel LoRA) and rank 0 alone writes files.
torch, transformers, trl and peft are imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph_stl.extras import require
from langgraph_stl.lifeline import exit_with_parent
from langgraph_stl.training.config import TrainConfig
from langgraph_stl.training.dataset import (
    DatasetError,
    Example,
    RowFormat,
    compute_stats,
    file_digest,
    load_many,
    to_trl_row,
)
from langgraph_stl.training.hub import EMBEDDED_HUB_ID

if TYPE_CHECKING:
    from peft import PeftConfig
    from transformers import TrainerCallback, TrainingArguments
    from trl import SFTConfig  # type: ignore[attr-defined]

log = logging.getLogger(__name__)

SUMMARY_FILE = "train_summary.json"
CONFIG_FILE = "train_config.json"


class UnknownBaseError(ValueError):
    """The base-model spec names nothing we can train on."""


class OwnedFieldError(ValueError):
    """A user's SFTConfig sets a field the project owns to a contradicting value."""


def training_dir(adapter_dir: str | Path) -> Path:
    """Where a run keeps everything that is not the portable adapter: ``<adapter>_training/``."""
    adapter_dir = Path(adapter_dir)
    return adapter_dir.with_name(adapter_dir.name + "_training")


@dataclass(frozen=True, slots=True)
class BaseModel:
    """A trainable base. ``folder`` is the local folder training loads; ``name`` is what the adapter records as
    ``base_model_name_or_path``: the Hub id when it came from the Hub, else the absolute folder; ``spec`` resolves
    to the same base in another process."""

    spec: str
    name: str
    folder: Path
    hub_id: str | None = None
    embedded: bool = False


def resolve_base(spec: str) -> BaseModel:
    """The trainable base for ``spec``; raises :class:`UnknownBaseError` early (before any data work).

    Accepted: ``smollm2`` (the embedded model, converted once to a plain folder in the cache), ``hf:<folder>``, a
    folder holding ``config.json``, or ``hf:<org/name>[@revision]`` (a Hub model, :func:`models.hub.resolve_hf_model`:
    downloaded, or from the local cache when offline). A LoRA adapter folder is refused: STL retrains each value
    model from the base. The model loads from ``folder``; the adapter records ``name`` (the Hub id for Hub models).
    """
    if spec in ("smollm2", "hf:smollm2"):
        from langgraph_stl.models import embedded_hf_folder

        folder = Path(embedded_hf_folder()).resolve()
        return BaseModel("smollm2", str(folder), folder, embedded=True)
    from langgraph_stl.models.hub import HubModelNotFoundError, resolve_hf_model

    ref = spec.removeprefix("hf:")
    try:
        hf = resolve_hf_model(ref)
    except HubModelNotFoundError as exc:
        raise UnknownBaseError(f"unknown base model {spec!r}: {exc}") from exc
    folder = hf.folder
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
    if hf.repo_id:
        return BaseModel(f"hf:{ref}", hf.repo_id, folder, hub_id=hf.repo_id)
    return BaseModel(str(folder), str(folder), folder)


@dataclass(slots=True)
class TrainSummary:
    """What one adapter's training did (all adapters of a run: ``<out>_training/train_summary.json``)."""

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
    work_dir: str = ""
    world_size: int = 1
    batches_per_rank: list[int] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_per_step(self) -> float:
        run_steps = self.steps - self.start_step
        return self.seconds / run_steps if run_steps > 0 else 0.0

    @property
    def steps_per_second(self) -> float:
        run_steps = self.steps - self.start_step
        return run_steps / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary with its derived rates (``stl train --json``)."""
        return {
            **asdict(self),
            "tokens_per_second": self.tokens_per_second,
            "steps_per_second": self.steps_per_second,
            "seconds_per_step": self.seconds_per_step,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TrainSummary:
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in raw.items() if k in names}
        data["eval_loss_by_depth"] = {int(k): v for k, v in data.get("eval_loss_by_depth", {}).items()}
        return cls(**data)


def read_summaries(adapter_dir: str | Path) -> list[TrainSummary]:
    """The summaries the last :func:`train` into ``adapter_dir`` wrote (one per adapter)."""
    path = training_dir(Path(adapter_dir).expanduser().resolve()) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no training summary at {path}")
    return [TrainSummary.from_json(s) for s in json.loads(path.read_text())]


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _gather(value: int) -> list[int]:
    """``value`` from every rank (a one-element list outside a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, value)
        return [int(v) for v in out]
    return [value]


def _jsonable(value: Any) -> Any:
    """json.dumps fallback for config dicts (sets of target modules, enums, dtypes)."""
    if isinstance(value, set | frozenset):
        return sorted(value)
    return getattr(value, "value", str(value))


def _targets(modules: Any) -> str:
    """A LoRA config's target modules for the model card: a pattern string as it is, a list sorted."""
    return modules if isinstance(modules, str) else ", ".join(sorted(modules or ()))


def sft_defaults(config: TrainConfig, *, device: str, quantized: bool) -> dict[str, Any]:
    """The project's SFTConfig fields for ``config`` (a user's dict is applied on top of these)."""
    return {
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": "linear",
        "warmup_steps": config.warmup_steps,
        "weight_decay": config.weight_decay,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "optim": "adamw_8bit" if quantized else "adamw_torch",
        "logging_steps": config.logging_steps,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "eval_strategy": "no",
        "seed": config.seed,
        "bf16": device == "cuda",
        "fp16": False,
        # Checkpointing only saves memory an 8B model needs; on CPU it just costs time (ecosystem notes).
        "activation_checkpointing": quantized,
        "use_cpu": device == "cpu",
        "report_to": config.report_to,
        "max_length": config.max_length,
        "packing": False,
        # Data-parallel runs (torchrun): every LoRA parameter gets a gradient, and gloo is the CPU backend.
        "ddp_find_unused_parameters": False,
        "ddp_backend": ("nccl" if device == "cuda" else "gloo") if _world_size() > 1 else None,
    }


def lora_defaults(config: TrainConfig) -> dict[str, Any]:
    """The project's LoraConfig fields for ``config``."""
    targets: str | list[str] = (
        config.target_modules
        if config.target_modules == "all-linear"
        else [m.strip() for m in config.target_modules.split(",") if m.strip()]
    )
    return {
        "r": config.lora_r,
        "lora_alpha": config.lora_alpha,
        "lora_dropout": config.lora_dropout,
        "target_modules": targets,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }


def _build(cls: Any, kwargs: Mapping[str, Any], what: str) -> Any:
    try:
        return cls(**kwargs)
    except TypeError as exc:  # an unknown field: "got an unexpected keyword argument 'x'"
        raise ValueError(f"bad {what} field: {exc}") from None


def with_owned_fields(args: SFTConfig | TrainingArguments, *, output_dir: Path, loss: str) -> SFTConfig:
    """A copy of ``args`` with the fields the project owns set: the checkpoint folder and the loss mask that
    matches the row format. A user value contradicting one of them raises :class:`OwnedFieldError` naming it."""
    from trl import SFTConfig  # type: ignore[attr-defined]

    # A plain TrainingArguments is converted as SFTTrainer does.
    sft: Any = args if isinstance(args, SFTConfig) else _build(SFTConfig, args.to_dict(), "SFTConfig")  # type: ignore[no-untyped-call]
    completion = loss == "completion"
    problems = []
    if sft.output_dir not in (None, "trainer_output", str(output_dir)):
        problems.append(
            f"output_dir={sft.output_dir!r}: checkpoints go to {output_dir} (next to the adapter, --out decides)"
        )
    if sft.completion_only_loss is not None and sft.completion_only_loss != completion:
        problems.append(
            f"completion_only_loss={sft.completion_only_loss}: contradicts loss={loss!r} "
            "(choose the loss mask with --loss completion|full)"
        )
    if sft.assistant_only_loss:
        problems.append("assistant_only_loss=True: the loss mask is chosen with --loss completion|full")
    if sft.push_to_hub:
        problems.append("push_to_hub=True would upload checkpoints; upload the adapter with --push-to-hub REPO")
    if problems:
        raise OwnedFieldError("your SFTConfig sets fields stl owns: " + "; ".join(problems))
    owned: SFTConfig = copy.copy(sft)
    owned.output_dir = str(output_dir)
    owned.completion_only_loss = completion
    return owned


def sft_args(
    config: TrainConfig,
    sft_config: SFTConfig | TrainingArguments | Mapping[str, Any] | None,
    *,
    output_dir: Path,
    device: str,
    quantized: bool,
) -> SFTConfig:
    """The SFTConfig a run trains with: the user's object as it is, or the project's defaults with the user's
    dict on top; then :func:`with_owned_fields`."""
    from trl import SFTConfig  # type: ignore[attr-defined]

    user: Any = sft_config
    if user is None or isinstance(user, Mapping):
        user = _build(
            SFTConfig, {**sft_defaults(config, device=device, quantized=quantized), **(user or {})}, "SFTConfig"
        )
    return with_owned_fields(user, output_dir=output_dir, loss=config.loss)


def peft_args(config: TrainConfig, peft_config: PeftConfig | Mapping[str, Any] | None) -> PeftConfig:
    """The user's PeftConfig as it is, or a LoraConfig of the project's defaults with the user's dict on top."""
    if peft_config is not None and not isinstance(peft_config, Mapping):
        return peft_config
    from peft import LoraConfig

    built: PeftConfig = _build(LoraConfig, {**lora_defaults(config), **(peft_config or {})}, "LoraConfig")
    return built


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """No tqdm bar per dataset map (TRL tokenizes through ``Dataset.map``) or weight loading, and no FutureWarnings
    about the libraries' own calls to each other's deprecated names (nothing a user can act on). The trainer's own
    progress bar is not one of these: it stays unless ``progress=False``."""
    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as tf_logging

    bars = [(m, m.is_progress_bar_enabled()) for m in (ds_logging, tf_logging)]
    for module, _ in bars:
        module.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        for module, was_enabled in bars:
            if was_enabled:
                module.enable_progress_bar()


def train(
    config: TrainConfig,
    *,
    sft_config: SFTConfig | TrainingArguments | Mapping[str, Any] | None = None,
    peft_config: PeftConfig | Mapping[str, Any] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = True,
) -> list[TrainSummary]:
    """Train the adapter(s) ``config`` describes and return one summary per adapter.

    ``sft_config``/``peft_config``: an ``SFTConfig`` (or ``TrainingArguments``) / ``PeftConfig`` is used as it is;
    a dict is applied over the project's defaults (what ``--sft-config``/``--lora-config`` files and child processes
    pass). ``callbacks`` go to the trainer. ``progress=False`` also hides the trainer's progress bar.
    """
    require("torch", "transformers", "peft", "trl", "datasets", feature="training")
    base = resolve_base(config.base)  # before any data work: a typo in the base fails in milliseconds
    device = _pick_device(config)
    quant = _quantization(config, device)
    out = Path(config.out).expanduser().resolve()
    work = training_dir(out)
    args = sft_args(config, sft_config, output_dir=work / "checkpoints", device=device, quantized=quant is not None)
    lora = peft_args(config, peft_config)
    if not config.data:
        raise DatasetError("no training data given")
    # A reference file without depth<k> in its name takes its depth from a single --depth.
    fallback = config.depths[0] if len(config.depths) == 1 else None
    result = load_many(config.data, strict=config.strict, depth=fallback)
    if result.errors:
        log.warning("skipped %d malformed line(s), first: %s", len(result.errors), result.errors[0])
    examples = [e for e in result.examples if not config.depths or e.depth in config.depths]
    if not examples:
        raise DatasetError(f"no examples to train on in {config.data} (depth filter: {config.depths or 'none'})")
    digest = file_digest(config.data)
    if config.per_depth:
        groups: dict[int, list[Example]] = {}
        for e in examples:
            groups.setdefault(e.depth, []).append(e)
        jobs: list[tuple[int | None, list[Example], Path, Path]] = [
            (d, groups[d], out / f"depth_{d}", work / f"depth_{d}") for d in sorted(groups)
        ]
    else:
        jobs = [(None, examples, out, work)]
    run = _Run(config, base, args, lora, callbacks, device, quant, digest, progress=progress)
    with _quiet_libraries():
        summaries = [run.train_one(exs, adapter, job_work, depth) for depth, exs, adapter, job_work in jobs]
    if _rank() == 0:
        work.mkdir(parents=True, exist_ok=True)
        record = {"stl": config.to_dict(), "sft": args.to_dict(), "peft": lora.to_dict()}  # type: ignore[no-untyped-call]
        (work / CONFIG_FILE).write_text(json.dumps(record, indent=2, default=_jsonable))
        (work / SUMMARY_FILE).write_text(json.dumps([asdict(s) for s in summaries], indent=2))
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


def _last_checkpoint(folder: Path) -> tuple[str, int] | None:
    """The newest *complete* checkpoint and its step. The Trainer writes ``trainer_state.json`` last, so a kill
    mid-save leaves a folder without a readable one; transformers' ``get_last_checkpoint`` would pick that folder
    and every rerun would then fail with "Can't find a valid checkpoint"."""
    found: list[tuple[int, str]] = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else ():
        try:
            found.append((int(json.loads((path / "trainer_state.json").read_bytes())["global_step"]), str(path)))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # torn by a kill: the Trainer saves this step again
    return (max(found)[1], max(found)[0]) if found else None


class _Run:
    """The settings shared by the adapters of one :func:`train` call."""

    def __init__(
        self,
        config: TrainConfig,
        base: BaseModel,
        args: SFTConfig,
        lora: PeftConfig,
        callbacks: Sequence[TrainerCallback],
        device: str,
        quant: Any,
        digest: str,
        *,
        progress: bool,
    ) -> None:
        self.config, self.base, self.args, self.lora = config, base, args, lora
        self.callbacks, self.device, self.quant, self.digest = list(callbacks), device, quant, digest
        self.progress = progress

    def train_one(self, examples: list[Example], adapter: Path, work: Path, depth: int | None) -> TrainSummary:
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, ProgressCallback, TrainerCallback
        from trl import SFTTrainer  # type: ignore[attr-defined]

        config, base = self.config, self.base
        train_ex, eval_ex = _split(examples, config.eval_fraction)
        fmt: RowFormat = "prompt_completion" if config.loss == "completion" else "messages"
        train_ds = Dataset.from_list([to_trl_row(e, fmt) for e in train_ex])
        eval_ds = Dataset.from_list([to_trl_row(e, fmt) for e in eval_ex]) if eval_ex else None

        tokenizer = AutoTokenizer.from_pretrained(base.folder)
        if not tokenizer.chat_template:
            raise UnknownBaseError(f"base model {base.name} has no chat template; STL value prompts are chat messages")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        dtype = torch.float32 if self.device == "cpu" else torch.bfloat16
        model = AutoModelForCausalLM.from_pretrained(base.folder, dtype=dtype, quantization_config=self.quant)
        args = copy.copy(self.args)
        args.output_dir = str(work / "checkpoints")
        losses: list[float] = []
        curve: list[tuple[int, float]] = []

        class _Recorder(TrainerCallback):  # type: ignore[misc]
            def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                logs: dict[str, float] | None = kwargs.get("logs")
                if logs and "loss" in logs:
                    losses.append(float(logs["loss"]))
                    curve.append((int(state.global_step), float(logs["loss"])))

        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tokenizer,
            peft_config=self.lora,
            callbacks=[*self.callbacks, _Recorder()],
        )
        # TRL drops examples whose target truncation left without a loss token (the prompt fills max_length).
        kept = len(trainer.train_dataset)  # type: ignore[arg-type]  # a map-style Dataset, built above
        if kept == 0:  # else torch fails later with "num_samples=0"
            raise DatasetError(
                f"all {len(train_ex)} training examples have prompts of at least max_length={args.max_length} "
                "tokens, so no target token is left to learn from: raise --max-length"
            )
        if kept < len(train_ex):
            log.warning(
                "%d of %d examples dropped: their prompts fill max_length=%d",
                len(train_ex) - kept,
                len(train_ex),
                args.max_length,
            )
        if not self.progress:  # the caller shows progress (stl improve, stl demo): no bar, no printed log dicts
            trainer.remove_callback(ProgressCallback)
            trainer.remove_callback(PrinterCallback)
        batch_tokens: list[int] = []  # non-padding tokens of each batch this rank's data loader built, in order
        collate = trainer.data_collator

        def counting_collator(batch: list[dict[str, Any]]) -> dict[str, Any]:
            out_batch = collate(batch)
            mask = out_batch.get("attention_mask")
            batch_tokens.append(int(mask.sum()) if mask is not None else int(out_batch["input_ids"].numel()))
            return out_batch

        trainer.data_collator = counting_collator
        ckpt_dir = work / "checkpoints"
        checkpoint, start_step = _last_checkpoint(ckpt_dir) or (None, 0)
        if checkpoint:
            log.info("resuming from %s (step %d)", checkpoint, start_step)
        t0 = time.perf_counter()
        trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.perf_counter() - t0
        # The batches the optimizer steps consumed: not the one the data loader prefetches past a max_steps stop, nor
        # the evaluation batches that follow through the same collator. Gathered over the ranks of a torchrun job.
        trained = min(len(batch_tokens), (trainer.state.global_step - start_step) * args.gradient_accumulation_steps)
        tokens = _gather(sum(batch_tokens[:trained]))
        batches = _gather(trained)
        eval_loss = float(trainer.evaluate()["eval_loss"]) if eval_ds is not None else None
        by_depth: dict[int, float] = {}
        for d in sorted({e.depth for e in eval_ex}):
            subset = Dataset.from_list([to_trl_row(e, fmt) for e in eval_ex if e.depth == d])
            by_depth[d] = float(trainer.evaluate(eval_dataset=subset)["eval_loss"])
        trainer.save_model(str(adapter))  # every rank calls it (ZeRO-3/FSDP gather there); rank 0 writes
        summary = TrainSummary(
            adapter_dir=str(adapter),
            base=base.name,
            depth=depth,
            examples=len(train_ex),
            eval_examples=len(eval_ex),
            start_step=start_step,
            steps=int(trainer.state.global_step),
            loss_first=losses[0] if losses else None,
            loss_last=losses[-1] if losses else None,
            eval_loss=eval_loss,
            eval_loss_by_depth=by_depth,
            tokens=sum(tokens),
            seconds=seconds,
            data_sha256=self.digest,
            resumed_from=checkpoint,
            loss_curve=curve,
            work_dir=str(work),
            world_size=len(batches),
            batches_per_rank=batches,
        )
        del trainer, model
        if _rank() == 0:
            self._finish_folder(adapter, summary, examples)
            if config.merge:
                summary.merged_dir = str(merge_adapter(adapter, work / "merged"))
        return summary

    def _finish_folder(self, adapter: Path, summary: TrainSummary, examples: list[Example]) -> None:
        """Make ``adapter`` portable: no training state, the base's name, and a model card."""
        from langgraph_stl.training.hub import NOT_PORTABLE, model_card

        for name in NOT_PORTABLE:
            (adapter / name).unlink(missing_ok=True)
        cfg_path = adapter / "adapter_config.json"
        cfg = json.loads(cfg_path.read_text())
        if cfg.get("base_model_name_or_path") != self.base.name:
            cfg["base_model_name_or_path"] = self.base.name
            cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
        args = self.args
        scheduler = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
        hyper = {
            "adapter": f"{cfg.get('peft_type', 'LORA')} r={cfg.get('r')} alpha={cfg.get('lora_alpha')} "
            f"dropout={cfg.get('lora_dropout')} targets={_targets(cfg.get('target_modules'))}",
            "loss": "completion only" if self.config.loss == "completion" else "full text",
            "learning rate": f"{args.learning_rate:g} ({scheduler}, warm-up {args.warmup_steps} steps)",
            "batch": f"{args.per_device_train_batch_size} per device × {args.gradient_accumulation_steps} "
            f"accumulation × {summary.world_size} process(es)",
            "epochs / max steps": f"{args.num_train_epochs:g} / {args.max_steps}",
            "max length": args.max_length,
            "weight decay": args.weight_decay,
            "optimizer": getattr(args.optim, "value", args.optim),
            "precision": "bf16" if args.bf16 else "fp32",
            "4-bit QLoRA": self.quant is not None,
            "seed": args.seed,
        }
        card = model_card(
            base_name=self.base.name,
            hub_base=self.base.hub_id or (EMBEDDED_HUB_ID if self.base.embedded else None),
            embedded=self.base.embedded,
            iteration=max(e.iteration for e in examples) + 1,
            depth=summary.depth,
            stats=compute_stats(examples),
            data_files=self.config.data,
            data_sha256=self.digest,
            hyper=hyper,
            summary=asdict(summary),
        )
        (adapter / "README.md").write_text(card, encoding="utf-8")


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


def write_request(
    path: Path, config: TrainConfig, sft: Mapping[str, Any] | None = None, peft: Mapping[str, Any] | None = None
) -> Path:
    """The JSON a child process (:func:`_main`, alone or under torchrun) trains from: configs travel as dicts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stl": config.to_dict(), "sft": dict(sft or {}), "peft": dict(peft or {})}))
    return path


def _main(argv: list[str]) -> int:
    """``python -m langgraph_stl.training.sft REQUEST.json``: train in a child process (Studio's training node,
    ``stl improve``, every rank of ``stl train --nproc``)."""
    if len(argv) != 1:
        print("usage: python -m langgraph_stl.training.sft REQUEST.json", file=sys.stderr)
        return 2
    exit_with_parent()  # a killed `stl improve`/`stl train --nproc` must not leave this trainer writing its run
    request = json.loads(Path(argv[0]).read_text())
    train(TrainConfig(**request["stl"]), sft_config=request["sft"], peft_config=request["peft"])
    _end_process_group()
    return 0


def _end_process_group() -> None:
    """Under torchrun: wait for rank 0's writes, then tear the process group down. A rank that exits with gloo's
    threads still running aborts ("terminate called without an active exception") and fails the whole job."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
