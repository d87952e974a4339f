"""Compare our analyzer and search engine with the Lucene oracle's output (developer tool; see README.md).

    python tools/lucene_oracle/verify.py WORK_DIR

expects, for NAME in probes, tricky, doc_contents, queries, words: NAME.txt and the oracle's NAME.tok
(``Oracle tokens NAME.txt NAME.tok``), and queries.hits (``Oracle search queries.txt queries.hits idx 1000``).
Prints the number of differences per file and exits non-zero if there is any.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

from langgraph_stl.envs.webshop.analyzer import analyze
from langgraph_stl.envs.webshop.search_engine import SearchEngine


def float_of_bits(bits: int) -> float:
    value: float = struct.unpack("<f", struct.pack("<i", bits))[0]
    return value


def main(work: str) -> int:
    root = Path(work)
    failures = 0
    for name in ("probes", "tricky", "doc_contents", "queries", "words"):
        texts = (root / f"{name}.txt").read_text(encoding="utf-8").split("\n")[:-1]
        expected = (root / f"{name}.tok").read_text(encoding="utf-8").split("\n")[:-1]
        bad = [t for t, e in zip(texts, expected, strict=True) if analyze(t) != json.loads(e)]
        failures += len(bad)
        print(f"terms, {name}: {len(bad)} of {len(texts)} lines differ" + (f", first: {bad[0][:80]!r}" if bad else ""))
    ids = (root / "doc_ids.txt").read_text(encoding="utf-8").split("\n")[:-1]
    contents = (root / "doc_contents.txt").read_text(encoding="utf-8").split("\n")[:-1]
    engine = SearchEngine(zip(ids, contents, strict=True))
    queries = (root / "queries.txt").read_text(encoding="utf-8").split("\n")[:-1]
    hits = (root / "queries.hits").read_text(encoding="utf-8").split("\n")[:-1]
    bad = []
    for query, line in zip(queries, hits, strict=True):
        expected_hits = [(doc, float_of_bits(bits)) for doc, bits in json.loads(line)]
        if engine.search(query, k=max(len(expected_hits), 1)) != expected_hits:
            bad.append(query)
    failures += len(bad)
    print(f"rankings: {len(bad)} of {len(queries)} queries differ" + (f", first: {bad[0][:80]!r}" if bad else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
