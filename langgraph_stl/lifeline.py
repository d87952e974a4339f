"""Child processes that must not outlive the command that started them.

A training child (``stl improve``'s subprocess training in Studio, every torchrun rank of ``stl train --nproc``)
writes checkpoints and adapters into the run's folder. If the command is killed (``kill -9``, or a SIGTERM that
Python answers by dying at once), the folder's lock goes with it, and a rerun would train into the same folder
while the orphan still writes there. So the command passes its pid in ``STL_PARENT_PID`` (:func:`child_env`) and
the child ends itself within a second of that process's disappearance (:func:`exit_with_parent`).

POSIX only: on Windows ``os.kill(pid, 0)`` is not a probe, so the watch is off there.
"""

from __future__ import annotations

import os
import threading
import time

PARENT_ENV = "STL_PARENT_PID"


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that :func:`exit_with_parent` ties to this process."""
    return {**(os.environ if base is None else base), PARENT_ENV: str(os.getpid())}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user (a reused pid): not ours, but not provably gone
        return False
    return False


def exit_with_parent(poll_s: float = 1.0) -> bool:
    """In a child: exit (status 1, no cleanup, like the kill it follows) once the ``STL_PARENT_PID`` process is
    gone, or once this child has been reparented away from it. Returns whether a watch was started."""
    pid = int(os.environ.get(PARENT_ENV, "0") or 0)
    if pid <= 0 or os.name != "posix":
        return False
    direct = os.getppid() == pid

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if _gone(pid) or (direct and os.getppid() != pid):
                os._exit(1)

    threading.Thread(target=watch, name="stl-parent-watch", daemon=True).start()
    return True
