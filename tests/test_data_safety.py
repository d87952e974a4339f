"""Issue 12, data safety: no command modifies a file it has not recognised, one writer per output, a torn tail is
the only thing repaired, and task data that changed under a run is refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from langgraph_stl.durable import OutputLockedError, exclusive
from langgraph_stl.evaluation.results import Rollout, TaskRecord, load_results
from langgraph_stl.evaluation.run import ResumeError, run_eval
from tests.conftest import REPO

RANDOM_VALUE = "py:langgraph_stl.evaluation.value_quality:random_value"
CONFIG = {"env": "fake"}


def stl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langgraph_stl", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def eval_args(out: Path, *extra: str) -> list[str]:
    return ["eval", "--env", "game24", "--policy", "enumerate", "--value", RANDOM_VALUE, "--out", str(out), *extra]


async def _record(task_id: str) -> TaskRecord:
    return TaskRecord.from_rollouts(task_id, [Rollout(1.0, value=0.5)])


def test_eval_leaves_a_foreign_file_untouched(tmp_path: Path) -> None:
    """The issue's reproduction: `stl eval --out settings.json` emptied the user's file."""
    settings = tmp_path / "settings.json"
    settings.write_text('{"important":1}')
    res = stl(*eval_args(settings, "--tasks", "0-1", "--rollouts", "1", "--value-samples", "1"))
    assert res.returncode == 2 and "not an `stl eval` output" in res.stderr and "Traceback" not in res.stderr
    assert settings.read_text() == '{"important":1}'
    assert not (tmp_path / "settings.json.lock.owner").exists()


@pytest.mark.parametrize(
    "content",
    [
        b'{"task_idx": 0, "true_reward": 1, "true_rewards_list": []}\n{"task_idx": 1, "true_reward": 0, "tru',
        b'{"task_idx": 0, "true_reward": 1, "true_rewards_list": []}',  # a reference file without its last newline
        b'{"record":"run","schema":1,"config":{"env":"fake"},"task_ids":["0"]}\nnot ours at all',
        b"plain text notes\n",
        b"\xff\xfe binary",
    ],
)
async def test_no_byte_of_an_unrecognised_file_changes(tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(content)
    with pytest.raises(ResumeError, match="not an `stl eval` output"):
        await run_eval(["0"], _record, out, config=CONFIG, progress=False)
    assert out.read_bytes() == content


async def test_only_the_torn_part_is_repaired(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    await run_eval(["0", "1"], _record, out, config=CONFIG, progress=False)
    whole = out.read_bytes()
    out.write_bytes(whole[:-1])  # the last record lost only its newline: it is kept
    kept = await run_eval(["0", "1"], _record, out, config=CONFIG, progress=False)
    assert (kept.repaired_bytes, kept.ran, out.read_bytes()) == (0, 0, whole)
    out.write_bytes(whole + b'{"record":"ta')  # a kill a few bytes into a line: only those bytes go
    cut = await run_eval(["0", "1", "2"], _record, out, config=CONFIG, progress=False)
    assert (cut.repaired_bytes, cut.ran) == (len(b'{"record":"ta'), 1)
    assert sorted(load_results(out).tasks) == ["0", "1", "2"]


async def test_a_partial_header_resumes_in_one_rerun(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"record":"run","schema":1,"crea')
    outcome = await run_eval(["0", "1"], _record, out, config=CONFIG, progress=False)
    assert outcome.ran == 2 and sorted(load_results(out).tasks) == ["0", "1"]


async def test_a_second_writer_is_refused_with_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(task_id: str) -> TaskRecord:
        started.set()
        await release.wait()
        return await _record(task_id)

    first = asyncio.create_task(run_eval(["0"], slow, out, config=CONFIG, progress=False))
    await started.wait()
    with pytest.raises(OutputLockedError, match=r"in use by pid \d+ on .*, started .*: "):
        await run_eval(["0"], _record, out, config=CONFIG, progress=False)
    release.set()
    assert (await first).ran == 1
    assert len(load_results(out).tasks) == 1
    assert (await run_eval(["0", "1"], _record, out, config=CONFIG, progress=False)).ran == 1  # released


def test_a_second_eval_process_exits_2_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with exclusive(out):
        res = stl(*eval_args(out, "--tasks", "0", "--rollouts", "1", "--value-samples", "1"))
    assert res.returncode == 2 and "is in use by pid" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def test_lock_holder_details(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with exclusive(out):
        holder = json.loads((tmp_path / "x.jsonl.lock.owner").read_text())
        assert set(holder) == {"pid", "host", "command", "started"}
        with pytest.raises(OutputLockedError) as info, exclusive(out):
            pass
        assert info.value.holder == holder
    assert not (tmp_path / "x.jsonl.lock.owner").exists()
    with exclusive(out):  # released, so it can be taken again
        pass


# ------------------------------------------------------------------------------------------- stl improve, collection


def test_improve_refuses_a_folder_that_is_not_a_run(tmp_path: Path, tiny_base: Path) -> None:
    from langgraph_stl.training.improve import RunConfigMismatchError, StlRun
    from tests.test_training_improve import _config

    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(RunConfigMismatchError, match="not an `stl improve` run folder"):
        StlRun(_config(folder, tiny_base))
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    (folder / "notes.txt").unlink()
    (folder / "manifest.json").write_text('{"important": 1}')
    with pytest.raises(RunConfigMismatchError, match="not a manifest of `stl improve`"):
        StlRun(_config(folder, tiny_base))
    assert (folder / "manifest.json").read_text() == '{"important": 1}'


def test_improve_run_folder_is_exclusive(tmp_path: Path, tiny_base: Path) -> None:
    from langgraph_stl.training.improve import StlRun
    from tests.test_training_improve import _config

    config = _config(tmp_path / "run", tiny_base)
    with StlRun(config), pytest.raises(OutputLockedError, match="run is in use by pid"):
        StlRun(config)
    StlRun(config).close()  # released


@pytest.mark.slow
def test_improve_evaluation_file_is_tail_repaired_on_resume(tmp_path: Path, tiny_base: Path) -> None:
    from langgraph_stl.training.improve import run_improve
    from tests.test_training_improve import Crash, _config

    config = _config(tmp_path / "run", tiny_base)

    def crash(step: str, event: dict[str, object]) -> None:
        if step == "iter0.eval" and event["event"] == "task_done":
            raise Crash("killed during the baseline evaluation")

    with pytest.raises(Crash):
        run_improve(config, hook=crash)
    evals = tmp_path / "run" / "eval_0.jsonl"
    with evals.open("ab") as fh:
        fh.write(b'{"record":"task","schema":1,"task_id":"t3","true_rew')  # the next record, torn by a kill
    run_improve(config)
    assert sorted(load_results(evals).tasks) == ["t2", "t3"]  # `stl report` reads it: repaired, not glued


def test_collection_cuts_a_torn_done_line_and_refuses_a_foreign_dataset(tmp_path: Path) -> None:
    from langgraph_stl.search import EnumeratePolicy
    from langgraph_stl.training.collect import collect, read_done
    from langgraph_stl.training.dataset import DatasetError, read_jsonl
    from tests.fakes import TreeEnv
    from tests.test_training_collect import _config, _value

    data = tmp_path / "data.jsonl"
    collect(TreeEnv(branching=2, depth=3), EnumeratePolicy(), _value(), ["t1"], data, _config())
    with (tmp_path / "data.jsonl.done").open("ab") as fh:
        fh.write(b"t")  # a kill while writing "t0": "t" must not read as a finished task
    assert read_done(data) == {"t1"}
    stats = collect(TreeEnv(branching=2, depth=3), EnumeratePolicy(), _value(), ["t0", "t1"], data, _config())
    assert (stats.tasks, stats.tasks_skipped) == (1, 1)
    assert (tmp_path / "data.jsonl.done").read_text() == "t1\nt0\n"
    assert {e.task for e in read_jsonl(data, strict=True).examples} == {"t0", "t1"}

    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"note": "keep me"}\n')
    with pytest.raises(DatasetError, match="nothing was changed"):
        collect(TreeEnv(branching=2, depth=3), EnumeratePolicy(), _value(), ["t0"], foreign, _config())
    assert foreign.read_text() == '{"note": "keep me"}\n'


# ------------------------------------------------------------------------------------------- task data fingerprints


def test_game24_task_data_names_its_puzzle_source(tmp_path: Path) -> None:
    from langgraph_stl.envs.game24 import CSV_RELPATH, Game24Env

    csv = tmp_path / "data" / CSV_RELPATH
    csv.parent.mkdir(parents=True)
    csv.write_text("Rank,Puzzles\n1,1 1 4 6\n2,1 1 11 11\n")
    from_csv = Game24Env(tmp_path / "data").task_data()
    with pytest.warns(UserWarning, match="not found"):
        generated = Game24Env(tmp_path / "empty").task_data()
    assert from_csv["source"] == "24.csv" and generated["source"] == "generated"
    assert from_csv["fingerprint"] != generated["fingerprint"]
    csv.write_text("Rank,Puzzles\n1,1 1 4 6\n2,1 1 11 12\n")  # one puzzle changed, same ids
    assert Game24Env(tmp_path / "data").task_data()["fingerprint"] != from_csv["fingerprint"]


def test_eval_resume_over_other_puzzles_is_refused(tmp_path: Path) -> None:
    """The issue's case: without 24.csv the same task ids name generated puzzles; a resume must not mix them."""
    from langgraph_stl.envs.game24 import CSV_RELPATH

    csv = tmp_path / "data" / CSV_RELPATH
    csv.parent.mkdir(parents=True)
    csv.write_text("Rank,Puzzles\n1,4 6 1 1\n2,1 1 11 11\n3,2 3 4 5\n")
    out = tmp_path / "g24.jsonl"
    args = eval_args(out, "--split", "train", "--rollouts", "1", "--value-samples", "1", "--width", "2")

    def run(data: Path, tasks: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "STL_DATA_DIR": str(data)}
        cmd = [sys.executable, "-m", "langgraph_stl", *args, "--tasks", tasks]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)

    first = run(tmp_path / "data", "0")
    assert first.returncode == 0, first.stderr
    header = load_results(out).header
    assert header is not None and header.config["task_data"]["source"] == "24.csv"
    before = out.read_bytes()
    moved = run(tmp_path / "empty", "0-1")
    assert moved.returncode == 2 and "Traceback" not in moved.stderr
    assert "its tasks came from 24.csv (sha256:" in moved.stderr and "now come from generated" in moved.stderr
    assert out.read_bytes() == before


def test_improve_resume_over_other_task_data_is_refused(tmp_path: Path, tiny_base: Path) -> None:
    from langgraph_stl.training.improve import RunConfigMismatchError, StlRun
    from tests.test_training_improve import _config

    config = _config(tmp_path / "run", tiny_base)
    with StlRun(config) as run:
        recorded = run.env.task_data()
        assert run.manifest.data["task_data"] == recorded
        run.manifest.mark("iter0.eval")
    manifest = tmp_path / "run" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["task_data"] = {"source": "elsewhere", "fingerprint": "sha256:0"}
    manifest.write_text(json.dumps(data))
    with StlRun(config) as run, pytest.raises(RunConfigMismatchError, match="its tasks came from elsewhere"):
        run.env  # noqa: B018 - building the environment checks its task data


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads /proc (Linux)")
def test_a_training_child_ends_when_its_command_is_killed(tmp_path: Path) -> None:
    """`lifeline`: the command's SIGKILL takes its training child with it (here: a child that would sleep 60 s)."""
    pidfile = tmp_path / "child.pid"
    child = (
        "import os, sys, time; from langgraph_stl.lifeline import exit_with_parent; "
        f"assert exit_with_parent(0.1); open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    parent = (
        "import subprocess, sys, time; from langgraph_stl.lifeline import child_env; "
        f"subprocess.Popen([sys.executable, '-c', {child!r}], env=child_env()); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_checkpoint_torn_by_a_kill_is_skipped_on_resume(tmp_path: Path) -> None:
    """A kill while the Trainer writes checkpoint-10 left an empty folder, and every rerun then failed with
    "Can't find a valid checkpoint"; the resume now starts from the newest complete one."""
    from langgraph_stl.training.sft import _last_checkpoint

    folder = tmp_path / "checkpoints"
    assert _last_checkpoint(folder) is None
    for step in (5, 10, 15):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
    (folder / "checkpoint-5" / "trainer_state.json").write_text('{"global_step": 5}')
    (folder / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 10}')
    (folder / "checkpoint-15" / "trainer_state.json").write_text('{"global_st')  # torn
    assert _last_checkpoint(folder) == (str(folder / "checkpoint-10"), 10)


async def test_a_folder_given_as_eval_output_is_not_written_into(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        await run_eval(["0"], _record, folder, config=CONFIG, progress=False)
    assert list(folder.iterdir()) == []


def test_collect_resume_over_other_task_data_is_refused(tmp_path: Path) -> None:
    from langgraph_stl.training.collect import CollectSink
    from langgraph_stl.training.dataset import DatasetError

    data = tmp_path / "data.jsonl"
    csv_puzzles = {"source": "24.csv", "fingerprint": "sha256:1"}
    sink = CollectSink(data, task_data=csv_puzzles)
    sink.open()
    sink.close()
    (tmp_path / "data.jsonl.done").write_text("0\n")
    again = CollectSink(data, task_data=csv_puzzles)
    assert again.open() == {"0"}
    again.close()
    moved = CollectSink(data, task_data={"source": "generated", "fingerprint": "sha256:2"})
    with pytest.raises(DatasetError, match=r"its tasks came from 24\.csv .* now come from generated"):
        moved.open()
    released = CollectSink(data, task_data=csv_puzzles)
    released.open()  # the refused sink released the dataset's lock
    released.close()
    legacy = tmp_path / "legacy.jsonl"
    (tmp_path / "legacy.jsonl.done").write_text("0\n")
    with pytest.raises(DatasetError, match="records no task data"):
        CollectSink(legacy, task_data=csv_puzzles).open()
