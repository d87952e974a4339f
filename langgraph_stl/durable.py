"""Files that commands append to: one writer at a time, and no byte changed before the file is recognised.

Every output a command appends to (``stl eval --out``, an ``stl improve`` run folder and the files in it,
collection datasets and their ``.done`` lists, ``stl dataset import --out``) follows two rules:

1. **Exclusive.** The command holds a lock on the output for its whole lifetime (:func:`exclusive`). A second
   command fails at once with :class:`OutputLockedError`, naming the holder (pid, host, command, start time);
   the CLIs turn it into exit status 2. Two writers interleaving lines is the failure this prevents.
2. **Recognised, then repaired.** An existing file is checked to be the writer's own format *before* anything is
   written. Only then is a torn last line (a kill mid-write) repaired, and only that line: it is cut when it is
   the start of one of the writer's lines (:func:`inspect_tail`), or gets its newline back when it is a whole
   record missing only the newline. Any other tail means the file is not ours and nothing is touched.

The lock is a :mod:`filelock` lock on ``<output>.lock`` (``<folder>/.lock`` for a run folder), with the holder's
details in ``<lock>.owner`` (a separate file, because some filelock versions truncate the lock file when a
contender opens it). On POSIX systems the kernel (``flock``) drops a killed command's lock at once, so a rerun
after ``kill -9`` just works. Where ``flock`` is unavailable (Windows, some network filesystems) filelock uses its
own locks; a hard-killed run may then leave a stale lock that filelock breaks by its own rules, or that you remove.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout


class OutputLockedError(RuntimeError):
    """Another command is writing this output right now."""

    def __init__(self, path: Path, holder: dict[str, Any] | None) -> None:
        if holder:
            who = (
                f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
                f"{holder.get('command')}"
            )
        else:
            who = "a process that has not recorded its details yet"
        super().__init__(f"{path} is in use by {who}; wait for it to finish or choose another output")
        self.path = path
        self.holder = holder


def lock_path(path: Path, *, folder: bool = False) -> Path:
    """Where the lock of an output lives: inside a run folder, beside a file."""
    return path / ".lock" if folder else path.with_name(path.name + ".lock")


def _owner_path(lock: Path) -> Path:
    return lock.with_name(lock.name + ".owner")


def _read_owner(lock: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(_owner_path(lock).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


@contextmanager
def exclusive(path: str | os.PathLike[str], *, folder: bool = False) -> Iterator[None]:
    """Hold the output's lock for the ``with`` block, or raise :class:`OutputLockedError` at once.

    ``path`` is a file (its parent folder is created; the lock goes beside it, so a folder given by mistake is not
    written into) or, with ``folder``, an existing run folder. The lock is not reentrant: a second ``exclusive``
    on the same output, even in the same process, is refused like another command.
    """
    target = Path(path)
    if not folder:
        target.parent.mkdir(parents=True, exist_ok=True)
    lock_file = lock_path(target, folder=folder)
    lock = FileLock(lock_file, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLockedError(target, _read_owner(lock_file)) from None
    owner = _owner_path(lock_file)
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "?",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        tmp = owner.with_name(owner.name + ".tmp")
        tmp.write_text(json.dumps(me), encoding="utf-8")
        os.replace(tmp, owner)
        yield
    finally:
        if _read_owner(lock_file) == me:
            owner.unlink(missing_ok=True)
        lock.release()


# ---------------------------------------------------------------------------------------------------------------
# Recognising and repairing a file's last line


@dataclass(frozen=True, slots=True)
class Tail:
    """An append file seen up to its last newline, and what follows it.

    ``whole`` is the offset just after the last newline; ``torn`` the bytes after it. ``complete`` says the torn
    bytes are a whole record of the writer's that lost only its newline (kept, newline added); otherwise they are
    the start of one (cut).
    """

    whole: int
    torn: bytes
    complete: bool

    def view(self, data: bytes) -> bytes:
        """The file as it will read once repaired."""
        return data[: self.whole] + (self.torn + b"\n" if self.complete else b"")


def inspect_tail(data: bytes, *, starts: tuple[bytes, ...], is_record: Callable[[Any], bool]) -> Tail | None:
    """How to finish ``data``'s last line, or None when the bytes after the last newline are not the writer's.

    ``starts`` are the prefixes the writer's lines begin with (``b'{"record":"task"'``); a torn tail must begin
    with one of them, or be a prefix of one (a kill after a few bytes). ``is_record`` tells whether a decoded
    JSON value is one of the writer's records (then a tail that parses is kept whole).
    """
    whole = data.rfind(b"\n") + 1
    torn = data[whole:]
    if not torn:
        return Tail(whole, b"", complete=False)
    try:
        complete = is_record(json.loads(torn))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError: a fragment
        complete = False
    if complete or any(torn.startswith(s) or s.startswith(torn) for s in starts):
        return Tail(whole, torn, complete)
    return None


def repair_tail(path: Path, tail: Tail) -> int:
    """Apply :func:`inspect_tail`'s verdict to ``path`` (call only after recognising the rest); bytes removed."""
    if not tail.torn:
        return 0
    with path.open("r+b") as fh:
        if tail.complete:
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")
        else:
            fh.truncate(tail.whole)
        fh.flush()
        os.fsync(fh.fileno())
    return 0 if tail.complete else len(tail.torn)


def decode_utf8(raw: bytes, path: Path) -> str:
    """The text of ``path`` (whose bytes are ``raw``); ValueError ``path:line: not UTF-8 text`` otherwise."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at column {column})") from None


def append_line(path: Path, line: str) -> None:
    """Append one line in a single write, flushed and fsynced, so a kill loses at most this line."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
