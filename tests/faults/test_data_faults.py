"""Data-side fault injection (issue 12): signals at seeded random points of `stl eval`, `stl improve` (collection,
training and evaluation) and `stl train`, then a resume; afterwards no record is lost or duplicated and no process
of the killed command survives. Every command runs in its own session, so its whole process group is checked.

Kill points are drawn from ``random.Random(SEED)`` as progress thresholds (the k-th task line, the k-th training
checkpoint) plus a small random delay, so the suite is reproducible in what it aims at while still landing
between and inside writes. Each test prints a ``faults:`` line with what it injected (``pytest -s`` shows them;
docs/RELIABILITY.md quotes them).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from langgraph_stl.evaluation.results import load_results
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and process groups are POSIX")

SEED = 12
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
RANDOM_VALUE = "py:langgraph_stl.evaluation.value_quality:random_value"


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`stl ARGS` in a new session (process group id == pid), output to ``log``."""
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "langgraph_stl", *args], cwd=REPO, stdout=fh, stderr=fh, start_new_session=True
        )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], sig: signal.Signals, delay: float, timeout: float = 240
) -> bool:
    """Send ``sig`` ``delay`` s after ``ready()`` holds; True if it hit the running command. Then wait for the end
    and check that nothing of the command's process group is left."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready():
        assert time.monotonic() < deadline, "the command never reached the kill point"
        time.sleep(0.002)
    time.sleep(delay)
    hit = proc.poll() is None
    if hit:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"the command did not end within 120 s of {sig.name}") from None
    gone_by = time.monotonic() + 10  # a training child notices its parent's death within a second
    while _group_alive(proc.pid) and time.monotonic() < gone_by:
        time.sleep(0.1)
    assert not _group_alive(proc.pid), f"a process of the command survived {sig.name}"
    return hit


def _lines(path: Path, needle: bytes) -> int:
    try:
        return sum(1 for line in path.read_bytes().splitlines() if line.startswith(needle) and line.endswith(b"}"))
    except FileNotFoundError:
        return 0


def _steps(run: Path) -> dict[str, object]:
    try:
        steps: dict[str, object] = json.loads((run / "manifest.json").read_text())["steps"]
    except (OSError, ValueError):
        return {}
    return steps


# ------------------------------------------------------------------------------------------------------ stl eval


@pytest.mark.slow
def test_eval_resumes_after_signals_at_random_points(tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}|eval")
    n = 80
    out, log = tmp_path / "g24.jsonl", tmp_path / "eval.log"
    args = ["eval", "--env", "game24", "--policy", "enumerate", "--value", RANDOM_VALUE, "--out", str(out)]
    args += ["--tasks", f"0-{n - 1}", "--rollouts", "1", "--value-samples", "1", "--concurrency", "3"]
    hits = 0
    for sig in rng.sample(SIGNALS, len(SIGNALS)) * 2:
        have = _lines(out, b'{"record":"task"')
        at = have + rng.randint(0, 8)  # 0: as soon as the command starts (may land before or inside the header)
        proc = _start(args, log)
        hits += _signal_when(proc, lambda at=at: _lines(out, b'{"record":"task"') >= at, sig, rng.uniform(0, 0.05))
        if out.exists():  # what a kill leaves is always resumable: whole records, at most one torn line
            ids = [json.loads(x)["task_id"] for x in out.read_bytes().splitlines() if x.startswith(b'{"record":"t')]
            assert len(ids) == len(set(ids))
    final = subprocess.run([sys.executable, "-m", "langgraph_stl", *args], cwd=REPO, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    results = load_results(out)
    assert sorted(results.tasks, key=int) == [str(900 + i) for i in range(n)]  # none lost
    assert len(out.read_bytes().splitlines()) == n + 1  # header + one line per task: none duplicated
    print(f"faults: stl eval, {hits} signals delivered of 6, {n} tasks, 0 lost, 0 duplicated")


# --------------------------------------------------------------------------------------------------- stl improve


TRAIN_TASKS = [f"t{i}" for i in range(6)]
EVAL_TASKS = [f"t{i}" for i in range(6, 12)]


def _improve_args(run: Path, base: Path) -> list[str]:
    return [
        "improve",
        "--env",
        "py:tests.test_training_improve:tree_env",
        "--out",
        str(run),
        "--policy",
        "enumerate",
        "--value",
        "py:tests.test_training_improve:v0_chat",
        "--base",
        f"hf:{base}",
        "--train-tasks",
        ",".join(TRAIN_TASKS),
        "--eval-tasks",
        ",".join(EVAL_TASKS),
        *("--beam", "1", "--explore", "1", "--width", "2", "--depth", "3", "--value-samples", "1"),
        *("--max-steps", "12", "--batch-size", "4", "--lr", "1e-3", "--max-length", "256", "--no-gguf"),
    ]


@pytest.mark.slow
def test_improve_resumes_after_signals_in_collection_training_and_evaluation(tmp_path: Path, tiny_base: Path) -> None:
    import asyncio

    from langgraph_stl.training.dataset import read_jsonl
    from langgraph_stl.training.improve import ImproveConfig, StlRun

    rng = random.Random(f"{SEED}|improve")
    run, log = tmp_path / "run", tmp_path / "improve.log"
    data, evals = run / "iter_1" / "data.jsonl", run / "iter_1" / "eval.jsonl"
    args = _improve_args(run, tiny_base)
    rng_k = {"collect": rng.randint(0, 6)}
    stages: list[tuple[str, Callable[[], bool]]] = [
        ("baseline evaluation", lambda: _lines(run / "eval_0.jsonl", b'{"record":"task"') >= 1),
        ("collection", lambda: _lines(data, b'{"prompt"') >= 1 + rng_k["collect"]),
        ("training", lambda: "iter1.collect" in _steps(run)),
        ("evaluation", lambda: _lines(evals, b'{"record":"task"') >= 1),
    ]
    sigs = [rng.choice(SIGNALS) for _ in stages]
    hits = []
    for (stage, ready), sig in zip(stages, sigs, strict=True):
        delay = rng.uniform(0.5, 3.0) if stage == "training" else rng.uniform(0, 0.05)
        if _signal_when(_start(args, log), ready, sig, delay):
            hits.append(f"{sig.name} in {stage}")
    final = subprocess.run([sys.executable, "-m", "langgraph_stl", *args], cwd=REPO, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert {"iter0.eval", "iter1.collect", "iter1.train", "iter1.export", "iter1.eval"} <= set(_steps(run))

    # Evaluations: every task exactly once (load_results refuses duplicates and torn lines).
    for path in (run / "eval_0.jsonl", evals):
        assert sorted(load_results(path).tasks) == sorted(EVAL_TASKS)
    # Collection: exactly the examples of an uninterrupted collection with the same settings, none twice.
    examples = read_jsonl(data, strict=True).examples
    got = [(e.task, e.depth, e.prompt, e.completion) for e in examples]
    assert len(got) == len(set(got))
    assert (data.with_name("data.jsonl.done")).read_text().split() == sorted(TRAIN_TASKS, key=lambda t: int(t[1:]))
    cli = json.loads((run / "manifest.json").read_text())["config"]
    reference = ImproveConfig(**{**cli, "out": str(tmp_path / "reference"), "iterations": 1})
    with StlRun(reference) as ref:
        asyncio.run(ref.collect(1))
    want = {(e.task, e.depth, e.prompt, e.completion) for e in read_jsonl(ref.iter_dir(1) / "data.jsonl").examples}
    assert set(got) == want
    print(f"faults: stl improve, {len(hits)} signals delivered of {len(stages)} ({', '.join(hits)}), 0 lost, 0 dup")


# ----------------------------------------------------------------------------------------------------- stl train


@pytest.mark.slow
def test_train_resumes_from_its_checkpoint_after_a_signal(tmp_path: Path, tiny_base: Path) -> None:
    from langgraph_stl.training.dataset import Example, ExampleWriter
    from langgraph_stl.training.sft import read_summaries, training_dir

    rng = random.Random(f"{SEED}|train")
    data, out, log = tmp_path / "data.jsonl", tmp_path / "model", tmp_path / "train.log"
    with ExampleWriter(data, fsync=False) as writer:
        for i in range(16):
            writer.write(Example(f"state {i}", f"Thus the correctness score is {i % 10}.00 / 10.00.", depth=1))
    args = ["train", "--data", str(data), "--out", str(out), "--base", f"hf:{tiny_base}", "--max-steps", "30"]
    args += ["--save-steps", "5", "--batch-size", "4", "--lr", "1e-3", "--max-length", "128", "--device", "cpu"]
    hits = []
    # The first signal lands as checkpoint-10 is being written (a torn checkpoint must not block the resume), the
    # second at a random point after a checkpoint.
    for sig, step, delay in zip(
        rng.sample(SIGNALS, 2), (10, rng.choice([5, 10])), (0.0, rng.uniform(0, 1.0)), strict=True
    ):
        ready = (training_dir(out) / "checkpoints" / f"checkpoint-{step}").is_dir
        if _signal_when(_start(args, log), ready, sig, delay):
            hits.append(sig.name)
    final = subprocess.run([sys.executable, "-m", "langgraph_stl", *args], cwd=REPO, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    (summary,) = read_summaries(out)
    assert summary.steps == 30 and summary.resumed_from, summary
    print(f"faults: stl train, {len(hits)} signals delivered of 2 ({', '.join(hits)}), resumed from a checkpoint")

    # Under torchrun the ranks are grandchildren: a SIGKILL of `stl train --nproc 2` must not leave them training.
    ranks = [*args, "--nproc", "2", "--max-steps", "60", "--out", str(tmp_path / "ddp")]
    ready = (training_dir(tmp_path / "ddp") / "checkpoints" / "checkpoint-5").is_dir
    assert _signal_when(_start(ranks, log), ready, signal.SIGKILL, rng.uniform(0, 0.5))
    print("faults: stl train --nproc 2, SIGKILL after the first checkpoint, no rank survived")
