"""`stl data`: info over a data directory, fetch from a loopback mirror (real HTTP), offline errors, prepare wiring."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_stl.cli import app
from langgraph_stl.data import DATA_FILES, FetchError, OfflineError, fetch, info
from langgraph_stl.envs.game24 import Game24Env
from tests.conftest import REPO


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path, data_dir: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder laid out like the data directory: real 24.csv and attributes file,
    a small fixture catalogue and human-instruction file (their upstream originals are not available offline)."""
    root = tmp_path / "mirror"
    (root / "game24").mkdir(parents=True)
    (root / "webshop").mkdir()
    shutil.copy(data_dir / "game24" / "24.csv", root / "game24" / "24.csv")
    shutil.copy(data_dir / "webshop" / "items_ins_v2_1000.json", root / "webshop" / "items_ins_v2_1000.json")
    products = [{"asin": f"B{i:09d}", "name": f"product {i}"} for i in range(1000)]
    (root / "webshop" / "items_shuffle_1000.json").write_text(json.dumps(products))
    (root / "webshop" / "items_human_ins.json").write_text(json.dumps({"B000000001": [{"instruction": "x"}] * 3}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------- info


def test_info_on_shared_data(data_dir: Path) -> None:
    statuses = {s.file.relpath: s for s in info(data_dir)}
    assert set(statuses) == {f.relpath for f in DATA_FILES}
    csv_status = statuses["game24/24.csv"]
    assert csv_status.present and csv_status.verified and csv_status.size == 48_235
    assert statuses["webshop/items_ins_v2_1000.json"].verified
    raw = statuses["webshop/items_shuffle_1000.json"]
    assert not raw.present and raw.covered_by == "webshop/documents_1k.jsonl.gz"
    results = statuses["stl_reference/webshop/saved_results"]
    assert results.present and results.n_files >= 10


def test_info_flags_modified_and_missing(tmp_path: Path) -> None:
    (tmp_path / "game24").mkdir()
    (tmp_path / "game24" / "24.csv").write_text("Rank,Puzzles\n1,1 1 4 6\n")
    statuses = {s.file.relpath: s for s in info(tmp_path)}
    assert statuses["game24/24.csv"].verified is False
    assert statuses["game24/24.csv"].state == "present, differs from upstream"
    docs = statuses["webshop/documents_1k.jsonl.gz"]
    assert docs.state == "missing" and "items_shuffle_1000.json" in docs.how_to_get
    assert statuses["webshop/items_ins_v2_1000.json"].how_to_get == "stl data fetch --only webshop"


def test_info_cli(tmp_path: Path, data_dir: Path) -> None:
    run = CliRunner().invoke(app, ["data", "info", "--json", "--data-dir", str(data_dir)])
    assert run.exit_code == 0, run.output
    payload = json.loads(run.output)
    assert payload["data_dir"] == str(data_dir.resolve())
    assert {f["relpath"]: f["verified"] for f in payload["files"]}["game24/24.csv"] is True
    table = CliRunner().invoke(app, ["data", "info", "--data-dir", str(tmp_path)])
    assert table.exit_code == 0
    assert "stl data fetch --only game24" in table.output and "missing" in table.output


# ------------------------------------------------------------------------------------------- fetch


def test_fetch_game24_verifies_and_is_idempotent(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = mirror
    target = tmp_path / "data"
    (result,) = fetch("game24", data_dir=target, mirror=url)
    assert (result.action, result.summary, result.size) == ("downloaded", "1362 puzzles", 48_235)
    assert _files(target) == ["game24/24.csv"]
    assert Game24Env(target).source == "24.csv"
    (again,) = fetch("game24", data_dir=target, mirror=url)
    assert again.action == "already present"
    (forced,) = fetch("game24", data_dir=target, mirror=url, force=True)
    assert forced.action == "downloaded"


def test_fetch_rejects_checksum_mismatch_and_writes_nothing(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, root = mirror
    target = tmp_path / "data"
    with pytest.raises(FetchError, match=r"items_shuffle_1000\.json: expected 4,467,013 bytes, got"):
        fetch("webshop", data_dir=target, mirror=url)
    csv_path = root / "game24" / "24.csv"
    csv_path.write_bytes(csv_path.read_bytes().replace(b"99.20%", b"99.30%"))  # same size, other bytes
    with pytest.raises(FetchError, match=r"24\.csv: sha256 [0-9a-f]{64} differs from the pinned upstream"):
        fetch("game24", data_dir=target, mirror=url)
    assert _files(target) == []


def test_fetch_structural_checks_without_checksums(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, root = mirror
    target = tmp_path / "data"
    results = {r.relpath: r for r in fetch("webshop", data_dir=target, mirror=url, verify_checksums=False)}
    assert results["webshop/items_shuffle_1000.json"].summary == "1000 products"
    assert results["webshop/items_ins_v2_1000.json"].summary == "1000 products, 415 with an instruction"
    assert results["webshop/items_human_ins.json"].summary == "3 instructions for 1 products"
    assert _files(target) == [
        "webshop/items_human_ins.json",
        "webshop/items_ins_v2_1000.json",
        "webshop/items_shuffle_1000.json",
    ]
    assert (target / "webshop" / "items_ins_v2_1000.json").read_bytes() == (
        root / "webshop" / "items_ins_v2_1000.json"
    ).read_bytes()


def test_fetch_rejects_wrong_content(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, root = mirror
    (root / "webshop" / "items_shuffle_1000.json").write_text("<!DOCTYPE html><html>Quota exceeded</html>")
    with pytest.raises(FetchError, match="HTML page instead of JSON"):
        fetch("webshop", data_dir=tmp_path / "a", mirror=url, verify_checksums=False)
    (root / "game24" / "24.csv").write_text("Rank,Puzzles\n1,1 1 4 6\n")
    with pytest.raises(FetchError, match="expected 48,235 bytes"):
        fetch("game24", data_dir=tmp_path / "b", mirror=url)
    with pytest.raises(FetchError, match="expected 1362 distinct puzzles, got 1 rows"):
        fetch("game24", data_dir=tmp_path / "c", mirror=url, verify_checksums=False)
    (root / "game24" / "24.csv").unlink()
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch("game24", data_dir=tmp_path / "d", mirror=url)
    assert not (tmp_path / "b").exists() or _files(tmp_path / "b") == []
    assert all(_files(tmp_path / d) == [] for d in "abcd" if (tmp_path / d).exists())


def test_fetch_offline(closed_port: int, tmp_path: Path) -> None:
    with pytest.raises(
        OfflineError, match=rf"offline: could not reach 127\.0\.0\.1:{closed_port}.*STL_DATA_DIR.*24\.csv"
    ):
        fetch("game24", data_dir=tmp_path / "data", mirror=f"http://127.0.0.1:{closed_port}")
    assert list(tmp_path.iterdir()) == [], "a failed fetch leaves neither files nor the folders it created"


def test_fetch_unknown_group(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown data group stl_reference; choose from game24, webshop"):
        fetch("stl_reference", data_dir=tmp_path)


def _stl_data(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STL_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "langgraph_stl", "data", *args], capture_output=True, text=True, cwd=REPO, env=env
    )


def test_fetch_cli(mirror: tuple[str, Path], closed_port: int, tmp_path: Path) -> None:
    url, _ = mirror
    ok = _stl_data("fetch", "--only", "game24", "--mirror", url, data=tmp_path / "ok")
    assert ok.returncode == 0, ok.stderr
    assert "game24/24.csv: downloaded (47.1 KB, 1362 puzzles)" in ok.stdout
    offline = _stl_data("fetch", "--only", "game24", "--mirror", f"http://127.0.0.1:{closed_port}", data=tmp_path / "x")
    assert offline.returncode == 1
    assert "offline: could not reach" in offline.stderr and "Traceback" not in offline.stderr
    assert _stl_data("fetch", "--only", "nope", data=tmp_path / "x").returncode == 2


# ------------------------------------------------------------------------------------------- prepare


@pytest.mark.slow
def test_prepare_writes_the_title_noun_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path) -> None:
    monkeypatch.setenv("STL_CACHE_DIR", str(tmp_path))
    run = CliRunner().invoke(app, ["data", "prepare", "webshop", "--data-dir", str(data_dir)])
    assert run.exit_code == 0, run.output
    assert "webshop prepared" in run.output
    assert any(tmp_path.rglob("*")), "prepare wrote nothing into the cache"


def test_prepare_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STL_CACHE_DIR", str(tmp_path / "cache"))
    run = CliRunner().invoke(app, ["data", "prepare", "webshop", "--data-dir", str(tmp_path / "empty")])
    assert run.exit_code == 1 and "error:" in run.output
    assert CliRunner().invoke(app, ["data", "prepare", "hotpot"]).exit_code == 2
