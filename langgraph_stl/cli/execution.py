"""Options shared by every command that runs many tasks (`eval`, `collect`, `improve`): where tasks run, and the
driver's attempts and timeouts. Also `stl collect`, one iteration's lookahead data alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from langgraph_stl.execution import Execution

ExecutorOpt = Annotated[
    str, typer.Option("--executor", help="Where tasks run: local (this process) or ray (a Ray cluster).")
]
RayAddressOpt = Annotated[
    str,
    typer.Option(
        "--ray-address",
        help="With --executor ray: local (a private cluster on 127.0.0.1, stopped with this command), auto "
        "(the cluster of `ray start`) or ray://host:port.",
    ),
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Ray workers (each holds its own env and models).")]
MaxAttemptsOpt = Annotated[
    int, typer.Option("--max-attempts", help="Attempts per task (an error or a lost worker costs one).")
]
TaskTimeoutOpt = Annotated[
    float | None, typer.Option("--task-timeout", help="Seconds before a task is cancelled and recorded as timed out.")
]
WorkerCpusOpt = Annotated[float, typer.Option("--worker-cpus", help="CPUs reserved per Ray worker.")]
WorkerGpusOpt = Annotated[float, typer.Option("--worker-gpus", help="GPUs reserved per Ray worker (a local model).")]


def execution_options(
    *,
    executor: str,
    ray_address: str,
    workers: int,
    concurrency: int,
    max_attempts: int,
    task_timeout: float | None,
    worker_cpus: float = 1.0,
    worker_gpus: float = 0.0,
    progress: bool = True,
) -> Execution:
    """The :class:`Execution` of the options, or exit 2 with one line (a bad value, Ray not installed)."""
    from langgraph_stl.execution import Execution
    from langgraph_stl.execution.ray_executor import import_ray
    from langgraph_stl.extras import MissingExtraError

    try:
        execution = Execution(
            executor=executor,  # type: ignore[arg-type]  # checked in __post_init__
            workers=workers,
            concurrency=concurrency,
            max_attempts=max_attempts,
            task_timeout_s=task_timeout,
            ray_address=ray_address,
            worker_cpus=worker_cpus,
            worker_gpus=worker_gpus,
            progress=progress,
        )
        if execution.executor == "ray":
            import_ray()
    except (ValueError, MissingExtraError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return execution


@contextmanager
def interruptible(out: Path) -> Iterator[None]:
    """Turn Ctrl-C into one line and exit code 130: every finished task is already on disk."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(f"interrupted: finished tasks are saved in {out}; rerun the same command to resume", err=True)
        raise typer.Exit(130) from None


def collect_command(
    env: Annotated[str, typer.Option(help="Environment: game24, webshop or py:<module>:<factory>.")],
    out: Annotated[Path, typer.Option("--out", help="Examples JSONL (+ OUT.done); rerun to resume.")],
    value: Annotated[str, typer.Option(help="V_k, the labelling value model (stl:<spec> for a fine-tuned one).")],
    tasks: Annotated[str, typer.Option("--tasks", help="Task ids, e.g. '0-49' or '1,5,fixed_9'.")],
    policy: Annotated[str, typer.Option(help="Policy spec (model spec, 'enumerate' or 'enumerate:shuffle').")] = (
        "smollm2"
    ),
    iteration: Annotated[int, typer.Option(help="k of V_k, recorded in every example's provenance.")] = 0,
    beam: Annotated[int, typer.Option(help="Best states expanded per level.")] = 3,
    explore: Annotated[int, typer.Option(help="Extra random non-best states per level.")] = 1,
    width: Annotated[int, typer.Option(help="Policy proposals per expansion.")] = 5,
    depth: Annotated[int, typer.Option(help="Most actions per episode (lookaheads at depths 1..depth-1).")] = 4,
    value_samples: Annotated[int, typer.Option(help="Value samples per state (reference: 5).")] = 5,
    value_mode: Annotated[str, typer.Option(help="'generate' (rationale + score) or 'logits'.")] = "generate",
    temperature: Annotated[float, typer.Option(help="Sampling temperature of policy and value.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Search seed.")] = 0,
    webshop_url: Annotated[str | None, typer.Option(help="A running WebShop server (default: embedded).")] = None,
    webshop_goals: Annotated[int | None, typer.Option(help="Number of goals of the --webshop-url server.")] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = "local",
    workers: WorkersOpt = 1,
    concurrency: Annotated[int, typer.Option(help="Tasks collected at once per worker.")] = 1,
    max_attempts: MaxAttemptsOpt = 3,
    task_timeout: TaskTimeoutOpt = None,
    worker_cpus: WorkerCpusOpt = 1.0,
    worker_gpus: WorkerGpusOpt = 0.0,
) -> None:
    """Collect one STL iteration's lookahead data (what `stl improve` collects), one task at a time per slot."""
    import asyncio

    from langgraph_stl.cli.improve import parse_tasks
    from langgraph_stl.envs import make_env
    from langgraph_stl.execution import WorkSpec, make_executor
    from langgraph_stl.search.context import SearchContext
    from langgraph_stl.training.collect import CollectConfig, collect_tasks

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
    try:
        search = SearchContext(
            width=width,
            depth=depth,
            n_value_samples=value_samples,
            value_mode=value_mode,
            temperature=temperature,
            seed=seed,
        )
        config = CollectConfig(
            beam=beam, explore=explore, search=search, iteration=iteration, policy_name=policy, value_name=value
        )
        env_kwargs: dict[str, Any] = {
            k: v for k, v in (("webshop_url", webshop_url), ("webshop_goals", webshop_goals)) if v
        }
        work = WorkSpec(
            "collect", env, env_kwargs, options={"policy": policy, "value": value, "collect": config.to_json()}
        )
        environment = make_env(env, **env_kwargs)  # its task data is checked against the dataset's record
        try:
            run_on = make_executor(work, execution, env=environment)
            with interruptible(out):
                stats = asyncio.run(
                    collect_tasks(
                        parse_tasks(tasks), run_on, out, execution=execution, task_data=environment.task_data()
                    )
                )
        finally:
            environment.close()
    except (ValueError, OSError, ImportError, RuntimeError) as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{stats.tasks} tasks collected ({stats.failed} failed), {stats.tasks_skipped} already done; "
        f"{stats.examples} lookahead + {stats.terminal_examples} terminal examples, {stats.duplicates} duplicates "
        f"skipped, in {stats.seconds:.1f} s -> {out}"
    )
    for task, error in stats.failures.items():
        typer.echo(f"failed: task {task}: {error}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("collect")(collect_command)
