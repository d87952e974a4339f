"""Write the oracle's input files into WORK_DIR (developer tool; see tools/lucene_oracle/README.md).

probes.txt (two lines per code point C: ``C`` and ``xa{C}bx 1{C}2 {C}q``), tricky.txt (hand-picked strings),
doc_ids.txt and doc_contents.txt (the catalogue, one document per line), queries.txt (every distinct human query,
instruction, human goal, title and scrape query of the data), words.txt (every lowercase ASCII word of those).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from langgraph_stl.envs.webshop.catalog import load_catalog
from langgraph_stl.envs.webshop.search_engine import catalog_documents
from langgraph_stl.paths import data_file

HERE = Path(__file__).resolve().parent
NEWLINES = re.compile(r"[\r\n]")  # the oracle reads lines; a newline is a plain separator to the tokenizer anyway


def main(work: str) -> None:
    out = Path(work)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "probes.txt", "w", encoding="utf-8") as fh:
        for cp in range(0x110000):
            if 0xD800 <= cp <= 0xDFFF or cp in (10, 13):
                continue
            c = chr(cp)
            fh.write(f"{c}\nxa{c}bx 1{c}2 {c}q\n")
    shutil.copy(HERE / "tricky.txt", out / "tricky.txt")
    docs = catalog_documents()
    (out / "doc_ids.txt").write_text("".join(f"{i}\n" for i, _ in docs), encoding="utf-8")
    (out / "doc_contents.txt").write_text("".join(NEWLINES.sub(" ", t) + "\n" for _, t in docs), encoding="utf-8")

    goal_map = json.loads(data_file("webshop/goal_query_map.json").read_text())
    items = json.loads(data_file("webshop/items_ins_v2_1000.json").read_text())
    queries = [q for goal, qs in goal_map.items() for q in (goal, *qs)]
    queries += [v["instruction"] for v in items.values() if "instruction" in v]
    queries += json.loads(data_file("webshop/human_goals.json").read_text())
    queries += [t for p in load_catalog() for t in (p["Title"].lower(), p["query"])]
    unique = list(dict.fromkeys(NEWLINES.sub(" ", q) for q in queries))
    (out / "queries.txt").write_text("".join(f"{q}\n" for q in unique), encoding="utf-8")
    words = sorted({w for text in [t for _, t in docs] + unique for w in re.findall(r"[a-z]+", text.lower())})
    (out / "words.txt").write_text("".join(f"{w}\n" for w in words), encoding="utf-8")
    print(f"wrote inputs to {out}: {len(docs)} documents, {len(unique)} queries, {len(words)} words")


if __name__ == "__main__":
    main(sys.argv[1])
