"""The `stl eval` runner: bounded concurrency, a line per task as it ends, resume without duplicates, failures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from langgraph_stl.evaluation.prices import PriceTable
from langgraph_stl.evaluation.results import ModelUsage, Rollout, TaskRecord, load_results
from langgraph_stl.evaluation.run import ResumeError, run_eval, select_tasks
from tests.conftest import REPO

IDS = [str(i) for i in range(8)]
CONFIG = {"env": "fake", "policy": "p", "value": "v"}


def _record(task_id: str) -> TaskRecord:
    reward = (int(task_id) % 4) / 3
    return TaskRecord.from_rollouts(
        task_id,
        [Rollout(reward, value=0.5, values=(0.5,), trajectory=("a",))],
        states_expanded=2,
        usage={"gpt-4o": ModelUsage(1000, 100, calls=1, local=False), "smollm2": ModelUsage(50, 5, calls=2)},
    )


def _task_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if '"record":"task"' in line]


async def test_concurrency_bound_prices_and_lines(tmp_path: Path) -> None:
    in_flight, peak = 0, 0

    async def run_task(task_id: str) -> TaskRecord:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return _record(task_id)

    out = tmp_path / "run.jsonl"
    outcome = await run_eval(IDS, run_task, out, config=CONFIG, concurrency=3, progress=False)
    assert peak == 3 and (outcome.ran, outcome.skipped, outcome.failed) == (8, 0, 0)
    results = load_results(out)
    assert results.header is not None and results.header.task_ids == tuple(IDS)
    rec = results.tasks["1"]
    assert rec.cost == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)
    assert rec.usage["smollm2"].local and rec.usage["smollm2"].cost == 0
    assert not rec.usage["gpt-4o"].local
    assert rec.wall_time_s is not None and rec.wall_time_s >= 0.01
    assert results.tasks["3"].success and not results.tasks["1"].success


async def test_each_line_is_written_when_its_task_ends(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    release = asyncio.Event()

    async def run_task(task_id: str) -> TaskRecord:
        if task_id == "0":
            await release.wait()
        return _record(task_id)

    runner = asyncio.create_task(run_eval(IDS[:3], run_task, out, config=CONFIG, concurrency=3, progress=False))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(_task_lines(out)) == 2:
            break
    assert sorted(str(r["task_id"]) for r in _task_lines(out)) == ["1", "2"]  # task 0 still running
    release.set()
    await runner
    assert len(_task_lines(out)) == 3


async def test_failures_are_recorded_and_retried(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    broken, slow = {"2", "5"}, {"6"}

    async def run_task(task_id: str) -> TaskRecord:
        if task_id in broken:
            raise ConnectionError("http://127.0.0.1:9/v1 refused the connection\nmore detail")
        if task_id in slow:
            await asyncio.sleep(5)
        return _record(task_id)

    outcome = await run_eval(IDS, run_task, out, config=CONFIG, task_timeout_s=0.2, progress=False)
    assert (outcome.ran, outcome.failed) == (8, 3)
    tasks = load_results(out).tasks
    assert tasks["2"].error == "ConnectionError: http://127.0.0.1:9/v1 refused the connection"
    assert tasks["6"].error is not None and "longer than 0.2 s" in tasks["6"].error
    assert tasks["2"].true_reward == 0 and tasks["1"].error is None

    again = await run_eval(IDS, run_task, out, config=CONFIG, progress=False)
    assert again.ran == 0 and again.skipped == 8  # failed tasks count as finished unless retried

    broken.clear()
    slow.clear()
    retried = await run_eval(IDS, run_task, out, config=CONFIG, retry_failed=True, progress=False)
    assert (retried.ran, retried.failed, retried.skipped) == (3, 0, 5)
    lines = _task_lines(out)
    assert len(lines) == 8 and len({str(r["task_id"]) for r in lines}) == 8
    assert all(r["error"] is None for r in lines)


async def test_resume_checks_configuration_and_repairs_partial_line(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"

    async def run_task(task_id: str) -> TaskRecord:
        return _record(task_id)

    await run_eval(IDS[:4], run_task, out, config=CONFIG, progress=False)
    with pytest.raises(ResumeError, match=r"differs in: value"):
        await run_eval(IDS[:4], run_task, out, config={**CONFIG, "value": "other"}, progress=False)
    renamed = await run_eval(IDS[:4], run_task, out, config={**CONFIG, "label": "new name"}, progress=False)
    assert renamed.skipped == 4  # a label names a run; it does not change what it computes

    text = out.read_text().splitlines(keepends=True)
    out.write_text("".join(text[:-1]) + text[-1][:25])  # killed mid-write: a partial last line
    outcome = await run_eval(IDS[:4], run_task, out, config=CONFIG, progress=False)
    assert outcome.repaired_bytes == 25 and (outcome.ran, outcome.skipped) == (1, 3)
    assert len(load_results(out).tasks) == 4

    # Selecting more tasks extends the file's task list (the report's universe) and runs only the new ones.
    more = await run_eval(IDS[2:6], run_task, out, config=CONFIG, progress=False)
    assert (more.ran, more.skipped, more.total) == (2, 2, 4)
    extended = load_results(out)
    assert extended.header is not None and extended.header.task_ids == tuple(IDS[:6])
    assert sorted(extended.tasks) == IDS[:6]

    other = tmp_path / "reference.jsonl"
    other.write_text('{"task_idx": 0, "true_reward": 1, "true_rewards_list": []}\n')
    with pytest.raises(ResumeError, match="not an `stl eval` output"):
        await run_eval(["0"], run_task, other, config=CONFIG, progress=False)


KILL_SCRIPT = """
import asyncio, sys
from langgraph_stl.evaluation.results import Rollout, TaskRecord
from langgraph_stl.evaluation.run import run_eval

async def run_task(task_id):
    await asyncio.sleep(0.05)
    return TaskRecord.from_rollouts(task_id, [Rollout(1.0, value=0.9)])

outcome = asyncio.run(run_eval([str(i) for i in range(40)], run_task, sys.argv[1], config={"k": 1}, concurrency=2,
                               progress=False))
print(outcome.skipped, outcome.ran)
"""


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(tmp_path: Path) -> None:
    script, out = tmp_path / "fake_eval.py", tmp_path / "run.jsonl"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or len(_task_lines(out)) < 6):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(_task_lines(out))
    assert 6 <= first < 40
    done = subprocess.run([sys.executable, str(script), str(out)], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    skipped, ran = map(int, done.stdout.split())
    assert skipped == first and skipped + ran == 40
    ids = [str(r["task_id"]) for r in _task_lines(out)]
    assert sorted(ids, key=int) == [str(i) for i in range(40)]


def test_select_tasks() -> None:
    ids = [f"t{i}" for i in range(10)]
    assert select_tasks(ids, "0-2,5") == ["t0", "t1", "t2", "t5"]
    assert select_tasks(ids, "3-4,4-5") == ["t3", "t4", "t5"]
    assert select_tasks(ids, None, 2) == ["t0", "t1"]
    assert select_tasks(ids, "5-9", 2) == ["t5", "t6"]
    for spec, message in (("0-10", "only 10 tasks"), ("a-b", "expected positions"), ("5-2", "empty")):
        with pytest.raises(ValueError, match=message):
            select_tasks(ids, spec)
    with pytest.raises(ValueError, match="positive"):
        select_tasks(ids, None, 0)


def test_price_table_overrides(tmp_path: Path) -> None:
    table = PriceTable()
    assert table.cost("openai:gpt-4o-2024-08-06", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert table.cost("gpt-35-turbo", 1_000_000, 0) == pytest.approx(0.5)
    assert table.cost("HuggingFaceTB/SmolLM2-135M-Instruct", 10**6, 10**6) == 0
    toml = tmp_path / "prices.toml"
    toml.write_text('["gpt-4o"]\ninput = 5\noutput = 20\n["my-api"]\ninput = 1\noutput = 1\n')
    custom = PriceTable.load(toml)
    assert custom.cost("gpt-4o", 10**6, 0) == 5 and custom.cost("my-api", 10**6, 10**6) == 2
    assert custom.cost("gpt-3.5-turbo", 10**6, 0) == 0.5
    bad = tmp_path / "prices.json"
    bad.write_text('{"gpt-4o": {"input": -1, "output": 2}}')
    with pytest.raises(ValueError, match="non-negative"):
        PriceTable.load(bad)
