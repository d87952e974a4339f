"""Evaluation records: the project's own JSONL format and the STL reference's saved-results format.

Both formats are read into the same :class:`TaskRecord`, so every metric and report works on either. Our format
(documented in ``docs/EVALUATION.md``) is written by ``stl eval``: a ``run`` header line (configuration and the
task universe) followed by one ``task`` line per finished task, appended as soon as the task ends.

A third format is the raw ``run_search`` result, one JSON object per task (what ``stl improve`` writes for its
evaluations); it has no header, so its universe is the tasks present unless ``--n-tasks`` says otherwise.

The reference format (``greedy_evaluation_results_<value>_<policy>_<a>-<b>.jsonl``) has one line per task with
``task_idx``, ``true_reward`` (oracle max over the rollouts), ``true_rewards_list`` (``[value estimate, true
reward]`` per rollout), ``num_expanded_nodes`` and a *cumulative* ``usage_so_far``; some files end with a summary
line. The cumulative counters restart at 0 whenever the reference's process restarted, so per-task usage is the
difference to the previous line, or the line's own value right after a restart (segment-summing; reading only the
last line, as the reference's own script does, undercounts).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph_stl.durable import Tail, inspect_tail

SCHEMA_VERSION = 1
"""Version of our record format; bumped on incompatible changes."""

Format = Literal["stl", "reference", "search"]


class ResultsFormatError(ValueError):
    """A results file is malformed; the message names the file and the line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Token use of one model within one task. ``local`` models (open weights run here) cost nothing."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cost: float = 0.0
    local: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "calls": self.calls,
            "cost": self.cost,
            "local": self.local,
        }


@dataclass(frozen=True, slots=True)
class Rollout:
    """One trajectory: its ground-truth reward and the value model's estimate of where it ended.

    ``value`` is what a value-selected report ranks rollouts by; the reference writes -1 for an unparsable
    estimate and we write None when no estimate exists, and both rank lowest. ``values`` are the estimates of the
    states along the path (``values[i]`` after ``trajectory[i]``), kept for analysis.
    """

    true_reward: float
    value: float | None = None
    values: tuple[float | None, ...] = ()
    trajectory: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "true_reward": self.true_reward,
            "value": self.value,
            "values": list(self.values),
            "trajectory": list(self.trajectory),
        }


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """Everything measured for one task. ``true_reward`` is the oracle best over the rollouts (0 on error)."""

    task_id: str
    rollouts: tuple[Rollout, ...] = ()
    true_reward: float = 0.0
    success: bool = False
    states_expanded: int | None = None
    policy_calls: int | None = None
    value_calls: int | None = None
    usage: dict[str, ModelUsage] = field(default_factory=dict)
    cost: float | None = None
    wall_time_s: float | None = None
    error: str | None = None
    attempts: int | None = None
    """Attempts the runner made (more than 1 after an error or a lost worker); None in older files."""
    line: int | None = None
    """Line of the file the record was read from (diagnostics only; not written)."""

    @classmethod
    def from_rollouts(cls, task_id: str, rollouts: Iterable[Rollout], **kwargs: Any) -> TaskRecord:
        """A record whose oracle reward and success follow from its rollouts."""
        rolls = tuple(rollouts)
        best = max((r.true_reward for r in rolls), default=0.0)
        return cls(task_id=task_id, rollouts=rolls, true_reward=best, success=best == 1.0, **kwargs)

    @classmethod
    def failed(cls, task_id: str, error: str, wall_time_s: float | None = None) -> TaskRecord:
        """A task that could not be run (unreachable model or environment); it scores 0."""
        return cls(task_id=task_id, error=error, wall_time_s=wall_time_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "record": "task",
            "schema": SCHEMA_VERSION,
            "task_id": self.task_id,
            "true_reward": self.true_reward,
            "success": self.success,
            "rollouts": [r.to_json() for r in self.rollouts],
            "states_expanded": self.states_expanded,
            "policy_calls": self.policy_calls,
            "value_calls": self.value_calls,
            "usage": {name: u.to_json() for name, u in self.usage.items()},
            "cost": self.cost,
            "wall_time_s": self.wall_time_s,
            "error": self.error,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class RunHeader:
    """First line of our files: what was run, and over which task ids (the universe missing tasks count in)."""

    config: dict[str, Any]
    task_ids: tuple[str, ...]
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "record": "run",
            "schema": SCHEMA_VERSION,
            "created": self.created,
            "config": self.config,
            "task_ids": list(self.task_ids),
        }


@dataclass(slots=True)
class ResultsFile:
    """A parsed results file."""

    path: Path
    format: Format
    tasks: dict[str, TaskRecord]
    header: RunHeader | None = None
    summary_lines: int = 0
    usage_resets: int = 0
    """How often the reference's cumulative usage counters restarted (each restart starts a new segment)."""

    @property
    def label(self) -> str:
        """A short human name: the header's ``label`` if set, else the file name without the range suffix."""
        if self.header and isinstance(self.header.config.get("label"), str):
            return str(self.header.config["label"])
        return _RANGE_RE.sub("", self.path.stem)

    def name_range(self) -> tuple[int, int] | None:
        """The task index range ``[a, b)`` a reference file name ends in (``..._0-500.jsonl``), if any."""
        m = _RANGE_RE.search(self.path.stem)
        return (int(m.group(1)), int(m.group(2))) if m else None


_RANGE_RE = re.compile(r"_(\d+)-(\d+)$")


# --------------------------------------------------------------------------------------------------------- reading


def load_results(path: str | Path) -> ResultsFile:
    """Read a results file in either format; raises :class:`ResultsFormatError` naming the bad line."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFormatError(path, None, "no such file")
    return parse_results(path, path.read_bytes())


def parse_results(path: Path, data: bytes) -> ResultsFile:
    """:func:`load_results` on ``data``, the bytes of ``path`` (or of what it will hold once repaired)."""
    fmt: Format | None = None
    first_line = 0
    tasks: dict[str, TaskRecord] = {}
    header: RunHeader | None = None
    summaries = 0
    usage = _CumulativeUsage()
    for lineno, obj in _json_lines(path, data):
        kind = _record_kind(obj)
        if kind is None:
            raise ResultsFormatError(
                path,
                lineno,
                "not a results record (expected a reference line with 'task_idx' or a line of ours "
                "with 'record': 'run'|'task')",
            )
        line_fmt: Format = "reference" if kind in ("reference", "summary") else "search" if kind == "search" else "stl"
        if fmt is None:
            fmt, first_line = line_fmt, lineno
        elif fmt != line_fmt:
            raise ResultsFormatError(
                path, lineno, f"mixed formats: this is a {line_fmt} record but line {first_line} was {fmt}"
            )
        if kind == "summary":
            summaries += 1
            continue
        if kind == "run":
            if header is not None or tasks:
                raise ResultsFormatError(path, lineno, "a 'run' header may only appear once, on the first line")
            header = _parse_header(path, lineno, obj)
            continue
        if kind == "reference":
            rec = _parse_reference(path, lineno, obj, usage)
        elif kind == "search":
            rec = _parse_search(_Fields(path, lineno, obj))
        else:
            rec = _parse_ours(path, lineno, obj)
        if rec.task_id in tasks:
            raise ResultsFormatError(
                path, lineno, f"duplicate task {rec.task_id!r} (first on line {tasks[rec.task_id].line})"
            )
        tasks[rec.task_id] = rec
    if fmt is None:
        raise ResultsFormatError(path, None, "empty results file")
    return ResultsFile(
        path=path, format=fmt, tasks=tasks, header=header, summary_lines=summaries, usage_resets=usage.resets
    )


def _json_lines(path: Path, data: bytes) -> Iterator[tuple[int, Any]]:
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResultsFormatError(
                path, lineno, f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
            ) from None
        try:
            yield lineno, json.loads(text)
        except json.JSONDecodeError as exc:
            raise ResultsFormatError(path, lineno, f"not valid JSON ({exc.msg} at column {exc.colno})") from None


def _record_kind(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    if obj.get("record") in ("run", "task"):
        return str(obj["record"])
    if "task_idx" in obj:
        return "reference"
    if "task_id" in obj and "rollouts" in obj and "algorithm" in obj:
        return "search"
    if "starting_task_idx" in obj and "average_true_reward" in obj:
        return "summary"
    return None


class _Fields:
    """Typed access to a JSON object's fields that turns every mistake into a ResultsFormatError."""

    def __init__(self, path: Path, line: int, obj: dict[str, Any]) -> None:
        self.path, self.line, self.obj = path, line, obj

    def error(self, message: str) -> ResultsFormatError:
        return ResultsFormatError(self.path, self.line, message)

    def number(self, key: str, obj: Any = None, *, optional: bool = False) -> float | None:
        src = self.obj if obj is None else obj
        value = src.get(key) if isinstance(src, dict) else None
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(f"field {key!r} must be a finite number, got {value!r}")
        return float(value)

    def reward(self, key: str, obj: Any = None) -> float:
        value = self.number(key, obj)
        assert value is not None
        if not 0.0 <= value <= 1.0:
            raise self.error(f"field {key!r} must be a reward in [0, 1], got {value!r}")
        return value

    def count(self, key: str, *, optional: bool = True) -> int | None:
        value = self.obj.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(f"field {key!r} must be a non-negative integer, got {value!r}")
        return value

    def usage(self, key: str) -> dict[str, dict[str, Any]]:
        value = self.obj.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise self.error(f"field {key!r} must map model names to token counts")
        return value


def _parse_header(path: Path, line: int, obj: dict[str, Any]) -> RunHeader:
    f = _Fields(path, line, obj)
    config, ids = obj.get("config", {}), obj.get("task_ids", [])
    if not isinstance(config, dict):
        raise f.error("field 'config' must be an object")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise f.error("field 'task_ids' must be a list of strings")
    return RunHeader(config=config, task_ids=tuple(ids), created=str(obj.get("created", "")))


def _parse_ours(path: Path, line: int, obj: dict[str, Any]) -> TaskRecord:
    f = _Fields(path, line, obj)
    if obj.get("schema") != SCHEMA_VERSION:
        raise f.error(f"unsupported schema {obj.get('schema')!r} (this version reads {SCHEMA_VERSION})")
    task_id = obj.get("task_id")
    if not isinstance(task_id, str):
        raise f.error(f"field 'task_id' must be a string, got {task_id!r}")
    raw_rollouts = obj.get("rollouts", [])
    if not isinstance(raw_rollouts, list) or not all(isinstance(r, dict) for r in raw_rollouts):
        raise f.error("field 'rollouts' must be a list of objects")
    rollouts = []
    for r in raw_rollouts:
        values, trajectory = r.get("values", []), r.get("trajectory", [])
        if not isinstance(values, list) or not all(v is None or isinstance(v, int | float) for v in values):
            raise f.error("a rollout's 'values' must be a list of numbers or nulls")
        if not isinstance(trajectory, list) or not all(isinstance(a, str) for a in trajectory):
            raise f.error("a rollout's 'trajectory' must be a list of action strings")
        rollouts.append(
            Rollout(
                true_reward=f.reward("true_reward", r),
                value=f.number("value", r, optional=True),
                values=tuple(None if v is None else float(v) for v in values),
                trajectory=tuple(trajectory),
            )
        )
    usage = {}
    for name, u in f.usage("usage").items():
        uf = _Fields(path, line, u)
        usage[name] = ModelUsage(
            prompt_tokens=uf.count("prompt_tokens", optional=False) or 0,
            completion_tokens=uf.count("completion_tokens", optional=False) or 0,
            calls=uf.count("calls") or 0,
            cost=uf.number("cost", optional=True) or 0.0,
            local=bool(u.get("local", True)),
        )
    error = obj.get("error")
    if error is not None and not isinstance(error, str):
        raise f.error(f"field 'error' must be a string or null, got {error!r}")
    return TaskRecord(
        task_id=task_id,
        rollouts=tuple(rollouts),
        true_reward=f.reward("true_reward"),
        success=bool(obj.get("success", False)),
        states_expanded=f.count("states_expanded"),
        policy_calls=f.count("policy_calls"),
        value_calls=f.count("value_calls"),
        usage=usage,
        cost=f.number("cost", optional=True),
        wall_time_s=f.number("wall_time_s", optional=True),
        error=error,
        attempts=f.count("attempts"),
        line=line,
    )


class _CumulativeUsage:
    """Turns the reference's cumulative per-process counters into per-task usage, detecting restarts."""

    def __init__(self) -> None:
        self.previous: dict[str, tuple[int, int, float]] = {}
        self.resets = 0

    def per_task(self, f: _Fields, cumulative: dict[str, dict[str, Any]]) -> dict[str, ModelUsage]:
        out = {}
        for name, u in cumulative.items():
            uf = _Fields(f.path, f.line, u)
            now = (
                uf.count("prompt_tokens", optional=False) or 0,
                uf.count("completion_tokens", optional=False) or 0,
                uf.number("cost", optional=True) or 0.0,
            )
            before = self.previous.get(name, (0, 0, 0.0))
            if any(n < b for n, b in zip(now, before, strict=True)):
                self.resets += 1
                before = (0, 0, 0.0)
            self.previous[name] = now
            prompt, completion, cost = (n - b for n, b in zip(now, before, strict=True))
            # The reference prices API models and writes 0 for open ones; that is the only local/API signal it has.
            out[name] = ModelUsage(
                prompt_tokens=int(prompt), completion_tokens=int(completion), cost=float(cost), local=now[2] == 0
            )
        return out


def _parse_reference(path: Path, line: int, obj: dict[str, Any], usage: _CumulativeUsage) -> TaskRecord:
    f = _Fields(path, line, obj)
    idx = f.count("task_idx", optional=False)
    pairs = obj.get("true_rewards_list", [])
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise f.error("field 'true_rewards_list' must be a list of [value estimate, true reward] pairs")
    rollouts = []
    for value, reward in pairs:
        pair = {"value": value, "true_reward": reward}
        rollouts.append(Rollout(true_reward=f.reward("true_reward", pair), value=f.number("value", pair)))
    best = f.reward("true_reward")
    per_task = usage.per_task(f, f.usage("usage_so_far"))
    return TaskRecord(
        task_id=str(idx),
        rollouts=tuple(rollouts),
        true_reward=best,
        success=best == 1.0,
        states_expanded=f.count("num_expanded_nodes"),
        usage=per_task,
        cost=sum(u.cost for u in per_task.values()),
        line=line,
    )


def _parse_search(f: _Fields, api: AbstractSet[str] = frozenset()) -> TaskRecord:
    """A ``run_search`` result (one JSON object per task, as ``stl improve`` writes them) as a task record."""
    obj = f.obj
    task_id = obj.get("task_id")
    if not isinstance(task_id, str):
        raise f.error(f"field 'task_id' must be a string, got {task_id!r}")
    error = str(obj["error"]) if obj.get("error") else None
    raw = [] if error else obj.get("rollouts")
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise f.error("field 'rollouts' must be a list of objects")
    rollouts = []
    for r in raw:
        if "true_reward" not in r:
            raise f.error("a rollout has no 'true_reward' (was the search run with true_reward=False?)")
        values = r.get("values", [])
        if not isinstance(values, list) or not all(v is None or isinstance(v, int | float) for v in values):
            raise f.error("a rollout's 'values' must be a list of numbers or nulls")
        rollouts.append(
            Rollout(
                true_reward=f.reward("true_reward", r),
                value=f.number("value", r, optional=True),
                values=tuple(None if v is None else float(v) for v in values),
                trajectory=tuple(str(a) for a in r.get("trajectory", [])),
            )
        )
    tokens = obj.get("tokens") or {}
    if not isinstance(tokens, dict) or not all(isinstance(t, dict) for t in tokens.values()):
        raise f.error("field 'tokens' must map model names to token counts")
    usage = {}
    for model, t in tokens.items():
        tf = _Fields(f.path, f.line, t)
        usage[model] = ModelUsage(
            prompt_tokens=tf.count("input_tokens") or 0,
            completion_tokens=tf.count("output_tokens") or 0,
            calls=tf.count("calls") or 0,
            local=model not in api,
        )
    return TaskRecord.from_rollouts(
        task_id,
        rollouts,
        states_expanded=f.count("states_expanded"),
        policy_calls=f.count("policy_calls"),
        value_calls=f.count("value_calls"),
        usage=usage,
        wall_time_s=f.number("wall_time_s", optional=True),
        error=error,
        line=f.line,
    )


def record_from_search(result: dict[str, Any], api: AbstractSet[str] = frozenset()) -> TaskRecord:
    """Our task record from an ``arun_search`` result; ``api`` names the models that are remote APIs."""
    return _parse_search(_Fields(Path("<run_search result>"), 0, result), api)


# --------------------------------------------------------------------------------------------------------- writing

_LINE_STARTS = (b'{"record":"run"', b'{"record":"task"')
"""How every line :func:`dump_line` writes begins."""


def recognise_output(path: Path) -> tuple[ResultsFile | None, Tail] | None:
    """Check, without changing a byte, that ``path`` is a file :func:`dump_line` lines are appended to.

    Returns None for a missing or empty file; else the file as it will read once its torn last line is repaired
    (None when nothing but a torn first line is there yet) and that repair, for
    :func:`langgraph_stl.durable.repair_tail`. Raises :class:`ResultsFormatError` when the file is someone
    else's: a writer must then leave it alone.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    data = path.read_bytes()
    tail = inspect_tail(data, starts=_LINE_STARTS, is_record=lambda obj: _record_kind(obj) in ("run", "task"))
    if tail is None:
        raise ResultsFormatError(path, data.count(b"\n") + 1, "the last line is not part of an `stl` record")
    view = tail.view(data)
    if not view.strip():
        return None, tail
    results = parse_results(path, view)
    if results.format != "stl":
        raise ResultsFormatError(path, None, f"it holds {results.format} records")
    return results, tail


def dump_line(record: TaskRecord | RunHeader) -> str:
    """One JSONL line (with its newline) for ``record``."""
    return json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
