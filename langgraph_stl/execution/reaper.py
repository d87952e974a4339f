"""``python -m langgraph_stl.execution.reaper DRIVER_PID SESSION_DIR``: when the driver dies, stop its cluster.

Started by the Ray executor next to a private local cluster. A SIGKILLed driver cannot run ``ray.shutdown()``, and
Ray's GCS and raylet then exit on their own but its dashboard and runtime-env agents stay (measured with Ray 2.60).
Every process that holds a file in the cluster's session folder belongs to that cluster; they get SIGTERM, then
SIGKILL. The executor terminates this watcher after a clean shutdown. Linux only (/proc); elsewhere it just exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cluster_pids(session: str) -> set[int]:
    """Processes with an open file under ``session`` (the cluster's own processes; not this one)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:  # gone, or not ours
            continue
        if any(link.startswith(session) for link in links):
            pids.add(int(proc.name))
    return pids


def reap(session: str, *, grace_s: float = 1.0) -> set[int]:
    """Stop every process of the cluster at ``session``; returns the pids signalled."""
    pids = cluster_pids(session)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
    return pids


def main(argv: list[str]) -> int:
    driver, session = int(argv[0]), argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the driver must not stop the watch
    if not Path("/proc").is_dir():
        return 0
    while _alive(driver):
        time.sleep(0.2)
    reap(session)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
