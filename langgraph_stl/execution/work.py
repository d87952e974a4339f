"""What a worker runs, described in JSON so that it can cross process and machine boundaries.

A :class:`WorkSpec` names an environment (``make_env`` name and keyword arguments), the kind of work and its options
(model spec strings, search context, collection settings). Every worker builds its own environment and models from
it with :func:`build_runner`: no model weights or live clients travel between processes. The local executor builds
the same runner in-process, so both executors run identical code per task.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_stl.envs.base import Environment
from langgraph_stl.execution.driver import TaskError, TaskFn


@dataclass(frozen=True, slots=True)
class WorkSpec:
    """``kind``: ``search`` (one ``stl eval`` record per task), ``collect`` (one task's lookahead examples) or
    ``py:<module>:<factory>`` (``factory(spec) -> TaskRunner``, for custom work). ``options`` must be JSON."""

    kind: str
    env: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            json.dumps(self.to_json())
        except TypeError as exc:
            raise ValueError(f"a WorkSpec must be JSON (it is sent to remote workers): {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkSpec:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class TaskRunner:
    """A built worker: ``run(task_id)`` per task (concurrent calls allowed), ``close()`` once at the end."""

    run: TaskFn
    close: Callable[[], None] = lambda: None


def build_runner(spec: WorkSpec, *, env: Environment | None = None) -> TaskRunner:
    """Build the environment (unless given) and the models of ``spec``; blocking, call it off the event loop."""
    if spec.kind.startswith("py:"):
        module_name, _, attr = spec.kind[3:].rpartition(":")
        if not module_name or not attr:
            raise ValueError(f"bad work kind {spec.kind!r}: use py:<module>:<factory>")
        runner = getattr(importlib.import_module(module_name), attr)(spec)
        if not isinstance(runner, TaskRunner):
            raise ValueError(f"{spec.kind!r} built a {type(runner).__name__}, not a TaskRunner")
        return runner
    if spec.kind not in ("search", "collect"):
        raise ValueError(f"unknown work kind {spec.kind!r}: search, collect or py:<module>:<factory>")
    from langgraph_stl.envs import make_env

    owned = env is None
    environment = make_env(spec.env, **spec.env_kwargs) if env is None else env
    try:
        run = _search_task(environment, spec.options) if spec.kind == "search" else _collect_task(environment, spec)
    except BaseException:
        if owned:
            environment.close()
        raise
    return TaskRunner(run, environment.close if owned else lambda: None)


def _search_task(env: Environment, options: dict[str, Any]) -> TaskFn:
    from langgraph_stl.evaluation.search_task import make_rule_task, make_search_task
    from langgraph_stl.models.endpoints import endpoint_key

    if options.get("algorithm") == "rule":
        return make_rule_task(env)
    run_search = make_search_task(
        env,
        policy=options["policy"],
        value=options["value"],
        algorithm=options.get("algorithm", "greedy"),
        context=options.get("context"),
        trees=Path(options["trees"]) if options.get("trees") else None,
    )

    async def run(task_id: str) -> Any:
        endpoint_key.set(task_id)  # this task's model calls stick to one endpoint (this coroutine's context only)
        record = await run_search(task_id)
        if record.error is not None:  # the search recorded its own failure: let the driver retry the task
            raise TaskError(record.error)
        return record

    return run


def _collect_task(env: Environment, spec: WorkSpec) -> TaskFn:
    from langgraph_stl.models.endpoints import endpoint_key
    from langgraph_stl.search import make_policy, make_value
    from langgraph_stl.search.value import ValueMode
    from langgraph_stl.training.collect import CollectConfig, collect_one

    options = spec.options
    config = CollectConfig.from_json(options["collect"])
    temperature = config.search.temperature
    mode: ValueMode = "logits" if config.search.value_mode == "logits" else "generate"
    policy = make_policy(options["policy"], temperature=temperature)
    value = make_value(options["value"], temperature=temperature, mode=mode)

    async def run(task_id: str) -> Any:
        endpoint_key.set(task_id)
        return await collect_one(env, policy, value, task_id, config)

    return run
