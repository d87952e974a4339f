"""Dataset store, reference import/export, statistics, and the `stl dataset` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langgraph_stl.training.dataset import (
    DatasetError,
    Example,
    ExampleWriter,
    compute_stats,
    load_examples,
    read_jsonl,
    read_sharegpt,
    sharegpt_dumps,
    to_trl_row,
    write_sharegpt,
)

REPO = Path(__file__).resolve().parents[1]


def _reference_files(data_dir: Path) -> list[Path]:
    files = sorted((data_dir / "stl_reference" / "webshop" / "improvement_data").glob("*.json"))
    assert len(files) == 10
    return files


def test_reference_files_round_trip_byte_identical(data_dir: Path, tmp_path: Path) -> None:
    for ref in _reference_files(data_dir):
        examples = read_sharegpt(ref, env="webshop")
        # through the project's JSONL store and back
        store = tmp_path / f"{ref.stem}.jsonl"
        with ExampleWriter(store, fsync=False) as w:
            for e in examples:
                w.write(e)
        again = read_jsonl(store, strict=True).examples
        assert again == examples
        out = tmp_path / ref.name
        write_sharegpt(again, out)
        assert out.read_bytes() == ref.read_bytes(), ref.name


def test_reference_import_reads_depth_kind_and_value(data_dir: Path) -> None:
    ref = data_dir / "stl_reference/webshop/improvement_data/gpt-35-turbo_depth3.json"
    examples = read_sharegpt(ref)
    stats = compute_stats(examples)
    assert stats.total == 601
    assert stats.per_depth == {3: 601}
    assert stats.terminal_per_depth == {3: 268}  # spec §5
    assert stats.no_value == 0
    assert sum(stats.value_histogram.values()) == 601
    assert all(0.0 <= (e.value or 0) <= 1.0 for e in examples)
    first = examples[0]
    assert first.completion.endswith(f"{first.value * 10:.2f} / 10.00.")


def test_malformed_lines_are_reported_with_file_and_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "d.jsonl"
    good = Example(prompt="p", completion="Thus the correctness score is 5.00 / 10.00.", depth=1, value=0.5)
    with ExampleWriter(path, fsync=False) as w:
        w.write(good)
    with path.open("a") as fh:
        fh.write('{"prompt": "x", "completion": "y"}\n')  # missing depth
        fh.write("not json\n")
    with path.open("ab") as raw:
        raw.write(b'{"prompt": "caf\xe9"}\n')  # one non-UTF-8 byte
        raw.write(b'{"prompt": "cut off by a kill')  # partial last line, no newline
    with ExampleWriter(path, fsync=False) as w:  # a new writer cuts only the torn part, then appends
        assert w.repaired_bytes == len('{"prompt": "cut off by a kill')
        w.write(good)
    res = read_jsonl(path)
    assert res.examples == [good, good]
    assert [e.split(": ", 1)[0] for e in res.errors] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert "not UTF-8 text (byte 0xe9" in res.errors[2]
    assert "missing field(s) ['depth']" in res.errors[0]
    assert f"{path}:3" in caplog.text
    with pytest.raises(DatasetError, match=f"{path}:2"):
        read_jsonl(path, strict=True)


def test_bad_byte_in_strict_mode_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    good = Example(prompt="p", completion="c", depth=1).to_json().encode()
    path.write_bytes(good + b"\n" + good[:5] + b"\xff" + good[5:] + b"\n")
    with pytest.raises(DatasetError, match=rf"{path}:2: not UTF-8 text \(byte 0xff at column 6\)"):
        load_examples(path, strict=True)
    assert len(load_examples(path).examples) == 1


@pytest.mark.parametrize(
    "content",
    [
        b'{"important": 1}',
        b'{"important": 1}\n',
        b'[[{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]]',
        b'{"prompt": "p", "completion": "c", "depth": 1}\nsomething else',
        b"\xff\xfe",
    ],
)
def test_writer_never_touches_a_file_it_does_not_recognise(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="not a JSONL dataset of this project; nothing was changed"):
        ExampleWriter(path)
    assert path.read_bytes() == content
    ExampleWriter(tmp_path / "ok.jsonl").close()  # the refused writer released its lock


def test_load_examples_detects_format_and_missing_file(data_dir: Path, tmp_path: Path) -> None:
    ref = _reference_files(data_dir)[4]
    assert len(load_examples(ref).examples) == 17
    with pytest.raises(DatasetError, match="no such dataset file"):
        load_examples(tmp_path / "nope.jsonl")
    bad = tmp_path / "depth2.json"
    bad.write_text('[[{"from": "gpt", "value": "a"}, {"from": "human", "value": "b"}]]')
    with pytest.raises(DatasetError, match="record 0"):
        load_examples(bad)


def test_trl_rows_and_sharegpt_text() -> None:
    e = Example(prompt="P", completion="C", depth=2)
    assert to_trl_row(e) == {
        "prompt": [{"role": "user", "content": "P"}],
        "completion": [{"role": "assistant", "content": "C"}],
    }
    assert to_trl_row(e, "messages")["messages"][1] == {"role": "assistant", "content": "C"}
    assert sharegpt_dumps([e]) == '[[{"from": "human", "value": "P"}, {"from": "gpt", "value": "C"}]]'


def test_dataset_cli_stats_import_export(data_dir: Path, tmp_path: Path) -> None:
    ref = data_dir / "stl_reference/webshop/improvement_data/gpt-4o_depth5.json"
    run = [sys.executable, "-m", "langgraph_stl", "dataset"]
    out = subprocess.run([*run, "stats", str(ref), "--json"], cwd=REPO, capture_output=True, text=True, check=True)
    stats = json.loads(out.stdout)
    assert stats["total"] == 23 and stats["terminal_per_depth"] == {"5": 18}
    store = tmp_path / "d.jsonl"
    subprocess.run([*run, "import", str(ref), "--out", str(store), "--policy-model", "gpt-4o"], cwd=REPO, check=True)
    assert {e.policy_model for e in read_jsonl(store, strict=True).examples} == {"gpt-4o"}
    back = tmp_path / "back_depth5.json"
    subprocess.run([*run, "export", str(store), "--out", str(back)], cwd=REPO, check=True, capture_output=True)
    assert back.read_bytes() == ref.read_bytes()
    bad = subprocess.run([*run, "stats", str(tmp_path / "missing.jsonl")], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "no such dataset file" in bad.stdout and "Traceback" not in bad.stderr
