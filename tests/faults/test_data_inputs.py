"""Corrupt inputs for every data reader (issue 12): a torn last line, a non-UTF-8 byte, a duplicate id and a
foreign file each give an error naming the file (and the line where there is one), or in lenient mode a skipped
line reported as ``file:line``; never a bare UnicodeDecodeError, KeyError or a silently wrong result."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.evaluation.prices import PriceTable
from langgraph_stl.evaluation.results import RunHeader, TaskRecord, dump_line, load_results
from langgraph_stl.evaluation.value_quality import load_samples
from langgraph_stl.training.collect import read_done
from langgraph_stl.training.dataset import DatasetError, Example, load_examples, read_sharegpt
from langgraph_stl.training.improve import ImproveConfig, Manifest

STL = dump_line(RunHeader({"env": "x"}, ("0", "1"))) + dump_line(TaskRecord("0")) + dump_line(TaskRecord("1"))
REFERENCE = "".join(
    json.dumps({"task_idx": i, "true_reward": 1.0, "true_rewards_list": [[0.5, 1.0]], "usage_so_far": {}}) + "\n"
    for i in range(2)
)
SEARCH = "".join(
    json.dumps({"task_id": f"t{i}", "algorithm": "greedy", "rollouts": [{"true_reward": 1.0}]}) + "\n" for i in range(2)
)
DATASET = "".join(Example(f"p{i}", "c", depth=1).to_json() + "\n" for i in range(2))
SHAREGPT = json.dumps([[{"from": "human", "value": "p"}, {"from": "gpt", "value": "c"}]] * 2)
PRICES = json.dumps({"m1": {"input": 1, "output": 2}, "m2": {"input": 1, "output": 2}})
CSV = "Rank,Puzzles\n1,1 1 4 6\n2,1 1 11 11\n"
SAMPLES = "".join(
    json.dumps({"task": str(i), "actions": [], "numbers": [1, 1, 4, 6], "solvable": True}) + "\n" for i in range(2)
)
FOREIGN = '{"important": 1}\n'


def _torn(text: str) -> str:
    return text[: len(text.rstrip("\n")) - 7]


def _bad_byte(text: str) -> bytes:
    raw = text.encode()
    cut = len(raw.rstrip(b"\n")) - 3  # inside the last record
    return raw[:cut] + b"\xff" + raw[cut + 1 :]


def _duplicate(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return text + lines[-1]


def _game24(path: Path) -> Any:
    from langgraph_stl.envs.game24 import load_csv_puzzles

    return load_csv_puzzles(path)


IMPROVE = ImproveConfig(env="game24", out="run", train_tasks=["0"])
MANIFEST = json.dumps({"version": 1, "created": 0, "config": IMPROVE.identity(), "steps": {}, "models": {}}, indent=2)


def _manifest(path: Path) -> Any:
    return Manifest(path.parent, IMPROVE)


def _strict_dataset(path: Path) -> Any:
    return load_examples(path, strict=True)


READERS: dict[str, tuple[str, str, Callable[[Path], Any]]] = {
    # name: (file name, good content, reader)
    "stl results": ("r.jsonl", STL, load_results),
    "reference results": ("r_0-2.jsonl", REFERENCE, load_results),
    "improve evaluation": ("eval.jsonl", SEARCH, load_results),
    "dataset (strict)": ("d.jsonl", DATASET, _strict_dataset),
    "reference dataset": ("depth1.json", SHAREGPT, read_sharegpt),
    "price table": ("p.json", PRICES, PriceTable.load),
    "game24 csv": ("24.csv", CSV, _game24),
    "value-quality samples": ("s.jsonl", SAMPLES, load_samples),
    "run manifest": ("manifest.json", MANIFEST, _manifest),
}
LINES = {name: name not in ("reference dataset", "price table", "run manifest") for name in READERS}
"""Line-oriented formats; the two others are one JSON document each (their parser's position is reported)."""
CORRUPTIONS: dict[str, Callable[[str], str | bytes]] = {
    "torn tail": _torn,
    "bad byte": _bad_byte,
    "duplicate id": _duplicate,
    "foreign file": lambda _: FOREIGN,
}
# What a reader may legitimately accept: repeated examples are valid training data, and a repeated puzzle or value
# sample is still a well-defined row (ids are row positions there).
ACCEPTS = {
    ("dataset (strict)", "duplicate id"),
    ("game24 csv", "duplicate id"),
    ("value-quality samples", "duplicate id"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_names_the_file_and_line(tmp_path: Path, reader: str, corruption: str) -> None:
    name, good, read = READERS[reader]
    path = tmp_path / name
    path.write_text(good, encoding="utf-8")
    read(path)  # the good content reads
    bad = CORRUPTIONS[corruption](good)
    path.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    if (reader, corruption) in ACCEPTS:
        read(path)
        return
    with pytest.raises(ValueError) as info:
        read(path)
    message = str(info.value)
    assert not isinstance(info.value, UnicodeDecodeError), message
    assert str(path) in message, message
    if LINES[reader] and corruption != "foreign file":  # a line-oriented file: the bad line is named
        assert re.search(rf"{re.escape(str(path))}:\d+", message), message


def test_lenient_dataset_skips_and_reports_each_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(DATASET.encode() + _bad_byte(DATASET).splitlines()[-1] + b"\n" + _torn(DATASET).encode())
    res = load_examples(path)
    assert len(res.examples) == 3
    assert [e.split(": ")[0] for e in res.errors] == [f"{path}:3", f"{path}:5"]


def test_done_list_reader(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    done = tmp_path / "d.jsonl.done"
    done.write_bytes(b"t1\nt2\nt")  # torn: not a finished task
    assert read_done(data) == {"t1", "t2"}
    done.write_bytes(b"t1\nt1\n")  # a duplicate is the same finished task
    assert read_done(data) == {"t1"}
    done.write_bytes(b"t1\n\xff\n")
    with pytest.raises(DatasetError, match=rf"{re.escape(str(done))}:2: not UTF-8"):
        read_done(data)
