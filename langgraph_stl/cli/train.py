"""`stl` commands: train (LoRA SFT of value models), dataset (stats/import/export), export-gguf."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from langgraph_stl.training.config import TrainConfig, help_for
from langgraph_stl.training.sft import TrainSummary

dataset_app = typer.Typer(help="Inspect and convert STL training data (project JSONL and reference files).")
console = Console(soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def print_train_summaries(summaries: list[TrainSummary]) -> None:
    """The end-of-training table: steps, loss first → last, throughput."""
    table = Table(title="training summary")
    columns = ("adapter", "depth", "examples", "steps", "loss first → last", "eval loss", "tokens/s", "s/step", "procs")
    for col in columns:
        table.add_column(col)
    for s in summaries:
        loss = (
            f"{s.loss_first:.4f} → {s.loss_last:.4f}" if s.loss_first is not None and s.loss_last is not None else "-"
        )
        table.add_row(
            s.adapter_dir,
            "all" if s.depth is None else str(s.depth),
            str(s.examples),
            f"{s.start_step} → {s.steps}",
            loss,
            "-" if s.eval_loss is None else f"{s.eval_loss:.4f}",
            f"{s.tokens_per_second:.1f}",
            f"{s.seconds_per_step:.2f}",
            str(s.world_size),
        )
    console.print(table)


def summaries_json(summaries: list[TrainSummary], **extra: object) -> str:
    """``--json``: every adapter's summary, plus the run's world size and token throughput."""
    seconds = max((s.seconds for s in summaries), default=0.0)
    tokens = sum(s.tokens for s in summaries)
    total_seconds = sum(s.seconds for s in summaries)
    return json.dumps(
        {
            "world_size": max((s.world_size for s in summaries), default=1),
            "tokens": tokens,
            "tokens_per_second": tokens / total_seconds if total_seconds > 0 else 0.0,
            "seconds": seconds if len(summaries) == 1 else total_seconds,
            "adapters": [s.to_json() for s in summaries],
            **extra,
        }
    )


# Command-line parameter -> TrainConfig field, where the names differ.
_FIELD_OF = {"lr": "learning_rate", "depth": "depths"}


_GIVEN = ("COMMANDLINE", "ENVIRONMENT")


def explicit_fields(ctx: typer.Context) -> set[str]:
    """TrainConfig fields the user set on the command line (they win over --sft-config/--lora-config files)."""
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return {_FIELD_OF.get(n, n) for n, src in sources.items() if src is not None and src.name in _GIVEN}


def train_command(
    ctx: typer.Context,
    data: Annotated[list[Path], typer.Option("--data", help=help_for("data"))],
    out: Annotated[Path, typer.Option("--out", help=help_for("out"))],
    base: Annotated[str, typer.Option(help=help_for("base"))] = "smollm2",
    epochs: Annotated[float, typer.Option(help=help_for("epochs"))] = 3.0,
    max_steps: Annotated[int, typer.Option(help=help_for("max_steps"))] = -1,
    lr: Annotated[float, typer.Option("--lr", help=help_for("learning_rate"))] = 2e-4,
    warmup_steps: Annotated[int, typer.Option(help=help_for("warmup_steps"))] = 10,
    weight_decay: Annotated[float, typer.Option(help=help_for("weight_decay"))] = 0.01,
    batch_size: Annotated[int, typer.Option(help=help_for("batch_size"))] = 8,
    grad_accum: Annotated[int, typer.Option(help=help_for("grad_accum"))] = 1,
    lora_r: Annotated[int, typer.Option(help=help_for("lora_r"))] = 16,
    lora_alpha: Annotated[int, typer.Option(help=help_for("lora_alpha"))] = 16,
    lora_dropout: Annotated[float, typer.Option(help=help_for("lora_dropout"))] = 0.0,
    target_modules: Annotated[str, typer.Option(help=help_for("target_modules"))] = "all-linear",
    loss: Annotated[str, typer.Option(help=help_for("loss"))] = "completion",
    max_length: Annotated[int, typer.Option(help=help_for("max_length"))] = 4096,
    per_depth: Annotated[bool, typer.Option("--per-depth/--single", help=help_for("per_depth"))] = False,
    depth: Annotated[
        list[int] | None,
        typer.Option(
            "--depth",
            help=help_for("depths") + " One --depth K also gives reference files without depth<k> in the name.",
        ),
    ] = None,
    merge: Annotated[bool, typer.Option(help=help_for("merge"))] = False,
    seed: Annotated[int, typer.Option(help=help_for("seed"))] = 3407,
    save_steps: Annotated[int, typer.Option(help=help_for("save_steps"))] = 25,
    eval_fraction: Annotated[float, typer.Option(help=help_for("eval_fraction"))] = 0.0,
    device: Annotated[str, typer.Option(help=help_for("device"))] = "auto",
    quantize: Annotated[str, typer.Option(help=help_for("quantize"))] = "auto",
    strict: Annotated[bool, typer.Option(help=help_for("strict"))] = False,
    logging_steps: Annotated[int, typer.Option(help=help_for("logging_steps"))] = 1,
    report_to: Annotated[str, typer.Option(help=help_for("report_to"))] = "none",
    sft_config: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file of SFTConfig fields over the defaults (flags given here win over it)."),
    ] = None,
    lora_config: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file of LoraConfig fields over the defaults (flags given here win over it)."),
    ] = None,
    nproc: Annotated[int, typer.Option(help="Processes per node: >1 runs data-parallel under torchrun.")] = 1,
    nnodes: Annotated[int, typer.Option(help="Nodes of a multi-node torchrun job (with --rdzv-endpoint).")] = 1,
    node_rank: Annotated[int | None, typer.Option(help="This node's rank (torchrun --node_rank).")] = None,
    rdzv_endpoint: Annotated[str, typer.Option(help="HOST:PORT of the rendezvous (multi-node).")] = "",
    rdzv_id: Annotated[str, typer.Option(help="Rendezvous id, the same on every node.")] = "stl-train",
    rdzv_backend: Annotated[str, typer.Option(help="Rendezvous backend.")] = "c10d",
    push_to_hub: Annotated[
        str | None, typer.Option("--push-to-hub", metavar="REPO", help="Upload the adapter to this Hub repo.")
    ] = None,
    private: Annotated[bool, typer.Option(help="With --push-to-hub: create the repo private.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary (training output goes to stderr).")] = (
        False
    ),
) -> None:
    """Fine-tune a value model with LoRA on STL data (resumes from <out>_training/checkpoints when interrupted)."""
    from langgraph_stl.training.config import LORA_FIELDS, SFT_FIELDS, ConfigFileError, overrides_from_file
    from langgraph_stl.training.dataset import DatasetError
    from langgraph_stl.training.distributed import Launch, train_distributed
    from langgraph_stl.training.hub import PushError, push_adapter
    from langgraph_stl.training.sft import UnknownBaseError, train

    try:
        config = TrainConfig(
            data=[str(p) for p in data],
            out=str(out),
            base=base,
            epochs=epochs,
            max_steps=max_steps,
            learning_rate=lr,
            warmup_steps=warmup_steps,
            weight_decay=weight_decay,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=target_modules,
            loss=loss,  # type: ignore[arg-type]  # validated by TrainConfig
            max_length=max_length,
            per_depth=per_depth,
            depths=depth or [],
            merge=merge,
            seed=seed,
            save_steps=save_steps,
            eval_fraction=eval_fraction,
            device=device,  # type: ignore[arg-type]
            quantize=quantize,  # type: ignore[arg-type]
            strict=strict,
            logging_steps=logging_steps,
            report_to=report_to,
        )
        explicit = explicit_fields(ctx)
        sft = overrides_from_file(sft_config, explicit=explicit, fields_map=SFT_FIELDS)
        peft = overrides_from_file(lora_config, explicit=explicit, fields_map=LORA_FIELDS)
        launch = Launch(nproc, nnodes, node_rank, rdzv_endpoint, rdzv_id, rdzv_backend)
        # With --json, stdout carries only the JSON: the trainer's logs and progress go to stderr.
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            if launch.distributed:
                summaries = train_distributed(config, launch, sft=sft, peft=peft, stdout=sys.stderr)
            else:
                summaries = train(config, sft_config=sft, peft_config=peft)
        pushed = push_adapter(out, push_to_hub, private=private) if push_to_hub and summaries else None
    except (UnknownBaseError, DatasetError, ConfigFileError, PushError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(summaries_json(summaries, pushed=pushed))
        return
    print_train_summaries(summaries)
    if pushed:
        console.print(f"pushed {out} to {push_to_hub}: {pushed}")


def push_command(
    adapter: Annotated[Path, typer.Argument(help="An adapter folder `stl train` wrote (or one with depth_<k>/).")],
    repo: Annotated[str, typer.Argument(help="Hub repo id, e.g. me/stl-value-v1 (created if missing).")],
    private: Annotated[bool, typer.Option(help="Create the repo private.")] = False,
) -> None:
    """Upload a portable adapter folder to the Hugging Face Hub."""
    from langgraph_stl.training.hub import PushError, base_of, check_portable, push_adapter

    try:
        adapters = check_portable(adapter)
        local = [a for a in adapters if Path(base_of(a)).is_absolute()]
        if local:
            console.print(
                f"[yellow]note:[/yellow] {local[0]} names a local base ({base_of(local[0])}); others need that "
                "folder (the model card says how the base was made)"
            )
        url = push_adapter(adapter, repo, private=private)
    except PushError as exc:
        raise _fail(str(exc)) from None
    console.print(f"pushed {adapter} to {repo}: {url}")


@dataset_app.command("stats")
def stats_command(
    paths: Annotated[list[Path], typer.Argument(help="Dataset files (project JSONL or reference JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    strict: Annotated[bool, typer.Option(help=help_for("strict"))] = False,
) -> None:
    """Examples per depth, terminal share, value histogram."""
    from dataclasses import asdict

    from langgraph_stl.training.dataset import DatasetError, compute_stats, load_many

    try:
        res = load_many(paths, strict=strict)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    for err in res.errors:
        console.print(f"[yellow]skipped[/yellow] {err}")
    st = compute_stats(res.examples)
    if as_json:
        typer.echo(json.dumps({**asdict(st), "terminal_share": st.terminal_share, "malformed_lines": len(res.errors)}))
        return
    table = Table(title=f"{st.total} examples, {st.tasks} tasks, terminal share {st.terminal_share:.1%}")
    table.add_column("depth")
    table.add_column("examples")
    table.add_column("terminal")
    for d, n in st.per_depth.items():
        table.add_row(str(d), str(n), str(st.terminal_per_depth[d]))
    console.print(table)
    hist = Table(title="target values (0-10 scale)")
    hist.add_column("bin")
    hist.add_column("examples")
    hist.add_column("")
    peak = max(st.value_histogram.values(), default=1) or 1
    for label, n in st.value_histogram.items():
        hist.add_row(label, str(n), "█" * round(30 * n / peak))
    console.print(hist)
    console.print(
        f"mean prompt {st.mean_prompt_chars:.0f} chars, mean target {st.mean_completion_chars:.0f} chars, "
        f"{st.no_value} target(s) without a parseable value"
    )


@dataset_app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Reference improvement-data files (depth from the name).")],
    out: Annotated[Path, typer.Option("--out", help="Project JSONL to append to.")],
    env: Annotated[str, typer.Option(help="Environment the data comes from.")] = "webshop",
    policy_model: Annotated[str, typer.Option(help="Policy that generated the data (e.g. gpt-35-turbo).")] = "",
    value_model: Annotated[str, typer.Option(help="Value model V0 that labelled it.")] = "",
    depth: Annotated[int | None, typer.Option(help="Depth of files whose name carries no depth<k>.")] = None,
) -> None:
    """Convert reference ShareGPT files into the project's JSONL (with provenance)."""
    from langgraph_stl.durable import OutputLockedError
    from langgraph_stl.training.dataset import DatasetError, ExampleWriter, read_sharegpt, unnamed_depth

    n = 0
    try:
        with ExampleWriter(out) as writer:
            for p in paths:
                for ex in read_sharegpt(p, env=env, depth=unnamed_depth(p, depth)):
                    ex.policy_model, ex.value_model = policy_model, value_model
                    writer.write(ex)
                    n += 1
    except (DatasetError, OutputLockedError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"appended {n} examples to {out}")


@dataset_app.command("export")
def export_command(
    paths: Annotated[list[Path], typer.Argument(help="Dataset files to export.")],
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    to: Annotated[
        str, typer.Option(help="'sharegpt' (reference JSON array), 'trl' (prompt/completion JSONL) or 'messages'.")
    ] = "sharegpt",
    depth: Annotated[list[int] | None, typer.Option("--depth", help="Only these depths.")] = None,
    strict: Annotated[bool, typer.Option(help=help_for("strict"))] = False,
) -> None:
    """Write examples as a reference-format file or as TRL rows."""
    from langgraph_stl.training.dataset import DatasetError, RowFormat, iter_trl_rows, load_many, write_sharegpt

    if to not in ("sharegpt", "trl", "messages"):
        raise _fail(f"--to must be sharegpt, trl or messages, got {to!r}")
    try:
        res = load_many(paths, strict=strict)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    examples = [e for e in res.examples if not depth or e.depth in depth]
    if to == "sharegpt":
        write_sharegpt(examples, out)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        fmt: RowFormat = "prompt_completion" if to == "trl" else "messages"
        with out.open("w", encoding="utf-8") as fh:
            for row in iter_trl_rows(examples, fmt):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    console.print(f"wrote {len(examples)} examples to {out}")


def export_gguf_command(
    adapter: Annotated[Path, typer.Argument(help="A peft LoRA adapter folder (adapter_config.json).")],
    out: Annotated[Path, typer.Argument(help="The GGUF LoRA file to write.")],
) -> None:
    """Convert a peft LoRA adapter into a GGUF LoRA that llama.cpp serves on the embedded model."""
    from langgraph_stl.training.gguf_lora import GGUFConversionError, convert_adapter

    try:
        info = convert_adapter(adapter, out)
    except GGUFConversionError as exc:
        raise _fail(str(exc)) from None
    console.print(f"wrote {out}: {info.tensors} tensors, rank {info.rank}, alpha {info.alpha:g}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("train")(train_command)
    app.command("push")(push_command)
    app.add_typer(dataset_app, name="dataset")
    app.command("export-gguf")(export_gguf_command)
