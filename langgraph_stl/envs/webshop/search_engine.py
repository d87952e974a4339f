"""WebShop's product search: BM25 that ranks exactly like pyserini's ``LuceneSearcher`` over the catalogue.

WebShop indexes each product's ``contents`` with Anserini and searches with ``LuceneSearcher.search(query, k=50)``.
This module reproduces that stack in numpy, bit for bit where Lucene uses floats:

* terms: :mod:`langgraph_stl.envs.webshop.analyzer` (Anserini's default English analyzer);
* query: each distinct term is a SHOULD clause boosted by its count in the query (``BagOfWordsQueryGenerator``);
* scoring: Lucene 9 ``BM25Similarity(k1=0.9, b=0.4)``: ``idf = ln(1 + (N - df + 0.5)/(df + 0.5))`` (double, then
  float), document length stored as a lossy one-byte norm (``SmallFloat.intToByte4``) and decoded through the
  256-entry cache ``1 / (k1 * (1 - b + b * len / avgdl))``, per-term score ``w - w / (1 + tf * cache[norm])`` in
  float32 with ``w = boost * idf``, clause scores summed in double and rounded to float (``BooleanScorer``);
* order: score descending, then collection id ascending (Anserini's ``BREAK_SCORE_TIES_BY_DOCID`` sort);
* reported scores: as pyserini returns them, after Anserini's ``ScoreTiesAdjusterReranker`` (rounded to 1e-4, each
  tie lowered by 1e-6 per position). :meth:`SearchEngine.scores` gives the raw float32 BM25 scores.

The special WebShop keyword modes (``<r>``, ``<a>``, ``<c>``, ``<q>``) live in the web app, not in pyserini; they are
in :func:`top_asins_from_keywords`, which mirrors ``engine.get_top_n_product_from_keywords``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from langgraph_stl.envs.webshop.analyzer import analyze, analyze_chunk, split_chunks
from langgraph_stl.envs.webshop.catalog import WebShopDataError, document_contents, find_catalog_files, load_catalog

K1 = 0.9
B = 0.4
SEARCH_RETURN_N = 50
PRODUCT_WINDOW = 10  # results per page

F32 = np.float32
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------------------
# Lucene's SmallFloat: document lengths are stored in one byte, exact below 24, then with 4 significant bits.


def _long_to_int4(i: int) -> int:
    num_bits = i.bit_length()
    if num_bits < 4:
        return i
    shift = num_bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_to_long(i: int) -> int:
    bits, shift = i & 0x07, (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


_NUM_FREE_VALUES = 255 - _long_to_int4(2**31 - 1)  # = 24


def int_to_byte4(i: int) -> int:
    """``SmallFloat.intToByte4``: the norm byte (0-255) Lucene stores for a field of ``i`` tokens."""
    if i < 0:
        raise ValueError(f"length must be non-negative, got {i}")
    return i if i < _NUM_FREE_VALUES else _NUM_FREE_VALUES + _long_to_int4(i - _NUM_FREE_VALUES)


def byte4_to_int(b: int) -> int:
    """``SmallFloat.byte4ToInt``: the (rounded-down) length a norm byte stands for."""
    return b if b < _NUM_FREE_VALUES else _NUM_FREE_VALUES + _int4_to_long(b - _NUM_FREE_VALUES)


LENGTH_TABLE = np.array([byte4_to_int(i) for i in range(256)], dtype=F32)


def lucene_idf(doc_freq: int, doc_count: int) -> np.float32:
    """BM25Similarity.idf, computed in double and stored as float."""
    return F32(math.log(1 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5)))


def norm_cache(avgdl: np.float32, k1: float = K1, b: float = B) -> npt.NDArray[np.float32]:
    """BM25Similarity's per-norm cache ``1 / (k1 * ((1 - b) + b * LENGTH_TABLE[i] / avgdl))`` in float32 order."""
    k1f, bf = F32(k1), F32(b)
    return (F32(1) / (k1f * ((F32(1) - bf) + bf * LENGTH_TABLE / avgdl))).astype(F32)


def adjust_ties(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Anserini's ScoreTiesAdjusterReranker on ranked scores: round to 1e-4, lower each tie by 1e-6 per step.

    The rounding is done in double and the tie perturbation in float, as in the Anserini 0.21 bytecode.
    """
    out = np.empty_like(scores)
    dup = 0
    for i, score in enumerate(scores.tolist()):
        scaled = score * 10000.0  # (float) (Math.round((double) score * 10000.0) / 10000.0)
        whole = math.floor(scaled)
        rounded = F32((whole + (scaled - whole >= 0.5)) / 10000.0)
        if i == 0 or out[i - 1] - rounded > F32(1e-4):
            dup = 0
        else:
            dup += 1
            rounded = F32(rounded - F32(1e-6) * F32(dup))
        out[i] = rounded
    return out


# ---------------------------------------------------------------------------------------------------------------------


class SearchEngine:
    """An in-memory BM25 index over ``(id, contents)`` documents with pyserini's ranking.

    Postings are stored per term as contiguous slices of two arrays (document index, term frequency), so a query
    costs a few vectorized numpy operations per query term plus a partial sort of the matching documents.
    """

    def __init__(self, documents: Iterable[tuple[str, str]], *, k1: float = K1, b: float = B) -> None:
        ids: list[str] = []
        term_ids: dict[str, int] = {}
        token_terms: list[int] = []  # the term id of every indexed token, document after document
        lengths: list[int] = []
        chunk_terms: dict[str, list[int]] = {}  # term ids of each distinct whitespace-free chunk seen
        for doc_id, contents in documents:
            start = len(token_terms)
            for chunk in split_chunks(contents):
                tids = chunk_terms.get(chunk)
                if tids is None:
                    tids = chunk_terms[chunk] = [term_ids.setdefault(t, len(term_ids)) for t in analyze_chunk(chunk)]
                token_terms.extend(tids)
            ids.append(doc_id)
            lengths.append(len(token_terms) - start)
        if len(set(ids)) != len(ids):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ValueError(f"document ids must be unique; repeated: {dupes[:5]}{' ...' if len(dupes) > 5 else ''}")
        self.ids = ids
        self.k1, self.b = k1, b
        n_docs, n_terms = len(ids), len(term_ids)
        # Lucene's statistics count only documents whose field has at least one term.
        self.doc_count = sum(1 for n in lengths if n > 0)
        self.avgdl = F32(sum(lengths) / self.doc_count) if self.doc_count else F32(1)
        norms = np.fromiter((int_to_byte4(n) for n in lengths), dtype=np.uint8, count=n_docs)
        # The factor tf is multiplied by in BM25Scorer: the norm cache entry of each document, looked up once here.
        self._doc_norm_inverse = norm_cache(self.avgdl, k1, b)[norms]
        # Tie-break rank: Java compares Strings by UTF-16 code units, which UTF-16-BE byte order reproduces.
        order = sorted(range(n_docs), key=lambda i: ids[i].encode("utf-16-be"))
        self._id_rank = np.empty(n_docs, dtype=np.int64)
        self._id_rank[order] = np.arange(n_docs)

        # Postings: one (term, doc) key per token, counted and sorted by term then document in one np.unique.
        tokens = np.array(token_terms, dtype=np.int64) * max(n_docs, 1)
        tokens += np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        keys, tfs = np.unique(tokens, return_counts=True)
        self._post_docs = (keys % max(n_docs, 1)).astype(np.int32)
        self._post_tfs = tfs.astype(F32)
        doc_freqs = np.bincount(keys // max(n_docs, 1), minlength=n_terms)
        self._offsets = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(doc_freqs, out=self._offsets[1:])
        self._term_ids = term_ids
        self._idf = np.array([lucene_idf(int(df), self.doc_count) for df in doc_freqs.tolist()], dtype=F32)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def vocabulary_size(self) -> int:
        return len(self._term_ids)

    def _query_clauses(self, query: str) -> list[tuple[int, np.float32]]:
        """(term id, boost) for each distinct query term that occurs in the index."""
        counts = Counter(analyze(query))
        return [(self._term_ids[t], F32(c)) for t, c in counts.items() if t in self._term_ids]

    def _matches(self, query: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Indices of the documents matching ``query`` and their float32 BM25 scores."""
        clauses = self._query_clauses(query)
        if not clauses:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=F32)
        doc_parts, score_parts = [], []
        for tid, boost in clauses:
            lo, hi = self._offsets[tid], self._offsets[tid + 1]
            docs = self._post_docs[lo:hi]
            weight = boost * self._idf[tid]
            # BM25Scorer.score: weight - weight / (1 + freq * normInverse), all in float32.
            part = weight - weight / (F32(1) + self._post_tfs[lo:hi] * self._doc_norm_inverse[docs])
            doc_parts.append(docs)
            score_parts.append(part)
        if len(clauses) == 1:
            return doc_parts[0].astype(np.int64), score_parts[0]
        # BooleanScorer sums clause scores in double, then rounds to float. Every clause score is positive, so the
        # matching documents are exactly those with a non-zero total.
        totals = np.bincount(
            np.concatenate(doc_parts), weights=np.concatenate(score_parts).astype(np.float64), minlength=len(self.ids)
        )
        matched = np.flatnonzero(totals)
        return matched, totals[matched].astype(F32)

    def scores(self, query: str) -> dict[str, float]:
        """Raw float32 BM25 score of every document that matches ``query`` (as Lucene computes it)."""
        docs, scores = self._matches(query)
        return {self.ids[d]: float(s) for d, s in zip(docs.tolist(), scores.tolist(), strict=True)}

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[tuple[str, float]]:
        """Top ``k`` (id, score) pairs for ``query``, in pyserini's order and with the scores pyserini reports."""
        if k <= 0:
            return []
        docs, scores = self._matches(query)
        if docs.size == 0:
            return []
        if docs.size > k:
            # Keep every document scoring at least the k-th best score, so ties at the cut are decided by id.
            kth = np.partition(scores, docs.size - k)[docs.size - k]
            keep = scores >= kth
            docs, scores = docs[keep], scores[keep]
        order = np.lexsort((self._id_rank[docs], -scores))[:k]
        ranked = adjust_ties(scores[order])
        return [(self.ids[d], float(s)) for d, s in zip(docs[order].tolist(), ranked.tolist(), strict=True)]


# ---------------------------------------------------------------------------------------------------------------------
# Loading


def read_documents(path: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """(id, contents) pairs of a pyserini JsonCollection file (``documents.jsonl`` or ``.jsonl.gz``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                yield str(record["id"]), str(record["contents"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise WebShopDataError(f"{path}:{lineno}: not a pyserini document with 'id' and 'contents'") from exc


def catalog_documents(
    data_dir: str | os.PathLike[str] | None = None, *, catalog: str | os.PathLike[str] | None = None
) -> list[tuple[str, str]]:
    """(asin, indexed text) of the WebShop catalogue that :func:`~.catalog.find_catalog_files` picks.

    A ``documents.jsonl`` supplies the exact ``contents`` pyserini indexed; a raw ``items_shuffle*.json`` catalogue
    gets the text WebShop's ``convert_product_file_format.py`` would write for it.
    """
    files = find_catalog_files(data_dir, catalog=catalog)
    if files.is_documents:
        return list(read_documents(files.catalog))
    return [(p["asin"], document_contents(p)) for p in load_catalog(catalog=files.catalog)]


_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _load_cached(path: Path, stamp: tuple[int, int]) -> SearchEngine:
    return SearchEngine(catalog_documents(catalog=path))


def load_search_engine(
    data_dir: str | os.PathLike[str] | None = None, *, catalog: str | os.PathLike[str] | None = None
) -> SearchEngine:
    """The search engine over the WebShop catalogue (default: the project data dir's); cached per file version."""
    path = find_catalog_files(data_dir, catalog=catalog).catalog
    st = path.stat()
    with _LOAD_LOCK:  # concurrent first calls (server threads) build the index once
        return _load_cached(path, (st.st_mtime_ns, st.st_size))


# ---------------------------------------------------------------------------------------------------------------------
# WebShop's keyword modes


def top_asins_from_keywords(
    keywords: Sequence[str],
    engine: SearchEngine,
    products: Sequence[Mapping[str, Any]],
    *,
    rng: random.Random | None = None,
) -> list[str]:
    """ASINs WebShop's results page lists for ``keywords`` (``engine.get_top_n_product_from_keywords``).

    ``keywords`` is the app's ``query.lower().split(' ')``. The first token may select a mode: ``<r>`` 50 random
    products (from ``rng``, default the global ``random`` as in WebShop), ``<a> attr`` products having that
    attribute, ``<c> cat`` products of that category (only the second token counts), ``<q> query`` products scraped
    with that query (no limit of 50). Otherwise BM25 top 50, dropping ids that are not in ``products``.
    """
    if not keywords:
        return []
    mode = keywords[0]
    if mode == "<r>":
        chooser = rng if rng is not None else random
        return [p["asin"] for p in chooser.sample(list(products), k=min(SEARCH_RETURN_N, len(products)))]
    if mode == "<a>":
        attribute = " ".join(keywords[1:]).strip()
        return [p["asin"] for p in products if attribute in (p.get("Attributes") or ())]
    if mode == "<c>":
        category = keywords[1].strip() if len(keywords) > 1 else ""
        return [p["asin"] for p in products if p.get("category") == category]
    if mode == "<q>":
        query = " ".join(keywords[1:]).strip()
        return [p["asin"] for p in products if p.get("query") == query]
    known = {p["asin"] for p in products}
    return [asin for asin, _ in engine.search(" ".join(keywords), k=SEARCH_RETURN_N) if asin in known]


def results_page(results: Sequence[T], page: int) -> list[T]:
    """Page ``page`` (1-based) of a result list, 10 per page; past the end it is empty, as in WebShop."""
    if page < 1:
        raise ValueError(f"page must be >= 1, got {page}")
    return list(results[(page - 1) * PRODUCT_WINDOW : page * PRODUCT_WINDOW])


def format_results(results: Sequence[tuple[str, float]], *, as_json: bool = False) -> str:
    """Text for ``stl webshop search``: one ``rank asin score`` line per hit, or a JSON list of objects."""
    if as_json:
        return json.dumps([{"rank": i, "asin": a, "score": s} for i, (a, s) in enumerate(results, 1)])
    if not results:
        return "no results"
    return "\n".join(f"{i:>3}  {asin}  {score:.4f}" for i, (asin, score) in enumerate(results, 1))
