"""The one driver loop behind ``stl eval``, ``stl collect`` and ``stl improve``: tasks go to an executor, results
come back in completion order, and only the driver writes.

Invariant: a task id reaches the sink at most once per output, and only as a whole (one eval record, or one task's
examples followed by its done-marker). The sink's ``open`` says which tasks a previous run already finished, so a
killed or interrupted run resumes by rerunning the same command. Executors deliver at least once (a worker that dies
mid-task may have run it), so the driver drops any result for a task id already written.

Per task the driver allows ``max_attempts`` attempts: an exception or a lost worker costs one attempt and the task is
queued again (another worker may take it); a task that exceeds ``task_timeout_s`` is cancelled and recorded as timed
out without retrying (it would most likely time out again, at the same cost). The executor is the only swappable
piece: :class:`LocalExecutor` runs tasks as asyncio tasks in this process, ``RayExecutor`` on a Ray cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

TaskFn = Callable[[str], Awaitable[Any]]
"""Runs one task in this process and returns its result (an eval record, one task's examples, ...)."""


class TaskError(Exception):
    """A task ended in an error that its runner already described (e.g. a search that recorded its failure)."""


class WorkerLostError(Exception):
    """The worker running a task died or became unreachable; the task may or may not have run."""


@dataclass(frozen=True, slots=True)
class Finished:
    """One attempt's successful result, as an executor returns it."""

    task_id: str
    value: Any
    worker: str
    seconds: float


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What the sink receives for a task: its value, or the error of its last attempt."""

    task_id: str
    value: Any = None
    error: str | None = None
    timed_out: bool = False
    attempts: int = 1
    worker: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class Sink(Protocol):
    """Where finished tasks go; the driver is its only caller, so it needs no locking of its own."""

    def open(self) -> set[str]:
        """Prepare the output (header, resume checks, a cut partial line) and return the task ids already done."""
        ...

    def write(self, result: TaskResult) -> None:
        """Persist one task durably (append + fsync); called once per task id."""
        ...

    def status(self) -> str:
        """A short progress note (e.g. the mean reward so far)."""
        ...

    def close(self) -> None:
        """Release the output (its lock); called once after ``open``, however the run ends."""
        ...


class Executor(Protocol):
    """Runs tasks somewhere; ``slots`` tasks may be in flight at once."""

    @property
    def slots(self) -> int: ...

    def describe(self) -> dict[str, Any]:
        """Executor, workers and concurrency, for the run header (not part of a run's identity)."""
        ...

    async def start(self) -> None: ...

    async def run(self, task_id: str) -> Finished:
        """One attempt. Raises the task's exception, :class:`WorkerLostError`, or is cancelled on timeout."""
        ...

    async def close(self) -> None: ...


class LocalExecutor:
    """Tasks as asyncio tasks in this process, at most ``concurrency`` at once (today's ``stl eval`` behaviour)."""

    def __init__(self, run_task: TaskFn, *, concurrency: int = 2, close: Callable[[], None] | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
        self._run_task = run_task
        self._concurrency = concurrency
        self._close = close

    @property
    def slots(self) -> int:
        return self._concurrency

    def describe(self) -> dict[str, Any]:
        return {"executor": "local", "workers": 1, "concurrency": self._concurrency}

    async def start(self) -> None:
        return None

    async def run(self, task_id: str) -> Finished:
        t0 = time.perf_counter()
        value = await self._run_task(task_id)
        return Finished(task_id, value, "local", time.perf_counter() - t0)

    async def close(self) -> None:
        if self._close is not None:
            self._close()


@dataclass(slots=True)
class DriveOutcome:
    """What one invocation of :func:`drive` did; results themselves are in the sink's output."""

    total: int
    skipped: int
    ran: int = 0
    failed: int = 0
    timed_out: int = 0
    retries: int = 0
    duplicates: int = 0
    wall_time_s: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    per_worker: dict[str, int] = field(default_factory=dict)

    @property
    def tasks_per_hour(self) -> float:
        return 3600 * self.ran / self.wall_time_s if self.wall_time_s > 0 else 0.0


def error_text(exc: BaseException) -> str:
    """``Type: first line`` of an exception (a :class:`TaskError` already carries that text)."""
    if isinstance(exc, TaskError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


async def _attempt(executor: Executor, task_id: str, timeout_s: float | None) -> TaskResult:
    t0 = time.perf_counter()
    try:
        done = await asyncio.wait_for(executor.run(task_id), timeout_s)
    except TimeoutError:
        error = f"TimeoutError: the task took longer than {timeout_s} s"
        return TaskResult(task_id, error=error, timed_out=True, seconds=time.perf_counter() - t0)
    except Exception as exc:  # any failure of one attempt is the task's, never the run's
        return TaskResult(task_id, error=error_text(exc), seconds=time.perf_counter() - t0)
    return TaskResult(task_id, value=done.value, worker=done.worker, seconds=done.seconds)


def _throughput(per_worker: Counter[str], elapsed: float) -> str:
    if not per_worker or elapsed <= 0:
        return ""
    rates = [f"{w} {3600 * n / elapsed:,.0f}/h" for w, n in sorted(per_worker.items())]
    return " · ".join(rates[:8]) + (f" · +{len(rates) - 8} workers" if len(rates) > 8 else "")


async def drive(
    task_ids: Sequence[str],
    executor: Executor,
    sink: Sink,
    *,
    max_attempts: int = 3,
    task_timeout_s: float | None = None,
    progress: bool = True,
    label: str = "run",
    on_result: Callable[[TaskResult], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> DriveOutcome:
    """Run every task of ``task_ids`` not yet in ``sink`` on ``executor``; the sink gets each task once.

    ``on_skip`` sees each task a previous run finished; ``on_result`` every written result (after it is durable).
    An exception either raises stops the run, as a Ctrl-C does: tasks in flight are cancelled, the executor is
    closed, and a rerun resumes.
    """
    if max_attempts < 1:
        raise ValueError(f"--max-attempts must be at least 1, got {max_attempts}")
    if task_timeout_s is not None and task_timeout_s <= 0:
        raise ValueError(f"--task-timeout must be positive, got {task_timeout_s}")
    ids = list(dict.fromkeys(task_ids))
    done = sink.open()
    try:
        return await _drive(
            ids, done, executor, sink, max_attempts, task_timeout_s, progress, label, on_result, on_skip
        )
    finally:
        sink.close()


async def _drive(
    ids: list[str],
    done: set[str],
    executor: Executor,
    sink: Sink,
    max_attempts: int,
    task_timeout_s: float | None,
    progress: bool,
    label: str,
    on_result: Callable[[TaskResult], None] | None,
    on_skip: Callable[[str], None] | None,
) -> DriveOutcome:
    pending = deque(t for t in ids if t not in done)
    outcome = DriveOutcome(total=len(ids), skipped=len(ids) - len(pending))
    if on_skip is not None:
        for task_id in ids:
            if task_id in done:
                on_skip(task_id)
    attempts: Counter[str] = Counter()
    per_worker: Counter[str] = Counter()
    running: dict[asyncio.Task[TaskResult], str] = {}
    start = time.perf_counter()
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TimeRemainingColumn(), TextColumn("{task.fields[status]}"), disable=not progress) as bar:
        job = bar.add_task(label, total=len(ids), completed=outcome.skipped, status="")
        try:
            if pending:
                await executor.start()
            while pending or running:
                while pending and len(running) < executor.slots:
                    task_id = pending.popleft()
                    attempts[task_id] += 1
                    running[asyncio.create_task(_attempt(executor, task_id, task_timeout_s))] = task_id
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for fut in finished:
                    task_id = running.pop(fut)
                    result = fut.result()
                    if not result.ok and not result.timed_out and attempts[task_id] < max_attempts:
                        outcome.retries += 1
                        pending.append(task_id)
                        continue
                    if task_id in done:  # at-least-once delivery: the first result written wins
                        outcome.duplicates += 1
                        continue
                    result = TaskResult(
                        task_id,
                        value=result.value,
                        error=result.error,
                        timed_out=result.timed_out,
                        attempts=attempts[task_id],
                        worker=result.worker,
                        seconds=result.seconds,
                    )
                    sink.write(result)
                    done.add(task_id)
                    outcome.ran += 1
                    if not result.ok:
                        outcome.failed += 1
                        outcome.timed_out += result.timed_out
                        outcome.failures[task_id] = result.error or ""
                    if result.worker is not None:
                        per_worker[result.worker] += 1
                    elapsed = time.perf_counter() - start
                    status = " · ".join(s for s in (sink.status(), _throughput(per_worker, elapsed)) if s)
                    bar.update(job, advance=1, status=status)
                    if on_result is not None:
                        on_result(result)
        finally:
            for fut in running:
                fut.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*running, return_exceptions=True)
            await executor.close()
    outcome.wall_time_s = time.perf_counter() - start
    outcome.per_worker = dict(per_worker)
    return outcome
