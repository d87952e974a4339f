"""What the data directory should hold, what is there, and how to download the parts that have an official source.

The registry below is the single description of every data file the project reads: where it lives in the data
directory, which features need it, and, for the four files with an official upstream copy (WebShop's 1k catalogue,
its attributes and human instructions, Tree-of-Thoughts' ``24.csv``), the download URL with a pinned size and
SHA-256. ``stl data info`` renders it; ``stl data fetch`` downloads into a temporary file next to the target,
verifies the bytes (size, SHA-256, then structure), and only then renames it into place, so an interrupted or
offline fetch never leaves a half-written file behind.

``STL_DATA_MIRROR`` (or ``mirror=``) replaces every upstream URL with ``<mirror>/<relpath>``: a folder laid out like
the data directory served over HTTP (tests use a loopback server; sites without internet can use an internal one).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from langgraph_stl.paths import data_dir as resolve_data_dir

__all__ = [
    "DATA_FILES",
    "MIRROR_ENV",
    "DataFile",
    "DataFileStatus",
    "FetchError",
    "FetchResult",
    "OfflineError",
    "fetch",
    "file_status",
    "info",
]

MIRROR_ENV = "STL_DATA_MIRROR"
_CHUNK = 1 << 16


class FetchError(RuntimeError):
    """A download failed or its content did not verify; nothing was written."""


class OfflineError(FetchError):
    """The upstream host could not be reached."""


# --------------------------------------------------------------------------------------------------- checks


def _check_24_csv(blob: bytes) -> str:
    from langgraph_stl.envs.game24 import N_PUZZLES, PuzzleError, parse_puzzle

    rows = list(csv.DictReader(io.StringIO(blob.decode("utf-8"))))
    if not rows or "Puzzles" not in rows[0]:
        raise ValueError("no 'Puzzles' column")
    try:
        puzzles = {parse_puzzle(row["Puzzles"] or "") for row in rows}
    except PuzzleError as exc:
        raise ValueError(str(exc)) from None
    if len(rows) != N_PUZZLES or len(puzzles) != N_PUZZLES:
        raise ValueError(f"expected {N_PUZZLES} distinct puzzles, got {len(rows)} rows / {len(puzzles)} distinct")
    return f"{len(rows)} puzzles"


def _load_json(blob: bytes) -> Any:
    if blob.lstrip()[:1] == b"<":
        raise ValueError("got an HTML page instead of JSON (a download quota or confirmation page?)")
    return json.loads(blob)


def _check_products(blob: bytes) -> str:
    products = _load_json(blob)
    if not isinstance(products, list) or not all(isinstance(p, dict) and "asin" in p for p in products):
        raise ValueError("expected a JSON list of products with an 'asin'")
    if len(products) != 1000:
        raise ValueError(f"expected 1000 products, got {len(products)}")
    return f"{len(products)} products"


def _check_attributes(blob: bytes) -> str:
    items = _load_json(blob)
    if not isinstance(items, dict) or not all(isinstance(v, dict) and "attributes" in v for v in items.values()):
        raise ValueError("expected a JSON object asin -> {attributes: [...], ...}")
    if len(items) != 1000:
        raise ValueError(f"expected 1000 products, got {len(items)}")
    return f"{len(items)} products, {sum('instruction' in v for v in items.values())} with an instruction"


def _check_human_instructions(blob: bytes) -> str:
    items = _load_json(blob)
    if not isinstance(items, dict) or not all(isinstance(v, list) for v in items.values()):
        raise ValueError("expected a JSON object asin -> [instructions]")
    return f"{sum(len(v) for v in items.values())} instructions for {len(items)} products"


# --------------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class DataFile:
    """One file (or folder) of the data directory."""

    relpath: str
    group: str
    needed_for: str
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    check: Callable[[bytes], str] | None = None
    alternative_to: str | None = None
    """Another relpath this one can stand in for (then missing it is fine when that one is present)."""

    @property
    def fetchable(self) -> bool:
        return self.url is not None


def _gdrive(file_id: str) -> str:
    # The direct-download endpoint behind WebShop's `gdown https://drive.google.com/uc?id=...` (setup.sh).
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


DATA_FILES: tuple[DataFile, ...] = (
    DataFile(
        "game24/24.csv",
        "game24",
        "Game-of-24 tasks in Tree-of-Thoughts' order and split (without it: the generated set, another order)",
        url="https://raw.githubusercontent.com/princeton-nlp/tree-of-thought-llm/master/src/tot/data/24/24.csv",
        size=48_235,
        sha256="b9f12b3e36d987a3c714c4cef17d89a137d7c59da26532fcfb93b4821d8111b5",
        check=_check_24_csv,
    ),
    DataFile(
        "webshop/items_shuffle_1000.json",
        "webshop",
        "WebShop catalogue, raw upstream form (products, pages, search index)",
        url=_gdrive("1EgHdxQ_YxqIQlvvq5iKlCrkEKR6-j0Ib"),
        size=4_467_013,
        sha256="30a4765c3a327af72d9a9a95a6b2486d516f0fa1d3ecd83681901ce82a21b269",
        check=_check_products,
        alternative_to="webshop/documents_1k.jsonl.gz",
    ),
    DataFile(
        "webshop/items_ins_v2_1000.json",
        "webshop",
        "WebShop attributes and synthetic instructions (goals, reward)",
        url=_gdrive("1IduG0xl544V_A_jv3tHXC0kyFi7PnyBu"),
        size=147_099,
        sha256="f88a36314a397b53b3d9c3fa5878e5f7b26d35019a51ec83fbedeca61a948f6f",
        check=_check_attributes,
    ),
    DataFile(
        "webshop/items_human_ins.json",
        "webshop",
        "WebShop human instructions, all 12,087 (human goals)",
        url=_gdrive("14Kb5SPBk_jfdLZ_CDBNitW98QLDlKR5O"),
        size=5_137_548,
        sha256="cf78667548a71786e1d9049c24b802e48e1084ad4bb021cae56ce1f6d96954a3",
        check=_check_human_instructions,
        alternative_to="webshop/items_human_ins_1k.json",
    ),
    DataFile("webshop/documents_1k.jsonl.gz", "webshop", "WebShop catalogue, processed (pyserini documents) form"),
    DataFile("webshop/items_human_ins_1k.json", "webshop", "WebShop human instructions of the 1k catalogue (13)"),
    DataFile("webshop/human_goals.json", "webshop", "WebShop's 12,087 human goal texts in shuffled order"),
    DataFile("webshop/goal_query_map.json", "webshop", "human search queries per goal (imitation data)"),
    DataFile("webshop/mturk_trajs", "webshop", "MTurk human trajectories (reference episodes)"),
    DataFile("stl_reference/webshop/improvement_data", "stl_reference", "the paper's STL training examples"),
    DataFile("stl_reference/webshop/saved_results", "stl_reference", "the paper's per-task evaluation results"),
)


# --------------------------------------------------------------------------------------------------- info


@dataclass(frozen=True, slots=True)
class DataFileStatus:
    """What :func:`info` found for one :class:`DataFile`."""

    file: DataFile
    path: Path
    present: bool
    size: int
    n_files: int
    verified: bool | None
    """True/False when the file has a pinned SHA-256 and is present; None otherwise."""
    covered_by: str | None
    """When missing: the present alternative that serves the same need."""

    @property
    def state(self) -> str:
        if self.present:
            return {True: "ok (sha256 verified)", False: "present, differs from upstream", None: "present"}[
                self.verified
            ]
        return f"missing (served by {self.covered_by})" if self.covered_by else "missing"

    @property
    def how_to_get(self) -> str:
        if self.file.fetchable:
            return f"stl data fetch --only {self.file.group}"
        stand_ins = [f.relpath for f in DATA_FILES if f.alternative_to == self.file.relpath and f.fetchable]
        if stand_ins:
            return f"not downloadable, but `stl data fetch` gets {' and '.join(stand_ins)}, which serves the same need"
        return "not downloadable: set STL_DATA_DIR to the project's shared data folder that has it"

    def as_dict(self) -> dict[str, Any]:
        return {
            "relpath": self.file.relpath,
            "group": self.file.group,
            "state": self.state,
            "present": self.present,
            "size": self.size,
            "files": self.n_files,
            "verified": self.verified,
            "needed_for": self.file.needed_for,
            "how_to_get": None if self.present else self.how_to_get,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_status(file: DataFile, root: Path) -> DataFileStatus:
    """Presence, size and (for pinned files) integrity of ``file`` under ``root``."""
    path = root / file.relpath
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
    size = sum(p.stat().st_size for p in files)
    verified = None
    if path.is_file() and file.sha256 is not None:
        verified = size == file.size and _sha256(path) == file.sha256
    covered_by = None
    if not files:
        alternatives = [f.relpath for f in DATA_FILES if f.alternative_to == file.relpath]
        alternatives += [file.alternative_to] if file.alternative_to else []
        covered_by = next((alt for alt in alternatives if (root / alt).exists()), None)
    return DataFileStatus(file, path, bool(files), size, len(files), verified, covered_by)


def info(data_dir: str | os.PathLike[str] | None = None) -> list[DataFileStatus]:
    """The status of every registered data file in the data directory."""
    root = resolve_data_dir(data_dir)
    return [file_status(file, root) for file in DATA_FILES]


# --------------------------------------------------------------------------------------------------- fetch


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome for one file: ``downloaded`` or ``already present``, and what the structural check saw."""

    relpath: str
    action: str
    summary: str
    size: int


def _selected(only: str | Sequence[str] | None) -> list[DataFile]:
    groups = [only] if isinstance(only, str) else list(only or ())
    fetchable = sorted({f.group for f in DATA_FILES if f.fetchable})
    unknown = [g for g in groups if g not in fetchable]
    if unknown:
        raise ValueError(f"unknown data group {', '.join(unknown)}; choose from {', '.join(fetchable)}")
    return [f for f in DATA_FILES if f.fetchable and (not groups or f.group in groups)]


def _url(file: DataFile, mirror: str | None) -> str:
    assert file.url is not None
    return f"{mirror.rstrip('/')}/{file.relpath}" if mirror else file.url


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target``; deleted unless the caller renamed it into place (as is a folder that
    was created for it and stayed empty)."""
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _download(url: str, dest: Path, *, timeout: float, on_bytes: Callable[[int, int | None], None] | None) -> str:
    """Stream ``url`` into ``dest``; returns the SHA-256. Connection problems become :class:`OfflineError`."""
    import httpx

    digest = hashlib.sha256()
    host = urlsplit(url).netloc
    try:
        with (
            httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response,
            dest.open("wb") as out,
        ):
            if response.status_code != 200:
                raise FetchError(f"{url} answered HTTP {response.status_code}")
            total = int(response.headers["content-length"]) if "content-length" in response.headers else None
            for chunk in response.iter_bytes(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk), total)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise OfflineError(f"offline: could not reach {host} ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"download from {host} failed: {type(exc).__name__}: {exc}") from None
    return digest.hexdigest()


def _verify(file: DataFile, blob: bytes, sha256: str, *, pinned: bool) -> str:
    if pinned and file.size is not None and len(blob) != file.size:
        raise FetchError(f"{file.relpath}: expected {file.size:,} bytes, got {len(blob):,}")
    if pinned and file.sha256 is not None and sha256 != file.sha256:
        raise FetchError(f"{file.relpath}: sha256 {sha256} differs from the pinned upstream {file.sha256}")
    if file.check is None:
        return f"{len(blob):,} bytes"
    try:
        return file.check(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FetchError(f"{file.relpath}: not the expected content: {exc}") from None


def fetch(
    only: str | Sequence[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    mirror: str | None = None,
    verify_checksums: bool = True,
    force: bool = False,
    timeout: float = 60.0,
    on_file: Callable[[DataFile], None] | None = None,
    on_bytes: Callable[[int, int | None], None] | None = None,
) -> list[FetchResult]:
    """Download the upstream files of the ``only`` groups (default: all) into the data directory.

    Files already present with the pinned checksum are skipped unless ``force``. ``mirror`` (default
    ``$STL_DATA_MIRROR``) replaces the upstream URLs; ``verify_checksums=False`` keeps only the structural checks
    (for a mirror serving other versions). Raises :class:`OfflineError` when a host is unreachable and
    :class:`FetchError` for anything else; files fetched before the failure stay (they verified), the failing one
    leaves nothing behind.
    """
    files = _selected(only)
    root = resolve_data_dir(data_dir)
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    results: list[FetchResult] = []
    for file in files:
        status = file_status(file, root)
        if status.verified and not force:
            results.append(FetchResult(file.relpath, "already present", "sha256 verified", status.size))
            continue
        if on_file is not None:
            on_file(file)
        url = _url(file, mirror)
        try:
            with _staging(status.path) as tmp:
                try:
                    sha256 = _download(url, tmp, timeout=timeout, on_bytes=on_bytes)
                except OfflineError as exc:
                    missing = ", ".join(f.relpath for f in files if not (root / f.relpath).is_file())
                    raise OfflineError(f"{exc}; set STL_DATA_DIR to a folder with {missing}") from None
                blob = tmp.read_bytes()
                summary = _verify(file, blob, sha256, pinned=verify_checksums)
                os.replace(tmp, status.path)
        except OSError as exc:
            raise FetchError(
                f"cannot write to {status.path.parent} ({exc.strerror}); set STL_DATA_DIR to a writable folder"
            ) from None
        results.append(FetchResult(file.relpath, "downloaded", summary, len(blob)))
    return results
