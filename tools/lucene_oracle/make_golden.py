"""Write tests/fixtures/webshop_lucene_golden.json.gz from the Lucene oracle's output (developer tool).

The fixture lets the test suite check, without Java, that our analyzer and BM25 reproduce Anserini/Lucene:
Lucene's term count and term-list digest for every catalogue document, its tokens for a set of tricky strings, and
pyserini's top 50 (ids and float32 score bits) for a sample of real queries.

Usage (see tools/lucene_oracle/README.md):
  python tools/lucene_oracle/make_golden.py WORK_DIR
where WORK_DIR holds doc_ids.txt, doc_contents.txt/.tok, tricky.txt/.tok, queries.txt and queries.hits.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "webshop_lucene_golden.json.gz"
QUERY_STRIDE = 60  # every 60th query of the ~15k in queries.txt, plus the ones named in the spec
ALWAYS = ("silver wig", "2022 candle soy")


def digest(terms: list[str]) -> str:
    return hashlib.sha1("\x00".join(terms).encode("utf-8")).hexdigest()


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def main(work: str) -> None:
    root = Path(work)
    ids = lines(root / "doc_ids.txt")
    doc_tokens = [json.loads(x) for x in lines(root / "doc_contents.tok")]
    tricky = lines(root / "tricky.txt")
    tricky_tokens = [json.loads(x) for x in lines(root / "tricky.tok")]
    queries = lines(root / "queries.txt")
    hits = [json.loads(x) for x in lines(root / "queries.hits")]
    chosen = [i for i, q in enumerate(queries) if i % QUERY_STRIDE == 0 or q in ALWAYS]
    golden = {
        "source": "Anserini 0.21.0 (pyserini 0.21.0 fatjar, Lucene 9.4.2): DefaultEnglishAnalyzer, SimpleSearcher",
        "documents": {doc_id: [len(t), digest(t)] for doc_id, t in zip(ids, doc_tokens, strict=True)},
        "analyzer": [[text, toks] for text, toks in zip(tricky, tricky_tokens, strict=True)],
        "queries": [[queries[i], hits[i][:50], len(hits[i])] for i in chosen],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(OUT, "wt", encoding="utf-8") as fh:
        json.dump(golden, fh, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(chosen)} queries)")


if __name__ == "__main__":
    main(sys.argv[1])
