"""`stl` commands: eval (run a search configuration over tasks) and report (score results files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

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


def report(
    files: Annotated[list[Path], typer.Argument(help="Results files: ours (stl eval) or the STL reference's JSONL.")],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Compare every file against this one (paired bootstrap).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document instead of markdown.")] = False,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Write Pareto plots (cost / states vs score) as PNG here.")
    ] = None,
    n_tasks: Annotated[
        int | None,
        typer.Option(
            "--n-tasks",
            help="Score over the first N tasks. Default: the run header's task list, else the file name's "
            "'_a-b' range, else task indices 0..max seen.",
        ),
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Bootstrap random seed.")] = 0,
    reference_test: Annotated[
        bool, typer.Option("--reference-test", help="Also print the reference's unpaired bootstrap p-values.")
    ] = False,
    prices: Annotated[
        Path | None, typer.Option("--prices", help="JSON/TOML price table to recompute costs from token counts.")
    ] = None,
) -> None:
    """Score results files: oracle pass@k, single trajectory and value-selected; missing tasks count as 0."""
    from langgraph_stl.evaluation.prices import PriceTable
    from langgraph_stl.evaluation.report import build_report, plot_pareto

    try:
        table = PriceTable.load(prices) if prices else None
        rep = build_report(
            files,
            baseline=baseline,
            n_tasks=n_tasks,
            resamples=resamples,
            seed=seed,
            reference_test=reference_test,
            prices=table,
        )
    except ValueError as exc:  # ResultsFormatError is a ValueError; both carry a message meant for the user
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(rep.to_json(), indent=2))
    else:
        typer.echo(rep.to_markdown())
    if plots is not None:
        written = plot_pareto(rep, plots)
        typer.echo(f"plots: {', '.join(map(str, written)) or 'none (no file records cost or states)'}", err=True)


def evaluate(
    env: Annotated[str, typer.Option("--env", help="Environment: game24 or webshop.")],
    out: Annotated[Path, typer.Option("--out", help="Results JSONL; an existing file from the same run resumes.")],
    policy: Annotated[
        str, typer.Option(help="Policy spec: enumerate, smollm2, hf:..., openai:MODEL[@URL], py:... (not for rule).")
    ] = "",
    value: Annotated[
        str, typer.Option(help="Value spec: a model spec (base prompts) or stl:<model spec> (not for rule).")
    ] = "",
    split: Annotated[str, typer.Option(help="Task split: test, dev or train.")] = "test",
    tasks: Annotated[
        str | None, typer.Option("--tasks", help="Positions in the split, inclusive: '0-49' or '0-9,20,30-39'.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N selected tasks.")] = None,
    algorithm: Annotated[
        str, typer.Option(help="Search: greedy, bfs, mcts, or rule (WebShop's baseline: buy the first result).")
    ] = "greedy",
    concurrency: Annotated[int, typer.Option(help="Tasks searched at the same time (per worker).")] = 2,
    rollouts: Annotated[int, typer.Option(help="Independent rollouts per task (greedy pass@n).")] = 3,
    width: Annotated[int, typer.Option(help="Proposals per expansion.")] = 5,
    depth: Annotated[int, typer.Option(help="Maximum actions per trajectory.")] = 5,
    breadth: Annotated[int, typer.Option(help="BFS beam size.")] = 5,
    budget: Annotated[int, typer.Option(help="MCTS expansions.")] = 30,
    value_samples: Annotated[int, typer.Option(help="Value samples averaged per state.")] = 5,
    value_mode: Annotated[
        str, typer.Option(help="generate (sampled rationale + score) or logits (expected score, one forward pass).")
    ] = "generate",
    temperature: Annotated[float, typer.Option(help="Sampling temperature of policy and value.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Search seed (tie-breaking shuffles).")] = 0,
    webshop_url: Annotated[
        str | None, typer.Option(help="A running WebShop server; default: start the embedded one.")
    ] = None,
    webshop_goals: Annotated[int | None, typer.Option(help="Number of goals of the --webshop-url server.")] = None,
    max_retries: Annotated[
        int, typer.Option(help="Re-asks after an unusable policy reply (failed model calls: the graph's retry policy).")
    ] = 3,
    prices: Annotated[Path | None, typer.Option(help="JSON/TOML price table (default: the reference's).")] = None,
    task_timeout: TaskTimeoutOpt = None,
    retry_failed: Annotated[bool, typer.Option(help="Rerun tasks that failed in an earlier run of this file.")] = False,
    label: Annotated[str | None, typer.Option(help="Name of the run in reports.")] = None,
    request_timeout: RequestTimeout = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = "local",
    workers: WorkersOpt = 1,
    max_attempts: MaxAttemptsOpt = 3,
    worker_cpus: WorkerCpusOpt = 1.0,
    worker_gpus: WorkerGpusOpt = 0.0,
    save_trees: Annotated[
        bool,
        typer.Option(help="Keep each task's whole search tree in OUT's .trees/ folder beside it (for stl view)."),
    ] = False,
) -> None:
    """Run a search configuration over tasks, one JSON line per task as it ends; rerun the same command to resume."""
    apply_request_timeout(request_timeout)
    import asyncio

    from langgraph_stl.durable import OutputLockedError
    from langgraph_stl.envs import make_env
    from langgraph_stl.evaluation.prices import PriceTable
    from langgraph_stl.evaluation.report import build_report
    from langgraph_stl.evaluation.run import run_eval, select_tasks
    from langgraph_stl.evaluation.trees import trees_dir
    from langgraph_stl.execution import WorkSpec, make_executor

    if algorithm != "rule" and not (policy and value):
        typer.echo("error: --policy and --value are required (except with --algorithm rule)", err=True)
        raise typer.Exit(2)
    if save_trees and algorithm == "rule":
        typer.echo("error: --save-trees needs a search algorithm (the rule baseline builds no tree)", err=True)
        raise typer.Exit(2)
    execution = execution_options(
        executor=executor,
        ray_address=ray_address,
        workers=workers,
        concurrency=concurrency,
        max_attempts=max_attempts,
        task_timeout=task_timeout,
        worker_cpus=worker_cpus,
        worker_gpus=worker_gpus,
    )

    context = {
        "n_rollouts": rollouts,
        "width": width,
        "depth": depth,
        "breadth": breadth,
        "budget": budget,
        "n_value_samples": value_samples,
        "value_mode": value_mode,
        "temperature": temperature,
        "seed": seed,
        "max_retries": max_retries,
    }
    config = {"env": env, "split": split, "policy": policy, "value": value, "algorithm": algorithm, "search": context}
    if label:
        config["label"] = label
    env_kwargs: dict[str, Any] = {
        k: v for k, v in (("webshop_url", webshop_url), ("webshop_goals", webshop_goals)) if v
    }
    try:
        table = PriceTable.load(prices)
        environment = make_env(env, **env_kwargs)
        config["task_data"] = environment.task_data()  # a resume over other tasks behind the same ids is refused
    except (
        ValueError,
        OSError,
        ImportError,
        RuntimeError,
    ) as exc:  # bad options, missing data, a server that won't start
        typer.echo(f"error: cannot set up environment {env!r}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        ids = select_tasks(environment.task_ids(split), tasks, limit)
        options = {"policy": policy, "value": value, "algorithm": algorithm, "context": context}
        if save_trees:  # written by whichever worker runs the task: a shared folder on a cluster
            options["trees"] = str(trees_dir(out).resolve())
        work = WorkSpec("search", env, env_kwargs, options=options)
        try:
            run_on = make_executor(work, execution, env=None if execution.executor == "ray" else environment)
        except (ImportError, AttributeError, RuntimeError) as exc:  # a py: spec naming nothing, a server that died
            raise ValueError(f"cannot build the models: {type(exc).__name__}: {exc}") from None
        with interruptible(out):
            outcome = asyncio.run(
                run_eval(
                    ids,
                    run_on,
                    out,
                    config=config,
                    max_attempts=execution.max_attempts,
                    prices=table,
                    retry_failed=retry_failed,
                    task_timeout_s=execution.task_timeout_s,
                )
            )
    except (ValueError, TypeError, OSError, OutputLockedError) as exc:  # bad options, a foreign or busy --out
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        environment.close()
    typer.echo(
        f"{outcome.ran} tasks run ({outcome.failed} failed), {outcome.skipped} already in {out}; "
        f"{outcome.tasks_per_hour:,.0f} tasks/hour"
    )
    for model in outcome.unpriced_models:
        typer.echo(f"warning: no price for API model {model!r}; its cost counts as $0 (add it with --prices)", err=True)
    typer.echo(build_report([out]).to_markdown())
    if outcome.ran and outcome.failed == outcome.ran:
        typer.echo(f"error: all {outcome.ran} tasks failed to run (see their 'error' fields in {out})", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("eval")(evaluate)
    app.command("report")(report)
