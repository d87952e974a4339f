"""The environment protocol every search runs against.

An environment is a pure transition system over **JSON-serializable states**: search trees keep states inside
LangGraph state, which is checkpointed, so a state must round-trip through ``json.dumps``/``json.loads``.
Environments themselves may hold resources (an HTTP client, a browser) but no per-episode mutable state: the same
``state`` may be stepped many times (tree search branches from it).

The sync methods are the contract. The async twins default to running the sync method in a worker thread; an
environment whose natural API is async (Playwright) overrides them instead, and the search graph only ever calls
the async ones.

``true_reward`` is the ground truth. Only evaluation may call it; STL data collection never does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, TypeAlias

JSON: TypeAlias = dict[str, Any] | list[Any] | str | int | float | bool | None
State: TypeAlias = dict[str, Any]
"""An environment state: a JSON-native dict."""


def fingerprint(data: Any) -> str:
    """A short content hash of JSON-able task data (``sha256:`` and 16 hex digits)."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def task_data_change(recorded: Any, current: dict[str, str]) -> str | None:
    """Why a run that recorded ``recorded`` (see :meth:`Environment.task_data`) must not go on over ``current``."""
    if recorded == current:
        return None
    now = f"{current['source']} ({current['fingerprint']})"
    if not isinstance(recorded, dict):
        return f"it records no task data, so the tasks it ran cannot be checked against today's {now}"
    before = f"{recorded.get('source')} ({recorded.get('fingerprint')})"
    return f"its tasks came from {before} but now come from {now}: the same task ids would name other tasks"


class InvalidTaskError(ValueError):
    """The task id does not name a task of this environment."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one action did.

    ``valid`` is False for an action the environment refuses; then ``state`` is the unchanged input state and
    ``message`` says why. Environments never raise for a bad action: agents and search both see a clear note.
    """

    state: State
    valid: bool = True
    message: str = ""


class Environment(ABC):
    """Base class of all environments (Game of 24, WebShop over HTTP or a browser, user-defined ones)."""

    name: str = "env"

    @abstractmethod
    def reset(self, task_id: str) -> State:
        """Initial state of task ``task_id``; raises :class:`InvalidTaskError` for an unknown id."""

    @abstractmethod
    def step(self, state: State, action: str) -> StepResult:
        """Apply ``action`` to ``state`` without mutating it."""

    @abstractmethod
    def observation(self, state: State) -> str:
        """The text an agent sees in ``state``."""

    @abstractmethod
    def is_terminal(self, state: State) -> bool:
        """Whether the episode has ended in ``state``."""

    def legal_actions(self, state: State) -> list[str] | None:
        """All legal actions, or None when the action space is open (e.g. free-text search queries)."""
        return None

    @abstractmethod
    def true_reward(self, state: State) -> float:
        """Ground-truth reward in [0, 1]. **Evaluation only**: never call it while collecting STL data."""

    def task_ids(self, split: str = "test") -> list[str]:
        """Task ids of a split (``train``/``dev``/``test``); environments without splits may ignore it."""
        raise NotImplementedError(f"{type(self).__name__} does not enumerate tasks")

    def instruction(self, state: State) -> str:
        """The task description shown to models (defaults to the observation of the state)."""
        return self.observation(state)

    def task_data(self) -> dict[str, str]:
        """Where the tasks come from (``source``) and a ``fingerprint`` of them.

        ``stl eval`` records it in its run header and ``stl improve`` in its manifest, and a resume over other task
        data is refused: the same task ids must never silently name other tasks in one file. The default hashes
        the task ids of each split, which catches changed splits but not changed tasks behind the same ids;
        environments that load task data override it (Game of 24 hashes its puzzles, WebShop its goals).
        """
        splits = {}
        for split in ("train", "dev", "test"):
            try:
                splits[split] = self.task_ids(split)
            except (NotImplementedError, ValueError):
                continue
        return {"source": f"{type(self).__module__}.{type(self).__qualname__}", "fingerprint": fingerprint(splits)}

    async def areset(self, task_id: str) -> State:
        return await asyncio.to_thread(self.reset, task_id)

    async def astep(self, state: State, action: str) -> StepResult:
        return await asyncio.to_thread(self.step, state, action)

    async def aobservation(self, state: State) -> str:
        return self.observation(state)

    async def alegal_actions(self, state: State) -> list[str] | None:
        return await asyncio.to_thread(self.legal_actions, state)

    async def atrue_reward(self, state: State) -> float:
        return await asyncio.to_thread(self.true_reward, state)

    async def aclose(self) -> None:
        """Release resources (browsers, clients). Idempotent."""

    def close(self) -> None:
        """Release resources held by a sync environment. Idempotent."""
