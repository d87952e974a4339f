"""Running many tasks: one driver loop (:func:`drive`), a swappable executor (local asyncio or Ray actors), JSON
work specs that workers build themselves from, and sinks that are the only writers of an output file.

Ray is optional (``pip install 'langgraph-stl[distributed]'``) and imported only when the Ray executor starts.
"""

from langgraph_stl.execution.driver import (
    DriveOutcome,
    Executor,
    Finished,
    LocalExecutor,
    Sink,
    TaskError,
    TaskResult,
    WorkerLostError,
    drive,
)
from langgraph_stl.execution.options import EXECUTORS, Execution, ExecutorKind, make_executor
from langgraph_stl.execution.work import TaskRunner, WorkSpec, build_runner

__all__ = [
    "EXECUTORS",
    "DriveOutcome",
    "Execution",
    "Executor",
    "ExecutorKind",
    "Finished",
    "LocalExecutor",
    "Sink",
    "TaskError",
    "TaskResult",
    "TaskRunner",
    "WorkSpec",
    "WorkerLostError",
    "build_runner",
    "drive",
    "make_executor",
]
