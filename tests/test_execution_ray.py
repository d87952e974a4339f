"""The Ray executor on one local loopback cluster: lost workers, failing and timed-out tasks, a SIGKILLed driver,
and results equal to the local executor's (eval and collection)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.evaluation.results import Rollout, TaskRecord, load_results
from langgraph_stl.evaluation.run import run_eval
from langgraph_stl.execution import Execution, TaskRunner, WorkSpec, make_executor
from langgraph_stl.search.context import SearchContext
from langgraph_stl.training.collect import CollectConfig, collect_tasks, read_done
from tests.conftest import REPO
from tests.fakes import ScriptedChatModel, TreeEnv, path_value_responder

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

VALUES = {"/a": 8, "/b": 6, "/c": 2, "/a/a": 3, "/a/b": 9, "/b/a": 7, "/a/b/stop!": 9, "/a/stop!": 4}


def tree_env() -> TreeEnv:
    return TreeEnv(branching=3, depth=3, forbid_true_reward=False)


def value_chat() -> ScriptedChatModel:
    return ScriptedChatModel(responder=path_value_responder(VALUES, default=5))


def stl_value_chat() -> ScriptedChatModel:
    return ScriptedChatModel(responder=path_value_responder(VALUES, default=5, stl=True))


def faulty_work(spec: WorkSpec) -> TaskRunner:
    """Tasks named by what they do: ``die-*`` kills its worker process on the first attempt, ``fail-*`` always
    raises, ``slow-*`` sleeps past any timeout (and notes its cancellation), anything else sleeps ``delay_s``."""
    marks = Path(spec.options["marks"])
    delay = float(spec.options.get("delay_s", 0.05))
    if (marks / "nobuild").exists():
        raise RuntimeError("this worker can no longer build its runner")

    async def run(task_id: str) -> TaskRecord:
        if task_id == "die-for-good":
            (marks / "nobuild").touch()
            os._exit(1)
        if task_id.startswith("die-") and not (marks / task_id).exists():
            (marks / task_id).touch()
            os._exit(1)
        if task_id.startswith("fail-"):
            raise RuntimeError("this task always fails")
        if task_id.startswith("slow-"):
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                (marks / f"cancelled-{task_id}").touch()
                raise
        await asyncio.sleep(delay)
        return TaskRecord.from_rollouts(task_id, [Rollout(1.0, value=0.5, trajectory=(f"pid {os.getpid()}",))])

    return TaskRunner(run)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    from langgraph_stl.execution.ray_executor import init_local_cluster

    init_local_cluster(num_cpus=2, num_gpus=0)
    yield
    ray.shutdown()


def _ray(workers: int = 2, concurrency: int = 2, **kw: Any) -> Execution:
    return Execution(executor="ray", workers=workers, concurrency=concurrency, progress=False, **kw)


def _faulty(marks: Path, **options: Any) -> WorkSpec:
    return WorkSpec("py:tests.test_execution_ray:faulty_work", "none", options={"marks": str(marks), **options})


def _tasks(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines() if '"record":"task"' in line]


async def test_a_killed_worker_costs_an_attempt_and_every_task_is_written_once(cluster: None, tmp_path: Path) -> None:
    ids = ["die-0", *(f"t{i}" for i in range(6))]
    out = tmp_path / "run.jsonl"
    executor = make_executor(_faulty(tmp_path), _ray(concurrency=1))  # a death takes no other task with it
    outcome = await run_eval(ids, executor, out, config={"k": 1}, max_attempts=3, progress=False)
    assert (outcome.ran, outcome.failed) == (7, 0) and outcome.retries >= 1
    lines = _tasks(out)
    assert sorted(r["task_id"] for r in lines) == sorted(ids)  # each task id exactly once
    attempts = {r["task_id"]: r["attempts"] for r in lines}
    # the killed task took two attempts; a task sent to the dying worker before its death was known may too
    assert attempts["die-0"] == 2 and set(attempts.values()) <= {1, 2}
    assert sum(attempts.values()) == len(ids) + outcome.retries
    assert load_results(out).header.config["execution"] == {"executor": "ray", "workers": 2, "concurrency": 1}  # type: ignore[union-attr]


async def test_failing_and_timed_out_tasks_are_recorded_and_the_worker_keeps_serving(
    cluster: None, tmp_path: Path
) -> None:
    ids = ["slow-0", "fail-0", "t0", "t1", "t2"]
    out = tmp_path / "run.jsonl"
    executor = make_executor(_faulty(tmp_path), _ray(workers=1, concurrency=1))
    outcome = await run_eval(ids, executor, out, config={"k": 1}, max_attempts=3, task_timeout_s=3, progress=False)
    assert (outcome.ran, outcome.failed) == (5, 2)
    tasks = {r["task_id"]: r for r in _tasks(out)}
    assert tasks["fail-0"]["error"] == "RuntimeError: this task always fails" and tasks["fail-0"]["attempts"] == 3
    assert "longer than 3" in tasks["slow-0"]["error"] and tasks["slow-0"]["attempts"] == 1  # not retried
    for _ in range(50):  # the cancellation reaches the actor's coroutine
        if (tmp_path / "cancelled-slow-0").exists():
            break
        await asyncio.sleep(0.1)
    assert (tmp_path / "cancelled-slow-0").exists()
    pids = {tasks[t]["rollouts"][0]["trajectory"][0] for t in ("t0", "t1", "t2")}
    assert len(pids) == 1  # one worker, never restarted, served every task after the timeout


async def test_a_worker_that_cannot_come_back_ends_the_run_instead_of_hanging(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph_stl.execution import ray_executor

    monkeypatch.setattr(ray_executor, "_REVIVE_S", 2.0)
    out = tmp_path / "run.jsonl"
    executor = make_executor(_faulty(tmp_path), _ray(workers=1, concurrency=1))
    outcome = await run_eval(["die-for-good", "t0"], executor, out, config={"k": 1}, max_attempts=2, progress=False)
    assert (outcome.ran, outcome.failed) == (2, 2)
    records = _tasks(out)
    assert [r["attempts"] for r in records] == [2, 2]
    assert all("every Ray worker was lost and none came back" in r["error"] for r in records)


def _search_work() -> WorkSpec:
    context = asdict(SearchContext(width=3, depth=3, n_rollouts=2, n_value_samples=2, temperature=0.0))
    options = {
        "policy": "enumerate",
        "value": "py:tests.test_execution_ray:value_chat",
        "algorithm": "greedy",
        "context": context,
    }
    return WorkSpec("search", "py:tests.test_execution_ray:tree_env", options=options)


def _collect_work() -> WorkSpec:
    config = CollectConfig(beam=1, explore=1, search=SearchContext(width=3, depth=3, n_value_samples=2), iteration=1)
    options = {"policy": "enumerate", "value": "stl:py:tests.test_execution_ray:stl_value_chat"}
    return WorkSpec("collect", "py:tests.test_execution_ray:tree_env", options={**options, "collect": config.to_json()})


def _comparable(out: Path) -> dict[str, dict[str, Any]]:
    return {r["task_id"]: {k: v for k, v in r.items() if k != "wall_time_s"} for r in _tasks(out)}


async def test_ray_results_equal_local_results(cluster: None, tmp_path: Path) -> None:
    ids = [f"t{i}" for i in range(4)]
    for name, execution in (("local", Execution(concurrency=2, progress=False)), ("ray", _ray())):
        out = tmp_path / f"{name}.jsonl"
        await run_eval(ids, make_executor(_search_work(), execution), out, config={"k": 1}, progress=False)
        data = tmp_path / f"{name}.data.jsonl"
        await collect_tasks(ids, make_executor(_collect_work(), execution), data, execution=execution)
    local, remote = _comparable(tmp_path / "local.jsonl"), _comparable(tmp_path / "ray.jsonl")
    assert local == remote and len(local) == 4 and all(r["error"] is None for r in local.values())
    assert all(r["value_calls"] > 0 and len(r["rollouts"]) == 2 for r in local.values())
    rows = {name: sorted((tmp_path / f"{name}.data.jsonl").read_text().splitlines()) for name in ("local", "ray")}
    assert rows["local"] == rows["ray"] and len(rows["local"]) > 4
    assert read_done(tmp_path / "ray.data.jsonl") == set(ids)


DRIVER = """
import asyncio, sys
from langgraph_stl.evaluation.run import run_eval
from langgraph_stl.execution import Execution, WorkSpec, make_executor

work = WorkSpec("py:tests.test_execution_ray:faulty_work", "none", options={"marks": sys.argv[2], "delay_s": 0.3})
executor = make_executor(work, Execution(executor="ray", workers=2, concurrency=2, ray_address="local"))
asyncio.run(run_eval([f"t{i}" for i in range(40)], executor, sys.argv[1], config={"k": 1}, progress=False))
"""


def _session_processes(session: Path) -> set[int]:
    from langgraph_stl.execution.reaper import cluster_pids

    return cluster_pids(str(session))


async def test_a_sigkilled_driver_leaves_no_cluster_and_a_rerun_resumes(cluster: None, tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(out), str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not out.exists() or len(_tasks(out)) < 6):
        await asyncio.sleep(0.2)
    sessions = list(Path("/tmp/ray").glob(f"session_*_{proc.pid}"))
    assert len(sessions) == 1 and _session_processes(sessions[0])  # its own private cluster is running
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(_tasks(out))
    assert 6 <= written < 40
    for _ in range(50):
        if not _session_processes(sessions[0]):
            break
        await asyncio.sleep(0.1)
    assert not _session_processes(sessions[0])  # no Ray process of the run outlives it by more than a few seconds

    executor = make_executor(_faulty(tmp_path, delay_s=0.01), _ray())  # resume on another cluster
    outcome = await run_eval([f"t{i}" for i in range(40)], executor, out, config={"k": 1}, progress=False)
    assert outcome.skipped == written and outcome.ran == 40 - written
    assert sorted(r["task_id"] for r in _tasks(out)) == sorted(f"t{i}" for i in range(40))


async def test_webshop_workers_share_one_shop_per_node_and_survive_its_restart(cluster: None, tmp_path: Path) -> None:
    from ray.util import list_named_actors

    ids = [f"fixed_{i}" for i in range(4)]
    work = WorkSpec("search", "webshop", options={"algorithm": "rule"})
    local = tmp_path / "local.jsonl"
    await run_eval(ids, make_executor(work, Execution(progress=False)), local, config={"k": 1}, progress=False)

    executor = make_executor(work, _ray())
    await executor.start()
    shops = [n for n in list_named_actors() if n.startswith("stl-webshop-")]
    assert len(shops) == 1  # one shop for the node, shared by both workers
    ray.kill(ray.get_actor(shops[0]), no_restart=False)  # the shop dies; Ray restarts it on another port
    out = tmp_path / "ray.jsonl"
    outcome = await run_eval(ids, executor, out, config={"k": 1}, max_attempts=3, progress=False)
    assert outcome.failed == 0
    same = [
        {t: {k: v for k, v in r.items() if k != "attempts"} for t, r in _comparable(f).items()} for f in (out, local)
    ]
    assert same[0] == same[1] and len(same[0]) == 4 and any(r["true_reward"] > 0 for r in same[0].values())
    assert not [n for n in list_named_actors() if n.startswith("stl-webshop-")]  # the shop ended with the run
