"""The evaluation runner behind ``stl eval``: bounded concurrency, one line per task, resumable.

Each finished task is appended to the output file at once (written, flushed and fsynced as a single line), so a
killed run loses only the tasks in flight. Rerunning the same command reads the file, checks that it was written
by the same configuration, and runs only the tasks that have no line yet. A task whose model or environment fails
(unreachable server, timeout, a bug in a tool) is recorded as a failed task with the reason and the run goes on;
``retry_failed`` drops those lines on the next run and runs them again.

The runner knows nothing about search: it calls an injected ``run_task(task_id) -> TaskRecord`` (the CLI builds
one from the search core; tests and benchmarks pass fakes) and adds wall time and prices.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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

RunTask = Callable[[str], Awaitable[TaskRecord]]
"""Runs one task and returns its record (without wall time or cost, which the runner adds)."""


_NOT_IDENTITY = {"label"}
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
        found = recognise_output(out, "stl")
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


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


async def run_eval(
    task_ids: Sequence[str],
    run_task: RunTask,
    out: str | Path,
    *,
    config: dict[str, Any],
    concurrency: int = 2,
    prices: PriceTable | None = None,
    retry_failed: bool = False,
    task_timeout_s: float | None = None,
    progress: bool = True,
) -> EvalOutcome:
    """Run ``run_task`` over ``task_ids`` (skipping those already in ``out``), at most ``concurrency`` at a time."""
    if concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
    out = Path(out)
    prices = prices or PriceTable()
    header = RunHeader(config=config, task_ids=tuple(task_ids), created=dt.datetime.now(dt.UTC).isoformat())
    with exclusive(out):  # held for the whole run: a second writer would interleave its lines with ours
        done, repaired = prepare_output(out, header, retry_failed=retry_failed)
        pending = [t for t in task_ids if t not in done]
        semaphore = asyncio.Semaphore(concurrency)
        unpriced: set[str] = set()
        counts = {"ran": 0, "failed": 0}
        rewards: list[float] = []
        start = time.perf_counter()

        with Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            disable=not progress,
        ) as bar:
            job = bar.add_task("eval", total=len(task_ids), completed=len(task_ids) - len(pending), status="")

            async def one(task_id: str) -> None:
                async with semaphore:
                    t0 = time.perf_counter()
                    try:
                        rec = await asyncio.wait_for(run_task(task_id), task_timeout_s)
                        rec = dataclasses.replace(rec, task_id=task_id)
                    except TimeoutError:
                        rec = TaskRecord.failed(task_id, f"TimeoutError: the task took longer than {task_timeout_s} s")
                    except Exception as exc:  # any failure of one task is recorded; the run goes on
                        rec = TaskRecord.failed(task_id, _error_text(exc))
                    usage = {m: prices.priced(m, u) for m, u in rec.usage.items()}
                    unpriced.update(m for m, u in usage.items() if not u.local and prices.price(m) is None)
                    rec = dataclasses.replace(
                        rec,
                        usage=usage,
                        cost=sum(u.cost for u in usage.values()),
                        wall_time_s=round(time.perf_counter() - t0, 4),
                    )
                    append_line(out, dump_line(rec))
                counts["ran"] += 1
                counts["failed"] += rec.error is not None
                rewards.append(rec.true_reward)
                status = f"mean reward {sum(rewards) / len(rewards):.3f}" + (
                    f", [red]{counts['failed']} failed" if counts["failed"] else ""
                )
                bar.update(job, advance=1, status=status)

            await asyncio.gather(*(one(t) for t in pending))
    return EvalOutcome(
        out=out,
        total=len(task_ids),
        skipped=len(task_ids) - len(pending),
        ran=counts["ran"],
        failed=counts["failed"],
        repaired_bytes=repaired,
        wall_time_s=time.perf_counter() - start,
        unpriced_models=tuple(sorted(unpriced)),
    )
