"""`stl demo`: one small STL cycle on embedded defaults, then a before/after table.

It runs ``stl improve`` with a preset sized for 2 CPU cores: V_0 (the embedded SmolLM2) is evaluated, it labels
lookahead data on a few training tasks, V_1 is fine-tuned from it, and V_1 is evaluated on the same test tasks.
The table is ``stl report`` of V_1 against V_0 (paired over tasks). The run folder is resumable: rerunning the
command continues where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from langgraph_stl.training.dataset import Example

PRESETS: dict[str, dict[str, Any]] = {
    # Moves are enumerated (a shuffled legal-move policy), so the value model alone decides where search goes.
    "game24": {"policy": "enumerate:shuffle", "width": 3, "depth": 3},
    # The embedded 135M model rarely writes a usable search[...] query, so WebShop uses the documented programmatic
    # stand-in for the paper's policy (instruction queries, then clickables ranked by word overlap, plus Buy Now):
    # the value model still picks among the proposals.
    "webshop": {"policy": "py:langgraph_stl.evaluation.baselines:clickables_policy", "width": 3, "depth": 5},
}
COMMON: dict[str, Any] = {
    "value": "smollm2",
    "base": "smollm2",
    "beam": 1,
    "explore": 1,
    "value_samples": 1,
    # SmolLM2-135M seldom writes a parseable score when it generates; the logits readout (expected score from the
    # next-token distribution after "the correctness score is") always gives one, in one forward pass.
    "value_mode": "logits",
    "n_rollouts": 1,
    "algorithm": "greedy",
    # A short fine-tune (a warm-up of 10 would leave the learning rate near 0 for the whole demo).
    "train": {"max_steps": 30, "batch_size": 4, "max_length": 768, "warmup_steps": 1, "loss": "completion"},
}


def _pick_env(env: str) -> str:
    """``auto``: the local WebShop when its data and search engine are usable, else Game of 24."""
    if env != "auto":
        if env not in PRESETS:
            raise ValueError(f"unknown environment {env!r}: auto, {', '.join(PRESETS)}")
        return env
    from langgraph_stl.envs import make_env

    try:
        make_env("webshop").close()
    except Exception as exc:  # missing catalogue, search index or module: fall back, and say why
        typer.echo(f"WebShop is not usable here ({type(exc).__name__}: {exc}); the demo uses Game of 24.", err=True)
        return "game24"
    return "webshop"


def demo(
    out: Annotated[Path, typer.Option("--out", help="Run folder; rerun to resume.")] = Path("stl-demo"),
    env: Annotated[str, typer.Option(help="auto (WebShop if its data is here, else Game of 24), game24, webshop.")] = (
        "auto"
    ),
    train_tasks: Annotated[int, typer.Option(help="Training tasks whose lookahead data trains V_1.")] = 3,
    eval_tasks: Annotated[int, typer.Option(help="Test tasks evaluated with V_0 and V_1.")] = 5,
    train_steps: Annotated[int, typer.Option(help="Fine-tuning steps.")] = 8,
) -> None:
    """Self-improve the embedded value model once (a few test tasks, a short fine-tune) and print before/after."""
    from rich.progress import Progress

    from langgraph_stl.cli.improve import progress_columns, progress_hook
    from langgraph_stl.envs import make_env
    from langgraph_stl.evaluation.report import build_report
    from langgraph_stl.training.improve import ImproveConfig, RunConfigMismatchError, run_improve

    try:
        name = _pick_env(env)
        environment = make_env(name)
        try:
            train_ids = environment.task_ids("train")[:train_tasks]
            eval_ids = environment.task_ids("test")[:eval_tasks]
        finally:
            environment.close()
        settings = {**COMMON, **PRESETS[name]}
        settings["train"] = {**settings["train"], "max_steps": train_steps}
        config = ImproveConfig(
            env=name, out=str(out), iterations=1, train_tasks=train_ids, eval_tasks=eval_ids, **settings
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"STL demo on {name}: {len(train_ids)} training tasks, {len(eval_ids)} test tasks, value model "
        f"{config.value}, policy {config.policy}, run folder {out}"
    )
    # One progress display: a bar per step (tasks for collection/evaluation, optimizer steps for training).
    with Progress(*progress_columns()) as progress:
        try:
            run_improve(config, hook=progress_hook(progress, n_train=len(train_ids), n_eval=len(eval_ids)))
        except (RunConfigMismatchError, ValueError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    report = build_report(
        [out / "iter_1" / "eval.jsonl"],
        baseline=out / "eval_0.jsonl",
        labels=["V1 (after STL)"],
        baseline_label="V0 (base SmolLM2)",
    )
    typer.echo(report.to_markdown())
    example = lookahead_example(out / "iter_1" / "data.jsonl")
    if example is not None:
        typer.echo(f"\nOne lookahead target V1 learned from (task {example.task}, depth {example.depth}):")
        state = example.prompt[max(example.prompt.find("Trajectory:"), 0) :]  # the instructions are the same each time
        typer.echo(f"prompt → {_clip(state, 700, tail=True)}")
        typer.echo(f"target → {_clip(example.completion, 700)}")


def lookahead_example(data: Path) -> Example | None:
    """The first lookahead example whose value parsed (what a reader should see V_1 was trained on)."""
    from langgraph_stl.training.dataset import read_jsonl

    if not data.is_file():
        return None
    return next((e for e in read_jsonl(data).examples if e.kind == "lookahead" and (e.value or 0) >= 0), None)


def _clip(text: str, limit: int, *, tail: bool = False) -> str:
    """At most ``limit`` characters: the end of a long prompt (where the state is), the start of a long target."""
    if len(text) <= limit:
        return text
    return "…" + text[-limit:] if tail else text[:limit] + "…"


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("demo")(demo)
