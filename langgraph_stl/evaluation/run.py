"""The evaluation runner behind ``stl eval``: bounded concurrency, one line per task, resumable.

Each finished task is appended to the output file at once (written, flushed and fsynced as a single line), so a
killed run loses only the tasks in flight. Rerunning the same command reads the file, checks that it was written
by the same configuration, and runs only the tasks that have no line yet. A task whose model or environment fails
(unreachable server, timeout, a bug in a tool) is recorded as a failed task with the reason and the run goes on;
``retry_failed`` drops those lines on the next run and runs them again.

The runner knows nothing about search: it calls an injected ``run_task(task_id) -> TaskRecord`` (the CLI builds
one from the search core; tests and benchmarks pass fakes) or an executor (``execution``: local or Ray), and adds
wall time, attempts and prices. The loop itself is the shared driver (:func:`langgraph_stl.execution.drive`);
:class:`EvalSink` is its writer for results files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph_stl.durable import append_line, exclusive, repair_tail
from langgraph_stl.envs.base import task_data_change
from langgraph_stl.evaluation.prices import PriceTable
from langgraph_stl.evaluation.results import (
    ResultsFormatError,
    RunHeader,
    TaskRecord,
    dump_line,
    recognise_output,
)
from langgraph_stl.execution.driver import Executor, LocalExecutor, TaskResult, drive

RunTask = Callable[[str], Awaitable[TaskRecord]]
"""Runs one task and returns its record (without wall time or cost, which the runner adds)."""


_NOT_IDENTITY = {"label", "execution"}
"""Config keys that name a run without changing what it computes; a resume may change them."""


class ResumeError(ValueError):
    """The output file exists but belongs to another run configuration."""


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    """What one invocation did; the scores come from reading the file (see ``report``)."""

    out: Path
    total: int
    skipped: int
    ran: int
    failed: int
    retries: int
    repaired_bytes: int
    wall_time_s: float
    unpriced_models: tuple[str, ...]

    @property
    def tasks_per_hour(self) -> float:
        return 3600 * self.ran / self.wall_time_s if self.wall_time_s > 0 else 0.0


def select_tasks(task_ids: Sequence[str], spec: str | None = None, limit: int | None = None) -> list[str]:
    """Pick tasks by position in the split: ``spec`` like ``"0-49"`` or ``"0-9,20,30-39"`` (inclusive), then the
    first ``limit`` of them."""
    chosen = list(task_ids)
    if spec:
        positions: list[int] = []
        for part in spec.split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not m:
                raise ValueError(f"--tasks {spec!r}: expected positions like '0-49' or '0-9,20,30-39'")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ValueError(f"--tasks {spec!r}: range {lo}-{hi} is empty")
            positions.extend(range(lo, hi + 1))
        if positions and max(positions) >= len(task_ids):
            raise ValueError(
                f"--tasks {spec!r}: the split has only {len(task_ids)} tasks (positions 0-{len(task_ids) - 1})"
            )
        chosen = [task_ids[i] for i in dict.fromkeys(positions)]
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"--limit must be positive, got {limit}")
        chosen = chosen[:limit]
    if not chosen:
        raise ValueError("no tasks selected")
    return chosen


def _normalized(config: dict[str, Any]) -> Any:
    return json.loads(json.dumps(config, sort_keys=True))


def prepare_output(out: Path, header: RunHeader, *, retry_failed: bool = False) -> tuple[set[str], int]:
    """Create ``out`` with its header, or validate it for resuming; returns (finished task ids, bytes repaired).

    Nothing is written until the file is recognised as an ``stl eval`` output of the same configuration (see
    :mod:`langgraph_stl.durable`); then a line torn by a kill is repaired, and only that line. A resumed run may
    select other tasks: they are added to the header's task list (the report's universe), so ``--limit 10`` first
    and the whole split later fill one file.
    """
    try:
        found = recognise_output(out)
    except ResultsFormatError as exc:
        raise ResumeError(f"{out} exists and is not an `stl eval` output ({exc}); choose another --out") from None
    existing = found[0] if found else None
    if existing is None:  # absent, empty, or only the start of a header (a run killed while writing it)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not found:
            append_line(out, dump_line(header))
            return set(), 0
        repaired = out.stat().st_size
        _replace(out, dump_line(header))
        return set(), repaired
    old = existing.header
    if old is None:
        raise ResumeError(f"{out} exists and is not an `stl eval` output (it has no run header); choose another --out")
    if "task_data" in header.config:
        change = task_data_change(old.config.get("task_data"), header.config["task_data"])
        if change:
            raise ResumeError(f"{out} cannot be resumed: {change}; restore that data or choose another --out")
    diffs = sorted(
        k
        for k in (set(header.config) | set(old.config)) - _NOT_IDENTITY
        if _normalized({k: header.config.get(k)}) != _normalized({k: old.config.get(k)})
    )
    if diffs:
        raise ResumeError(
            f"{out} was written by a different run (differs in: {', '.join(diffs)}); "
            "rerun with the same options to resume, or choose another --out"
        )
    assert found is not None
    repaired = repair_tail(out, found[1])
    failed = {tid for tid, rec in existing.tasks.items() if rec.error is not None}
    drop = {existing.tasks[tid].line for tid in failed} if retry_failed else set()
    ids = old.task_ids + tuple(t for t in header.task_ids if t not in set(old.task_ids))
    if drop or ids != old.task_ids:
        lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[0] = dump_line(dataclasses.replace(old, task_ids=ids))
        _replace(out, "".join(line for i, line in enumerate(lines, start=1) if i not in drop))
    return set(existing.tasks) - (failed if retry_failed else set()), repaired


def _replace(out: Path, text: str) -> None:
    """Atomic rewrite: a kill leaves the old file or the new one."""
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)


class EvalSink:
    """The driver's writer for ``stl eval`` files: header and resume checks on open, one fsynced line per task."""

    def __init__(self, out: Path, header: RunHeader, *, prices: PriceTable, retry_failed: bool = False) -> None:
        self.out = out
        self.header = header
        self.prices = prices
        self.retry_failed = retry_failed
        self.repaired = 0
        self.unpriced: set[str] = set()
        self.rewards: list[float] = []
        self.failed = 0
        self._lock = contextlib.ExitStack()

    def open(self) -> set[str]:
        # held until close(): a second writer would interleave its lines with ours
        self._lock.enter_context(exclusive(self.out))
        try:
            done, self.repaired = prepare_output(self.out, self.header, retry_failed=self.retry_failed)
        except BaseException:
            self._lock.close()
            raise
        return done

    def write(self, result: TaskResult) -> None:
        if result.ok:
            rec = dataclasses.replace(result.value, task_id=result.task_id)
        else:
            rec = TaskRecord.failed(result.task_id, result.error or "")
        usage = {m: self.prices.priced(m, u) for m, u in rec.usage.items()}
        self.unpriced.update(m for m, u in usage.items() if not u.local and self.prices.price(m) is None)
        rec = dataclasses.replace(
            rec,
            usage=usage,
            cost=sum(u.cost for u in usage.values()),
            wall_time_s=round(result.seconds, 4),
            attempts=result.attempts,
        )
        append_line(self.out, dump_line(rec))
        self.failed += rec.error is not None
        self.rewards.append(rec.true_reward)

    def status(self) -> str:
        mean = sum(self.rewards) / len(self.rewards) if self.rewards else 0.0
        return f"mean reward {mean:.3f}" + (f", [red]{self.failed} failed" if self.failed else "")

    def close(self) -> None:
        self._lock.close()


async def run_eval(
    task_ids: Sequence[str],
    run_task: RunTask | Executor,
    out: str | Path,
    *,
    config: dict[str, Any],
    concurrency: int = 2,
    max_attempts: int = 3,
    prices: PriceTable | None = None,
    retry_failed: bool = False,
    task_timeout_s: float | None = None,
    progress: bool = True,
    on_result: Callable[[TaskResult], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> EvalOutcome:
    """Run ``run_task`` over ``task_ids`` (skipping those already in ``out``), at most ``concurrency`` at a time.

    ``run_task`` may instead be an executor (``make_executor``: local or Ray), which brings its own concurrency.
    A task that raises is tried again up to ``max_attempts`` times in all, then recorded as failed.
    """
    executor = LocalExecutor(run_task, concurrency=concurrency) if callable(run_task) else run_task
    out = Path(out)
    header = RunHeader(
        config={**config, "execution": executor.describe()},
        task_ids=tuple(task_ids),
        created=dt.datetime.now(dt.UTC).isoformat(),
    )
    sink = EvalSink(out, header, prices=prices or PriceTable(), retry_failed=retry_failed)
    outcome = await drive(
        task_ids,
        executor,
        sink,
        max_attempts=max_attempts,
        task_timeout_s=task_timeout_s,
        progress=progress,
        label="eval",
        on_result=on_result,
        on_skip=on_skip,
    )
    return EvalOutcome(
        out=out,
        total=outcome.total,
        skipped=outcome.skipped,
        ran=outcome.ran,
        failed=outcome.failed,
        retries=outcome.retries,
        repaired_bytes=sink.repaired,
        wall_time_s=outcome.wall_time_s,
        unpriced_models=tuple(sorted(sink.unpriced)),
    )
