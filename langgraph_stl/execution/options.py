"""How a run is executed: the knobs every command shares (``--executor``, ``--workers``, ``--concurrency``, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from langgraph_stl.envs.base import Environment
    from langgraph_stl.execution.driver import Executor
    from langgraph_stl.execution.work import WorkSpec

ExecutorKind = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorKind, ...] = ("local", "ray")


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    """Executor choice and the driver's per-task policy. None of it changes what a task computes, so a resumed
    run may change any of it (e.g. start locally, finish on a cluster)."""

    executor: ExecutorKind = "local"
    workers: int = 1
    """Ray workers (long-lived actors); the local executor is one worker."""
    concurrency: int = 2
    """Tasks in flight per worker."""
    max_attempts: int = 3
    """Attempts per task (an exception or a lost worker costs one); then the task is recorded as failed."""
    task_timeout_s: float | None = None
    """Seconds before an attempt is cancelled and the task recorded as timed out (not retried)."""
    ray_address: str = "local"
    """``local`` (a private cluster on 127.0.0.1, shut down with the driver), ``auto`` or ``ray://host:port``."""
    worker_cpus: float = 1.0
    worker_gpus: float = 0.0
    worker_resources: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources each worker needs (e.g. ``{"webshop": 1}`` to pin workers to prepared nodes)."""
    progress: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.executor not in EXECUTORS:
            problems.append(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.workers < 1 or self.concurrency < 1 or self.max_attempts < 1:
            problems.append("--workers, --concurrency and --max-attempts must be at least 1")
        if self.executor == "local" and self.workers != 1:
            problems.append("--workers needs --executor ray (the local executor is one process)")
        if self.task_timeout_s is not None and self.task_timeout_s <= 0:
            problems.append(f"--task-timeout must be positive, got {self.task_timeout_s}")
        if self.worker_cpus < 0 or self.worker_gpus < 0:
            problems.append("worker CPUs and GPUs must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    def describe(self) -> dict[str, Any]:
        """What the run header records (outside the run's identity)."""
        return {"executor": self.executor, "workers": self.workers, "concurrency": self.concurrency}


def make_executor(work: WorkSpec, execution: Execution, *, env: Environment | None = None) -> Executor:
    """The executor ``execution`` names, running ``work``. ``env``: an environment the local executor may reuse
    (the CLI already built one to list task ids); Ray workers always build their own."""
    if execution.executor == "ray":
        from langgraph_stl.execution.ray_executor import RayExecutor

        return RayExecutor(work, execution)
    from langgraph_stl.execution.driver import LocalExecutor
    from langgraph_stl.execution.work import build_runner

    runner = build_runner(work, env=env)
    return LocalExecutor(runner.run, concurrency=execution.concurrency, close=runner.close)
