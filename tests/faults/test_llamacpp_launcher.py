"""The llama.cpp launcher under faults: killed (or orphaned) during the model load it ends at once and leaves no log
file behind, and its API key is on no process's command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from langgraph_stl.models import load_chat_model
from langgraph_stl.models.embedded import embedded_gguf_path
from langgraph_stl.models.openai_compat import OpenAICompatibleChat
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.model]

OWNER = """
import sys
from langgraph_stl.models import load_chat_model
try:
    model = load_chat_model("smollm2", n_parallel=1, ctx_per_slot=512)
    print("ready", flush=True)
except Exception as exc:
    print("error", type(exc).__name__, str(exc).replace(chr(10), " "), flush=True)
sys.stdin.read()
"""


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _loading(pid: int) -> bool:
    """The launcher has the GGUF mapped: llama.cpp is loading it (or has loaded it)."""
    try:
        return str(embedded_gguf_path()) in Path(f"/proc/{pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


@contextmanager
def owner_loading(tmp: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A process loading the embedded model (temp dir ``tmp``), caught while its launcher loads the GGUF."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert _wait_for(lambda: bool(_children(owner.pid)), 60), "no launcher started"
        launcher = _children(owner.pid)[0]
        assert _wait_for(lambda: _loading(launcher), 60), "the launcher never started loading"
        yield owner, launcher
    finally:
        owner.kill()
        owner.wait(10)
        for pipe in (owner.stdin, owner.stdout):
            if pipe is not None:
                pipe.close()


def test_a_launcher_orphaned_during_the_load_ends_at_once_and_leaves_no_log(tmp_path: Path) -> None:
    with owner_loading(tmp_path) as (owner, launcher):
        owner.kill()  # no atexit, no stdin EOF handling while the load holds the GIL
        start = time.monotonic()
        assert _wait_for(lambda: _gone(launcher), 3), "the launcher outlived its owner during the load"
        assert time.monotonic() - start < 3
    assert list(tmp_path.iterdir()) == []


def test_a_launcher_terminated_during_the_load_ends_at_once_and_its_owner_says_so(tmp_path: Path) -> None:
    with owner_loading(tmp_path) as (owner, launcher):
        os.kill(launcher, signal.SIGTERM)
        assert _wait_for(lambda: _gone(launcher), 3), "SIGTERM waited for the load to end"
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line.startswith("error LlamaServerError") and "exited during start-up" in line, line
    assert list(tmp_path.iterdir()) == []


def test_the_api_key_is_on_no_command_line() -> None:
    model = load_chat_model("smollm2", n_parallel=1, ctx_per_slot=512, max_tokens=2)
    assert isinstance(model, OpenAICompatibleChat) and model.server is not None
    key = model.server.config.api_key.encode()
    try:
        assert len(key) >= 16 and model.invoke("hi").content is not None
        readable = 0
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                readable += 1
                assert key not in cmdline, f"the API key is on the command line of pid {proc.name}"
        assert readable > 2
        assert key not in Path(f"/proc/{model.server.pid}/environ").read_bytes()
    finally:
        model.close()
