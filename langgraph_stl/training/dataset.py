"""STL training examples: provenance-carrying records, a crash-safe JSONL store, and the reference file format.

The project stores examples as JSONL (one :class:`Example` per line) because collection appends them as they are
produced and a kill must never lose or corrupt more than the line being written. The reference STL code stores
them as a single-line JSON array of ShareGPT pairs; :func:`read_sharegpt` / :func:`write_sharegpt` convert
losslessly (the reference files were written with ``json.dumps`` defaults, which :func:`write_sharegpt` reproduces
byte for byte).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TextIO

from langgraph_stl.durable import Tail, decode_utf8, exclusive, inspect_tail, repair_tail

log = logging.getLogger(__name__)

Kind = Literal["lookahead", "terminal"]

_SCORE_RE = re.compile(r"the correctness score is\s*(-?\d+(?:\.\d+)?)\s*/", re.IGNORECASE)
_DEPTH_RE = re.compile(r"depth[=_-]?(\d+)", re.IGNORECASE)
_TERMINAL_HEADER = "of the terminal state."


class DatasetError(ValueError):
    """A dataset file is malformed (the message names file and line)."""


@dataclass(slots=True)
class Example:
    """One value-model training pair with where it came from.

    ``value`` is the target's score on the [0, 1] scale (the text says ``X.XX / 10.00``); ``depth`` is the number
    of actions taken, counting the current one (the reference's ``depth=k``).
    """

    prompt: str
    completion: str
    depth: int
    kind: Kind = "lookahead"
    value: float | None = None
    task: str = ""
    iteration: int = 0
    env: str = ""
    policy_model: str = ""
    value_model: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Example:
        """Build from a decoded JSON object; unknown keys are an error so typos don't pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        missing = {"prompt", "completion", "depth"} - set(raw)
        if missing:
            raise ValueError(f"missing field(s) {sorted(missing)}")
        if not isinstance(raw["prompt"], str) or not isinstance(raw["completion"], str):
            raise ValueError("prompt and completion must be strings")
        if not isinstance(raw["depth"], int) or raw["depth"] < 0:
            raise ValueError(f"depth must be a non-negative integer, got {raw['depth']!r}")
        if raw.get("kind", "lookahead") not in ("lookahead", "terminal"):
            raise ValueError(f"kind must be 'lookahead' or 'terminal', got {raw['kind']!r}")
        return cls(**raw)


def parse_target_value(text: str) -> float | None:
    """The score of a target text on [0, 1]: the number before '/' after the last "the correctness score is"."""
    found = _SCORE_RE.findall(text)
    return float(found[-1]) / 10.0 if found else None


# ---------------------------------------------------------------------------------------------------------------
# JSONL store


class ExampleWriter:
    """Append-only JSONL writer: one line per example, flushed (and fsynced) per line so a kill loses at most it.

    It holds an exclusive lock on the file while open (a second writer gets
    :class:`~langgraph_stl.durable.OutputLockedError`) and appends only to a file it recognises as a dataset of
    ours (its first line is an example); anything else raises :class:`DatasetError` with the file untouched. A
    last line torn by a kill is then cut, or given back its newline when it is a whole example.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._held = ExitStack()
        self._held.enter_context(exclusive(self.path))
        try:
            tail = _recognise_dataset(self.path)
            self.repaired_bytes = repair_tail(self.path, tail) if tail else 0
            self._fh: TextIO = self.path.open("a", encoding="utf-8")
        except BaseException:
            self._held.close()
            raise
        self.written = 0

    def _flush(self) -> None:
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def write(self, example: Example) -> None:
        self._fh.write(example.to_json() + "\n")
        self._flush()
        self.written += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._held.close()

    def __enter__(self) -> ExampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_EXAMPLE_START = (b'{"prompt": ',)
"""How every line :meth:`Example.to_json` writes begins (the first field, ``json.dumps`` default separators)."""


def _is_example(raw: Any) -> bool:
    try:
        Example.from_dict(raw)
    except (ValueError, TypeError):
        return False
    return True


def _recognise_dataset(path: Path) -> Tail | None:
    """Check, without writing, that ``path`` is a JSONL dataset of ours; returns how to finish its last line."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    data = path.read_bytes()
    refuse = "not a JSONL dataset of this project; nothing was changed, choose another output"
    tail = inspect_tail(data, starts=_EXAMPLE_START, is_record=_is_example)
    if tail is None:
        last = data.count(b"\n") + 1
        raise DatasetError(f"{path}:{last}: the last line is not part of an example: {refuse}")
    for lineno, raw in enumerate(tail.view(data).split(b"\n"), start=1):
        if raw.strip():
            try:
                ok = _is_example(json.loads(raw))
            except ValueError:
                ok = False
            if not ok:
                raise DatasetError(f"{path}:{lineno}: the first line is not an example: {refuse}")
            break
    return tail


@dataclass(slots=True)
class ReadResult:
    """Examples read from a file plus one ``file:line: reason`` entry per skipped line."""

    examples: list[Example]
    errors: list[str]


def read_jsonl(path: str | os.PathLike[str], *, strict: bool = False) -> ReadResult:
    """Read a project JSONL file. Malformed lines are logged and skipped, or raise :class:`DatasetError` if strict."""
    path = Path(path)
    examples: list[Example] = []
    errors: list[str] = []
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(_utf8(line))
                if not isinstance(raw, dict):
                    raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
                examples.append(Example.from_dict(raw))
            except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                where = f"{path}:{lineno}: {exc}"
                if strict:
                    raise DatasetError(where) from exc
                log.warning("skipping malformed line %s", where)
                errors.append(where)
    return ReadResult(examples, errors)


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})") from None


# ---------------------------------------------------------------------------------------------------------------
# Reference (ShareGPT-style) files


def _depth_from_name(path: Path) -> int:
    found = _DEPTH_RE.findall(path.stem)
    if not found:
        raise DatasetError(
            f"{path}: cannot tell the depth from the file name (expected 'depth<k>' or 'depth=<k>'); "
            "give it with --depth K"
        )
    return int(found[-1])


def unnamed_depth(path: str | os.PathLike[str], depth: int | None) -> int | None:
    """``depth`` for a reference file whose name carries no ``depth<k>``; None (the name decides) otherwise."""
    return None if _DEPTH_RE.search(Path(path).stem) else depth


def read_sharegpt(path: str | os.PathLike[str], *, depth: int | None = None, env: str = "") -> list[Example]:
    """Import a reference improvement-data file (a JSON array of ``[human, gpt]`` pairs).

    The depth comes from the file name unless given; kind and value are read from the texts. Structure errors raise
    :class:`DatasetError` with the record index: a reference file is one line, so there is nothing to skip to.
    """
    path = Path(path)
    try:
        data = json.loads(decode_utf8(path.read_bytes(), path))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    except ValueError as exc:  # not UTF-8
        raise DatasetError(str(exc)) from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON array of [human, gpt] pairs")
    depth = _depth_from_name(path) if depth is None else depth
    out: list[Example] = []
    for i, pair in enumerate(data):
        ok = (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(m, dict) and set(m) == {"from", "value"} for m in pair)
            and pair[0]["from"] == "human"
            and pair[1]["from"] == "gpt"
        )
        if not ok:
            raise DatasetError(f"{path}: record {i} is not a [{{'from': 'human'}}, {{'from': 'gpt'}}] pair")
        prompt, completion = pair[0]["value"], pair[1]["value"]
        kind: Kind = "terminal" if _TERMINAL_HEADER in prompt.split("\n", 1)[0] else "lookahead"
        out.append(
            Example(
                prompt=prompt,
                completion=completion,
                depth=depth,
                kind=kind,
                value=parse_target_value(completion),
                env=env,
                source=f"{path.name}#{i}",
            )
        )
    return out


def sharegpt_dumps(examples: Iterable[Example]) -> str:
    """The reference file text: ``json.dumps`` with default settings (ASCII escapes, ', ' and ': ' separators)."""
    return json.dumps(
        [[{"from": "human", "value": e.prompt}, {"from": "gpt", "value": e.completion}] for e in examples]
    )


def write_sharegpt(examples: Iterable[Example], path: str | os.PathLike[str]) -> None:
    """Write examples in the reference format (single line, no trailing newline), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(sharegpt_dumps(examples), encoding="utf-8")
    os.replace(tmp, path)


def load_examples(path: str | os.PathLike[str], *, strict: bool = False, depth: int | None = None) -> ReadResult:
    """Load either format: a reference JSON array (first byte '[') or the project's JSONL.

    ``depth``: the depth of a reference file whose name carries none (a name's ``depth<k>`` still wins)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"["):
        return ReadResult(read_sharegpt(path, depth=unnamed_depth(path, depth)), [])
    return read_jsonl(path, strict=strict)


def load_many(paths: Iterable[str | os.PathLike[str]], *, strict: bool = False, depth: int | None = None) -> ReadResult:
    """Concatenate :func:`load_examples` over several files."""
    examples: list[Example] = []
    errors: list[str] = []
    for p in paths:
        res = load_examples(p, strict=strict, depth=depth)
        examples.extend(res.examples)
        errors.extend(res.errors)
    return ReadResult(examples, errors)


# ---------------------------------------------------------------------------------------------------------------
# TRL rows


RowFormat = Literal["prompt_completion", "messages"]


def to_trl_row(example: Example, fmt: RowFormat = "prompt_completion") -> dict[str, Any]:
    """One TRL SFT row. Conversational rows go through the tokenizer's chat template (ChatML, as the reference).

    ``prompt_completion`` lets TRL mask the prompt (completion-only loss); ``messages`` trains on the full text,
    which is what the reference did.
    """
    user = {"role": "user", "content": example.prompt}
    assistant = {"role": "assistant", "content": example.completion}
    if fmt == "prompt_completion":
        return {"prompt": [user], "completion": [assistant]}
    if fmt == "messages":
        return {"messages": [user, assistant]}
    raise ValueError(f"unknown row format {fmt!r}")


def iter_trl_rows(examples: Iterable[Example], fmt: RowFormat = "prompt_completion") -> Iterator[dict[str, Any]]:
    for e in examples:
        yield to_trl_row(e, fmt)


# ---------------------------------------------------------------------------------------------------------------
# Statistics


@dataclass(slots=True)
class DatasetStats:
    """Counts that tell whether a collection run produced a sensible training set."""

    total: int
    per_depth: dict[int, int]
    terminal_per_depth: dict[int, int]
    value_histogram: dict[str, int]
    no_value: int
    mean_prompt_chars: float
    mean_completion_chars: float
    tasks: int

    @property
    def terminal_share(self) -> float:
        return sum(self.terminal_per_depth.values()) / self.total if self.total else 0.0


def _bin_label(value: float, bins: int) -> str:
    """Histogram bin of a [0, 1] value on the 0-10 scale; values above 1 (seen in HotpotQA) get their own bin."""
    if value > 1.0:
        return ">10"
    k = min(int(value * bins), bins - 1) if value >= 0 else -1
    if k < 0:
        return "<0"
    lo, hi = 10 * k / bins, 10 * (k + 1) / bins
    return f"{lo:g}-{hi:g}"


def compute_stats(examples: list[Example], *, bins: int = 10) -> DatasetStats:
    per_depth: Counter[int] = Counter(e.depth for e in examples)
    terminal: Counter[int] = Counter(e.depth for e in examples if e.kind == "terminal")
    hist: Counter[str] = Counter(_bin_label(e.value, bins) for e in examples if e.value is not None)
    order = [_bin_label(k / bins, bins) for k in range(bins)]
    histogram = {b: hist.get(b, 0) for b in ["<0", *order, ">10"] if b in order or hist.get(b)}
    n = len(examples)
    return DatasetStats(
        total=n,
        per_depth=dict(sorted(per_depth.items())),
        terminal_per_depth={d: terminal.get(d, 0) for d in sorted(per_depth)},
        value_histogram=histogram,
        no_value=sum(1 for e in examples if e.value is None),
        mean_prompt_chars=sum(len(e.prompt) for e in examples) / n if n else 0.0,
        mean_completion_chars=sum(len(e.completion) for e in examples) / n if n else 0.0,
        tasks=len({e.task for e in examples if e.task}),
    )


def file_digest(paths: Iterable[str | os.PathLike[str]]) -> str:
    """SHA-256 over the files' bytes, in order: identifies exactly which data a model was trained on."""
    h = hashlib.sha256()
    for p in paths:
        with Path(p).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
