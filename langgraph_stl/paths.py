"""Where data and caches live.

Data (WebShop catalogue, Game-of-24 puzzles, STL reference files) is read from ``STL_DATA_DIR`` when set, else
from ``$XDG_CACHE_HOME/langgraph-stl/data`` (``~/.cache/...``), which ``stl data fetch`` fills. Derived artefacts
(converted models, prepared indexes) go to ``STL_CACHE_DIR`` or ``~/.cache/langgraph-stl``.
"""

from __future__ import annotations

import os
from pathlib import Path


class DataNotFoundError(FileNotFoundError):
    """A data file is missing; the message says how to get it."""


def cache_dir() -> Path:
    """Root of the user cache (converted models, prepared indexes)."""
    env = os.environ.get("STL_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "langgraph-stl"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``override``, else ``STL_DATA_DIR``, else ``<cache>/data``."""
    if override is not None:
        return Path(override).expanduser().resolve()
    env = os.environ.get("STL_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return cache_dir() / "data"


def data_file(
    relpath: str, *, data_dir_override: str | os.PathLike[str] | None = None, hint: str | None = None
) -> Path:
    """Path of ``relpath`` inside the data directory; raises :class:`DataNotFoundError` if absent."""
    root = data_dir(data_dir_override)
    path = root / relpath
    if not path.exists():
        how = hint or "run `stl data fetch` (needs internet) or set STL_DATA_DIR to a folder that has it"
        raise DataNotFoundError(f"missing data file {relpath!r} under {root}: {how}")
    return path
