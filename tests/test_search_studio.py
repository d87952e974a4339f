"""``langgraph dev`` serves the Studio graphs of langgraph.json; a search runs through ``POST /runs/wait``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The repo's langgraph.json with absolute graph paths, served from a temp dir (``.langgraph_api`` lands there)."""
    workdir = tmp_path_factory.mktemp("studio")
    config = json.loads((REPO / "langgraph.json").read_text())
    config["dependencies"] = [str(REPO)]
    config["graphs"] = {name: str(REPO / spec.removeprefix("./")) for name, spec in config["graphs"].items()}
    (workdir / "langgraph.json").write_text(json.dumps(config))
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
    }
    cli = Path(sys.executable).parent / "langgraph"
    proc = subprocess.Popen(
        [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited: {proc.stdout.read().decode()[-3000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("langgraph dev did not come up in 90 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_studio_serves_both_graphs_and_runs_a_search(server: str) -> None:
    assistants = httpx.post(f"{server}/assistants/search", json={"limit": 10}, timeout=30).json()
    ids = {a["graph_id"]: a["assistant_id"] for a in assistants}
    assert {"game24_search", "webshop_search"} <= set(ids)
    schemas = httpx.get(f"{server}/assistants/{ids['game24_search']}/schemas", timeout=30).json()
    assert "width" in json.dumps(schemas), sorted(schemas)
    run = httpx.post(
        f"{server}/runs/wait",
        json={
            "assistant_id": "game24_search",
            "input": {"task_id": "900"},
            "context": {
                "policy": "enumerate",
                "value": "py:tests.fakes:game24_oracle_model",
                "algorithm": "bfs",
                "width": 40,
                "breadth": 2,
                "depth": 3,
                "n_value_samples": 1,
            },
        },
        timeout=120,
    )
    assert run.status_code == 200, run.text
    result = run.json()["result"]
    assert result["error"] is None
    assert result["algorithm"] == "bfs"
    assert len(result["trajectory"]) == 3 and result["value"] == 1.0
    assert result["trajectory"][-1].split(" (left")[0].endswith("= 24")


@pytest.mark.slow
def test_a_studio_threads_tree_opens_in_the_view(server: str, tmp_path: Path) -> None:
    from langgraph_stl.evaluation.trees import read_tree, tree_from_state, write_tree
    from langgraph_stl.view import load_view

    thread = httpx.post(f"{server}/threads", json={}, timeout=30).json()["thread_id"]
    context = {
        "policy": "enumerate",
        "value": "py:tests.fakes:game24_oracle_model",
        "width": 4,
        "root_width": 4,
        "depth": 2,
    }
    body = {"assistant_id": "game24_search", "input": {"task_id": "900"}, "context": {**context, "n_rollouts": 1}}
    run = httpx.post(f"{server}/threads/{thread}/runs/wait", json=body, timeout=120)
    assert run.status_code == 200, run.text
    summary = run.json()["result"]["tree_summary"]
    values = httpx.get(f"{server}/threads/{thread}/state", timeout=30).json()["values"]
    assert summary["nodes"] == len(values["nodes"]) == 1 + 4 + 4 and summary["outline"][0].startswith("*")
    path = write_tree(tree_from_state(values), tmp_path / "thread.json.gz")
    assert read_tree(path).chosen == run.json()["result"]["leaf"]
    assert load_view(path).runs[0]["tasks"][0]["trajectory"] == run.json()["result"]["trajectory"]
