"""`stl improve`: STL iterations (collect → train → export → evaluate), resumable from RUN_DIR/manifest.json."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from langgraph_stl.cli._options import RequestTimeout, apply_request_timeout
from langgraph_stl.cli.execution import (
    ExecutorOpt,
    MaxAttemptsOpt,
    RayAddressOpt,
    TaskTimeoutOpt,
    WorkerCpusOpt,
    WorkerGpusOpt,
    WorkersOpt,
    execution_options,
    interruptible,
)

if TYPE_CHECKING:
    from langgraph_stl.training.improve import ProgressHook

console = Console(soft_wrap=True)


def parse_tasks(text: str) -> list[str]:
    """``"0-9"`` (inclusive range), ``"3,7,fixed_1500"`` or a mix; anything else is a task id as written."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep and lo.isdigit() and hi.isdigit():
            if int(hi) < int(lo):
                raise typer.BadParameter(f"empty range {part!r}")
            out.extend(str(i) for i in range(int(lo), int(hi) + 1))
        else:
            out.append(part)
    return out


def _default_tasks(env_name: str, split: str, n: int) -> list[str]:
    from langgraph_stl.envs import make_env

    env = make_env(env_name)
    try:
        return env.task_ids(split)[:n]
    except NotImplementedError:
        raise typer.BadParameter(f"{env_name} does not list {split} tasks: pass them explicitly") from None
    finally:
        env.close()


def progress_columns() -> tuple[ProgressColumn, ...]:
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def progress_hook(progress: Progress, *, n_train: int, n_eval: int) -> ProgressHook:
    """One bar per step of a run: tasks for collection and evaluation, optimizer steps for training."""
    bars: dict[str, TaskID] = {}

    def hook(step: str, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if step not in bars:
            total = event.get("total") if kind == "train_step" else n_eval if step.endswith(".eval") else n_train
            bars[step] = progress.add_task(step, total=total)
        if kind in ("task_done", "task_skipped"):
            progress.advance(bars[step])
        elif kind == "train_step":
            progress.update(bars[step], completed=event["step"], total=event["total"])

    return hook


def print_summary(rows: list[dict[str, Any]]) -> None:
    """The per-iteration table of a run."""
    table = Table(title="STL iterations")
    for col in ("k", "value model", "examples", "train steps", "loss first → last", "evaluation", "success", "pass@n"):
        table.add_column(col)
    for r in rows:
        first, last = r["loss"]
        table.add_row(
            str(r["k"]),
            r["value model"],
            "-" if r["examples"] is None else str(r["examples"]),
            "-" if r["train steps"] is None else str(r["train steps"]),
            "-" if first is None else f"{first:.3f} → {last:.3f}",
            r["metric"] or "-",
            "-" if r["success"] is None else f"{r['success']:.1%}",
            "-" if r["pass@n"] is None else f"{r['pass@n']:.1%}",
        )
    console.print(table)


def improve_command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option(help="Environment: game24, webshop or py:<module>:<factory>.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (manifest, data, adapters); rerun to resume.")],
    iterations: Annotated[int, typer.Option(help="STL iterations K.")] = 1,
    policy: Annotated[str, typer.Option(help="Policy spec (model spec, 'enumerate' or 'enumerate:shuffle').")] = (
        "smollm2"
    ),
    value: Annotated[str, typer.Option(help="V_0: the base value model's spec (base prompts).")] = "smollm2",
    base: Annotated[str, typer.Option(help="Training base for every V_k: 'smollm2', 'hf:<folder>'.")] = "smollm2",
    train_tasks: Annotated[str | None, typer.Option(help="Task ids for collection, e.g. '0-49' or '1,5,9'.")] = None,
    eval_tasks: Annotated[str | None, typer.Option(help="Task ids for evaluation ('' = no evaluation).")] = None,
    n_train: Annotated[int, typer.Option(help="Without --train-tasks: the first N of the train split.")] = 10,
    n_eval: Annotated[int, typer.Option(help="Without --eval-tasks: the first N of the test split.")] = 10,
    beam: Annotated[int, typer.Option(help="Collection: best states expanded per level.")] = 3,
    explore: Annotated[int, typer.Option(help="Collection: extra random non-best states per level.")] = 1,
    width: Annotated[int, typer.Option(help="Policy proposals per expansion.")] = 5,
    breadth: Annotated[int, typer.Option(help="Beam breadth of the evaluation search (--algorithm bfs).")] = 5,
    depth: Annotated[int, typer.Option(help="Most actions per episode (lookaheads at depths 1..depth-1).")] = 4,
    value_samples: Annotated[int, typer.Option(help="Value samples per state (reference: 5).")] = 5,
    value_mode: Annotated[
        str,
        typer.Option(help="'generate' (rationale + score, reference) or 'logits' (one forward pass, no rationale)."),
    ] = "generate",
    temperature: Annotated[float, typer.Option(help="Sampling temperature of policy and value (reference 1.0).")] = 1.0,
    algorithm: Annotated[str, typer.Option(help="Evaluation search: greedy, bfs or mcts.")] = "greedy",
    n_rollouts: Annotated[int, typer.Option(help="Evaluation rollouts per task (pass@n).")] = 1,
    seed: Annotated[int, typer.Option(help="Search seed.")] = 0,
    baseline: Annotated[bool, typer.Option(help="Also evaluate V_0.")] = True,
    gguf: Annotated[bool, typer.Option(help="Convert each V_k to a GGUF LoRA and serve it with llama.cpp.")] = True,
    serve: Annotated[
        str, typer.Option(help="'local' or 'vllm': hot-load each V_k into the vLLM server at --vllm-url.")
    ] = "local",
    vllm_url: Annotated[
        str | None, typer.Option(help="vLLM server (--enable-lora, runtime LoRA updating) for --serve vllm.")
    ] = None,
    epochs: Annotated[float, typer.Option(help="Training epochs per iteration.")] = 3.0,
    max_steps: Annotated[int, typer.Option(help="Training steps per iteration (overrides epochs when > 0).")] = -1,
    batch_size: Annotated[int, typer.Option(help="Per-device training batch.")] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 2e-4,
    max_length: Annotated[int, typer.Option(help="Training sequence cap in tokens.")] = 4096,
    loss: Annotated[str, typer.Option(help="'completion' or 'full'.")] = "completion",
    per_depth: Annotated[
        bool, typer.Option("--per-depth/--single", help="One value model per depth (the reference's) or one for all.")
    ] = False,
    sft_config: Annotated[
        Path | None, typer.Option(help="YAML/JSON file of SFTConfig fields (the training flags above win over it).")
    ] = None,
    lora_config: Annotated[Path | None, typer.Option(help="YAML/JSON file of LoraConfig fields.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the iterations as JSON (progress on stderr).")] = False,
    request_timeout: RequestTimeout = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = "local",
    workers: WorkersOpt = 1,
    concurrency: Annotated[int, typer.Option(help="Collection/evaluation tasks at once per worker.")] = 1,
    max_attempts: MaxAttemptsOpt = 3,
    task_timeout: TaskTimeoutOpt = None,
    worker_cpus: WorkerCpusOpt = 1.0,
    worker_gpus: WorkerGpusOpt = 0.0,
) -> None:
    """Self-Taught Lookahead: improve the value model K times and evaluate each iteration."""
    apply_request_timeout(request_timeout)
    from langgraph_stl.cli.train import explicit_fields
    from langgraph_stl.durable import OutputLockedError
    from langgraph_stl.models.vllm import VLLMError
    from langgraph_stl.training.config import SFT_FIELDS, ConfigFileError, overrides_from_file
    from langgraph_stl.training.improve import ImproveConfig, RunConfigMismatchError, run_improve, summary_rows
    from langgraph_stl.training.sft import UnknownBaseError

    execution = execution_options(
        executor=executor,
        ray_address=ray_address,
        workers=workers,
        concurrency=concurrency,
        max_attempts=max_attempts,
        task_timeout=task_timeout,
        worker_cpus=worker_cpus,
        worker_gpus=worker_gpus,
        progress=False,  # the per-step bars below show progress
    )
    train = {
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "learning_rate": lr,
        "max_length": max_length,
        "loss": loss,
    }
    out_console = Console(stderr=True, soft_wrap=True) if as_json else console
    try:
        sft = overrides_from_file(sft_config, explicit=explicit_fields(ctx), fields_map=SFT_FIELDS)
        peft = overrides_from_file(lora_config, explicit=(), fields_map={})
        config = ImproveConfig(
            env=env,
            out=str(out),
            iterations=iterations,
            policy=policy,
            value=value,
            base=base,
            train_tasks=parse_tasks(train_tasks) if train_tasks is not None else _default_tasks(env, "train", n_train),
            eval_tasks=parse_tasks(eval_tasks) if eval_tasks is not None else _default_tasks(env, "test", n_eval),
            beam=beam,
            explore=explore,
            width=width,
            breadth=breadth,
            depth=depth,
            value_samples=value_samples,
            value_mode=value_mode,
            temperature=temperature,
            seed=seed,
            algorithm=algorithm,
            n_rollouts=n_rollouts,
            baseline=baseline,
            gguf=gguf,
            serve=serve,  # type: ignore[arg-type]  # validated by ImproveConfig
            vllm_url=vllm_url,
            train=train,
            execution=execution,
            per_depth=per_depth,
            sft=sft,
            peft=peft,
        )
    except (ConfigFileError, ValueError) as exc:
        out_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    with Progress(*progress_columns(), console=out_console, transient=False) as progress:
        hook = progress_hook(progress, n_train=len(config.train_tasks), n_eval=len(config.eval_tasks))
        per_iteration = None if as_json else (lambda m: print_summary(summary_rows(m)))
        try:
            # With --json, stdout carries only the JSON: anything a library prints goes to stderr.
            with interruptible(out), contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
                manifest = run_improve(config, hook=hook, on_iteration=per_iteration)
        except (
            RunConfigMismatchError,
            UnknownBaseError,
            ValueError,
            FileNotFoundError,
            OutputLockedError,
            VLLMError,
        ) as exc:
            out_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"manifest": str(manifest.path), "iterations": summary_rows(manifest)}))
        return
    print_summary(summary_rows(manifest))
    console.print(f"manifest: {manifest.path}")


def models_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder of `stl improve`.")],
) -> None:
    """List a run's registered value models and the specs that serve them."""
    from langgraph_stl.training.improve import Manifest, value_spec_of

    try:
        models = Manifest.read(run_dir).data["models"]
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    for key in sorted(models, key=int):
        console.print(f"V_{key}: {value_spec_of(models[key])}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("improve")(improve_command)
    app.command("improve-models")(models_command)
