"""The shared driver with the local executor: attempts, timeouts, dedupe on resume, Ctrl-C, work specs, and the
one-line error when the Ray extra is missing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.execution import Execution, LocalExecutor, TaskResult, WorkSpec, build_runner, drive
from tests.conftest import REPO


class ListSink:
    def __init__(self, done: set[str] | None = None) -> None:
        self.done = set(done or ())
        self.results: list[TaskResult] = []

    def open(self) -> set[str]:
        return set(self.done)

    def write(self, result: TaskResult) -> None:
        self.results.append(result)

    def status(self) -> str:
        return ""

    def close(self) -> None:
        self.closed = True


async def test_attempts_timeouts_and_resume() -> None:
    calls: Counter[str] = Counter()

    async def run(task_id: str) -> str:
        calls[task_id] += 1
        if task_id == "flaky" and calls[task_id] < 3:
            raise ConnectionError("refused")
        if task_id == "broken":
            raise ValueError("bad\nsecond line")
        if task_id == "slow":
            await asyncio.sleep(10)
        return task_id.upper()

    sink = ListSink(done={"old"})
    ids = ["old", "ok", "flaky", "broken", "slow", "ok"]
    outcome = await drive(ids, LocalExecutor(run, concurrency=2), sink, task_timeout_s=0.3, progress=False)
    got = {r.task_id: r for r in sink.results}
    assert sorted(got) == ["broken", "flaky", "ok", "slow"] and len(sink.results) == 4  # "old" done, "ok" once
    assert got["ok"].value == "OK" and got["ok"].attempts == 1 and got["ok"].worker == "local"
    assert got["flaky"].ok and got["flaky"].attempts == 3
    assert got["broken"].error == "ValueError: bad" and got["broken"].attempts == 3
    assert got["slow"].timed_out and got["slow"].attempts == 1 and calls["slow"] == 1  # a timeout is not retried
    assert (outcome.skipped, outcome.ran, outcome.failed, outcome.timed_out, outcome.retries) == (1, 4, 2, 1, 4)


async def test_cancelling_the_driver_stops_tasks_and_closes_the_executor() -> None:
    closed, started = [], asyncio.Event()

    async def run(task_id: str) -> str:
        if task_id != "0":
            started.set()
            await asyncio.sleep(30)
        return task_id

    sink = ListSink()
    executor = LocalExecutor(run, concurrency=2, close=lambda: closed.append(True))
    job = asyncio.create_task(drive(["0", "1", "2"], executor, sink, progress=False))
    await started.wait()
    await asyncio.sleep(0.05)
    job.cancel()  # what Ctrl-C does under asyncio.run
    with pytest.raises(asyncio.CancelledError):
        await job
    assert [r.task_id for r in sink.results] == ["0"] and closed == [True]


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="--workers needs --executor ray"):
        Execution(workers=2)
    with pytest.raises(ValueError, match="--executor must be one of local, ray"):
        Execution(executor="dask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be JSON"):
        WorkSpec("search", "game24", options={"policy": object()})
    with pytest.raises(ValueError, match="unknown work kind"):
        build_runner(WorkSpec("nope", "game24"))


def test_missing_ray_extra_is_one_line(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"  # what an install without the extra looks like
        "from langgraph_stl.cli import main\n"
        f"sys.argv = ['stl', 'eval', '--env', 'game24', '--policy', 'enumerate', '--value', 'x', '--out', "
        f"'{tmp_path / 'o.jsonl'}', '--executor', 'ray', '--workers', '2']\n"
        "main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "error: the ray executor needs the 'ray' package, which is not installed: "
        "pip install 'langgraph-stl[distributed]'"
    )
    assert not (tmp_path / "o.jsonl").exists()


def tree_env() -> Any:
    from tests.fakes import TreeEnv

    return TreeEnv(branching=2, depth=3)


def value_chat() -> Any:
    from tests.fakes import ScriptedChatModel, path_value_responder

    return ScriptedChatModel(responder=path_value_responder({"/a": 8, "/a/b": 9}, default=4))


def test_stl_collect_writes_examples_then_done_markers_and_resumes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from langgraph_stl.cli import app
    from langgraph_stl.training.collect import read_done
    from langgraph_stl.training.dataset import read_jsonl

    out = tmp_path / "data.jsonl"
    args = [
        "collect", "--env", "py:tests.test_execution:tree_env", "--policy", "enumerate",
        "--value", "py:tests.test_execution:value_chat", "--tasks", "t0,t1", "--beam", "1", "--explore", "1",
        "--width", "2", "--depth", "3", "--value-samples", "1", "--concurrency", "2", "--out", str(out),
    ]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 tasks collected (0 failed), 0 already done" in first.output
    examples = read_jsonl(out, strict=True).examples
    assert read_done(out) == {"t0", "t1"} and {e.task for e in examples} == {"t0", "t1"}
    again = CliRunner().invoke(app, args)
    assert "0 tasks collected (0 failed), 2 already done" in again.output
    assert len(read_jsonl(out, strict=True).examples) == len(examples)
