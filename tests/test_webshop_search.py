"""BM25 search engine: pyserini/Lucene 9 rankings and scores (golden data from Lucene), formula, ties, API."""

from __future__ import annotations

import gzip
import json
import math
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langgraph_stl.envs.webshop.analyzer import analyze
from langgraph_stl.envs.webshop.catalog import WebShopDataError
from langgraph_stl.envs.webshop.search_engine import (
    SearchEngine,
    adjust_ties,
    byte4_to_int,
    format_results,
    int_to_byte4,
    load_search_engine,
    results_page,
    top_asins_from_keywords,
)
from langgraph_stl.paths import DataNotFoundError

GOLDEN = Path(__file__).parent / "fixtures" / "webshop_lucene_golden.json.gz"
F = np.float32


def f32_bits(value: float) -> int:
    bits: int = struct.unpack("<i", struct.pack("<f", value))[0]
    return bits


@pytest.fixture(scope="module")
def engine() -> SearchEngine:
    return load_search_engine()


def test_rankings_and_scores_equal_pyserini(engine: SearchEngine) -> None:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as fh:
        golden: dict[str, Any] = json.load(fh)
    assert len(golden["queries"]) > 250
    for query, top50, total_hits in golden["queries"]:
        got = engine.search(query, k=50)
        assert [[asin, f32_bits(score)] for asin, score in got] == top50, query
        assert len(engine.scores(query)) == total_hits, query


def test_hit_counts_observed_in_the_original_app(engine: SearchEngine) -> None:
    # webshop.md §7: "silver wig" has 43 hits, "2022 candle soy" 24.
    assert len(engine.search("silver wig")) == 43
    assert len(engine.search("2022 candle soy")) == 24
    assert len(engine.search("size")) == 50 < len(engine.scores("size"))


def lucene_bm25(tf: int, length: int, df: int, n_docs: int, avgdl: float, boost: float = 1.0) -> np.float32:
    """Lucene 9 BM25 of one term, written out from the formula (lengths below 24 have exact norms)."""
    idf = F(math.log(1 + (n_docs - df + 0.5) / (df + 0.5)))
    inv_norm = F(1) / (F(0.9) * ((F(1) - F(0.4)) + F(0.4) * F(length) / F(avgdl)))
    weight = F(boost) * idf
    return F(weight - weight / (F(1) + F(tf) * inv_norm))


def rounded(score: np.float32) -> float:
    """Anserini's reported score: rounded half up to 4 decimals in double, stored as float."""
    return float(F(math.floor(float(score) * 10000.0 + 0.5) / 10000.0))


def test_scores_follow_lucene_bm25_by_hand() -> None:
    docs = [
        ("D1", "red shoe"),
        ("D2", "red red dress long"),
        ("D3", "blue shoe shoe shoe for the beach"),  # 'for', 'the' are stop words: length 4
        ("D4", "the of and"),  # no terms: not counted in N or avgdl
    ]
    engine = SearchEngine(docs)
    n, avgdl = 3, (2 + 4 + 5) / 3
    assert engine.doc_count == n and engine.avgdl == F(avgdl)
    scores = engine.scores("red shoes")
    expected = {
        "D1": float(F(float(lucene_bm25(1, 2, 2, n, avgdl)) + float(lucene_bm25(1, 2, 2, n, avgdl)))),
        "D2": float(lucene_bm25(2, 4, 2, n, avgdl)),
        "D3": float(lucene_bm25(3, 5, 2, n, avgdl)),
    }
    assert scores == expected
    ranked = engine.search("red shoes")
    assert [asin for asin, _ in ranked] == ["D1", "D3", "D2"]


def test_repeated_query_terms_are_boosts() -> None:
    engine = SearchEngine([("A", "wig silver"), ("B", "wig wig black"), ("C", "silver")])
    once, twice = engine.scores("wig"), engine.scores("wig wig")
    assert twice == {k: 2 * v for k, v in once.items()}  # boost 2 doubles weight exactly in float
    # "silver silver wig": silver counts twice, so the silver-only document overtakes the double-wig one.
    assert [a for a, _ in engine.search("silver wig")] == ["A", "B", "C"]
    assert [a for a, _ in engine.search("silver silver wig")] == ["A", "C", "B"]


def test_small_float_norms() -> None:
    assert [int_to_byte4(i) for i in range(24)] == list(range(24))
    assert int_to_byte4(100) == 57 and byte4_to_int(57) == 96
    assert int_to_byte4(2**31 - 1) == 255
    for n in (24, 25, 40, 100, 1000, 123_456):
        assert byte4_to_int(int_to_byte4(n)) <= n < byte4_to_int(int_to_byte4(n) + 1)
    with pytest.raises(ValueError, match="non-negative"):
        int_to_byte4(-1)


def test_lossy_norms_make_ties_that_exact_lengths_would_not() -> None:
    # Lengths 97 and 100 share norm byte 57 (decoded length 96): Lucene scores them equal, and the id decides.
    assert int_to_byte4(97) == int_to_byte4(100)
    words = [f"w{i}" for i in range(99)]
    short, long = "target " + " ".join(words[:96]), "target " + " ".join(words)
    engine = SearchEngine([("B-short", short), ("A-long", long)])
    assert (len(analyze(short)), len(analyze(long))) == (97, 100)
    scores = engine.scores("target")
    assert len(scores) == 2
    assert scores["A-long"] == scores["B-short"]
    assert lucene_bm25(1, 97, 2, 2, 98.5) != lucene_bm25(1, 100, 2, 2, 98.5)  # exact lengths would not tie
    assert [a for a, _ in engine.search("target")] == ["A-long", "B-short"]


def test_ties_break_by_id_in_java_string_order() -> None:
    same = "pink wig"
    ids = ["C3", "A1", "B2", "\uff21", "\U0001f600"]
    engine = SearchEngine([(i, same) for i in ids])
    # Java compares UTF-16 units: the surrogate pair of U+1F600 (0xD83D...) sorts before U+FF21.
    assert [a for a, _ in engine.search("wig")] == ["A1", "B2", "C3", "\U0001f600", "\uff21"]
    assert [a for a, _ in engine.search("wig", k=2)] == ["A1", "B2"]  # the cut keeps the smallest ids


def test_reported_scores_are_anserinis_tie_adjusted_ones() -> None:
    ranked = adjust_ties(np.array([23.439316, 22.087432, 22.087432, 21.602508], dtype=F))
    assert ranked.tolist() == [F(23.4393), F(22.0874), F(F(22.0874) - F(1e-6)), F(21.6025)]
    engine = SearchEngine([("B", "wig"), ("A", "wig"), ("C", "wig wig")])
    avgdl = (1 + 1 + 2) / 3
    high, low = (rounded(lucene_bm25(tf, tf, 3, 3, avgdl)) for tf in (2, 1))
    assert engine.search("wig") == [("C", high), ("A", low), ("B", float(F(F(low) - F(1e-6))))]


def test_k_handling(engine: SearchEngine) -> None:
    assert engine.search("wig", k=0) == [] and engine.search("wig", k=-3) == []
    assert len(engine.search("wig", k=3)) == 3
    everything = engine.search("wig", k=10_000)
    assert len(everything) == len(engine.scores("wig")) < 1000
    assert engine.search("wig", k=3) == everything[:3]


@pytest.mark.parametrize("query", ["", "   ", "the of and to", "!!! ??? ...", "qqqxxyyzz", "\x00\ufffd"])
def test_queries_without_known_terms_return_nothing(engine: SearchEngine, query: str) -> None:
    assert engine.search(query) == []


def test_very_long_query(engine: SearchEngine) -> None:
    assert len(engine.search("long clip-in hair extension " * 5_000 + "x" * 100_000)) == 50


def test_load_search_engine_is_cached(engine: SearchEngine) -> None:
    assert load_search_engine() is engine
    assert len(engine) == 1000


def test_concurrent_first_loads_share_one_engine(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "documents.jsonl").write_text(json.dumps({"id": "B1", "contents": "red wig"}) + "\n")
    with ThreadPoolExecutor(4) as pool:
        engines = list(pool.map(lambda _: load_search_engine(tmp_path), range(8)))
    assert all(e is engines[0] for e in engines)


def test_plain_documents_jsonl_and_bad_files(tmp_path: Path) -> None:
    (tmp_path / "webshop").mkdir()
    path = tmp_path / "webshop" / "documents.jsonl"
    path.write_text(
        json.dumps({"id": "B1", "contents": "red wig"}) + "\n\n" + json.dumps({"id": "B2", "contents": "blue"}) + "\n"
    )
    assert load_search_engine(tmp_path).search("wig") == [("B1", rounded(lucene_bm25(1, 2, 1, 2, 1.5)))]
    path.write_text('{"id": "B1"}\n')
    with pytest.raises(WebShopDataError, match=r"documents\.jsonl:1: not a pyserini document"):
        load_search_engine(tmp_path)
    with pytest.raises(DataNotFoundError, match="no WebShop catalogue"):
        load_search_engine(tmp_path / "missing")
    with pytest.raises(ValueError, match="unique"):
        SearchEngine([("A", "x"), ("A", "y")])


def test_raw_items_shuffle_catalogue() -> None:
    # A raw catalogue is indexed with the text WebShop's converter writes: title, description, first bullet, options.
    engine = load_search_engine(Path(__file__).parent / "fixtures" / "webshop_raw")
    assert len(engine) == 4
    assert [asin for asin, _ in engine.search("soy candle")] == ["B0TESTAAA4"]
    assert [asin for asin, _ in engine.search("stripes zipper")] == ["B0TESTAAA3"]


PRODUCTS = [
    {"asin": "P1", "category": "beauty", "query": "wigs", "Attributes": ["natural looking"]},
    {"asin": "P2", "category": "fashion", "query": "shorts", "Attributes": []},
    {"asin": "P3", "category": "beauty", "query": "wigs", "Attributes": ["natural looking", "long lasting"]},
]


def test_keyword_modes() -> None:
    engine = SearchEngine([("P1", "silver wig natural"), ("P3", "wig"), ("GONE", "wig wig wig")])
    assert top_asins_from_keywords(["<c>", "beauty", "ignored"], engine, PRODUCTS) == ["P1", "P3"]
    assert top_asins_from_keywords(["<q>", "wigs"], engine, PRODUCTS) == ["P1", "P3"]
    assert top_asins_from_keywords(["<a>", "long", "lasting"], engine, PRODUCTS) == ["P3"]
    assert top_asins_from_keywords(["<a>", "nothing"], engine, PRODUCTS) == []
    picked = top_asins_from_keywords(["<r>"], engine, PRODUCTS, rng=random.Random(7))
    assert sorted(picked) == ["P1", "P2", "P3"]
    assert picked == top_asins_from_keywords(["<r>"], engine, PRODUCTS, rng=random.Random(7))
    # BM25 mode: ids missing from the product list are dropped, like WebShop's product_item_dict lookup.
    assert top_asins_from_keywords(["silver", "wig"], engine, PRODUCTS) == ["P1", "P3"]
    assert top_asins_from_keywords([], engine, PRODUCTS) == []


def test_format_results() -> None:
    results = [("B01", 3.25), ("B02", 1.5)]
    assert format_results(results).splitlines() == ["  1  B01  3.2500", "  2  B02  1.5000"]
    assert json.loads(format_results(results, as_json=True)) == [
        {"rank": 1, "asin": "B01", "score": 3.25},
        {"rank": 2, "asin": "B02", "score": 1.5},
    ]
    assert format_results([]) == "no results"


def test_empty_catalogue() -> None:
    engine = SearchEngine([])
    assert len(engine) == 0 and engine.search("wig") == [] and engine.scores("wig") == {}


def test_benchmark_search_section_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "bench_webshop", Path(__file__).parents[1] / "tools" / "bench_webshop.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_webshop", bench)  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    assert bench.main(["--only", "search", "--big", "1000", "--repeat", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| query p50, wall")]
    assert len(rows) == 4 and all(float(r.split("|")[2]) > 0 for r in rows)


def test_results_pages() -> None:
    top = [f"B{i:02d}" for i in range(43)]  # "silver wig" has 43 hits
    assert results_page(top, 1) == top[:10] and results_page(top, 5) == top[40:]
    assert results_page(top, 6) == []  # WebShop shows "Next >" anyway; page 6 is empty
    with pytest.raises(ValueError, match="page"):
        results_page(top, 0)


def test_cli_search_json_and_text() -> None:
    import json as _json
    import subprocess
    import sys

    from tests.conftest import REPO

    cmd = [sys.executable, "-m", "langgraph_stl", "webshop", "search", "Silver Wig", "--top", "5"]
    hits = _json.loads(subprocess.run([*cmd, "--json"], check=True, capture_output=True, text=True, cwd=REPO).stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert hits == sorted(hits, key=lambda h: -h["score"])
    text = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    assert hits[0]["asin"] in text.splitlines()[0]
