"""Sync and async from one piece of logic: the search's steps are generators that *yield* the I/O they need.

Policies, value models and expansion are written once, as generators that yield :class:`Call` objects (an
environment step, a batch of model calls) and receive their results. :func:`drive` runs such a generator with the
calls' sync halves (``graph.invoke``, notebooks' sync tools), :func:`adrive` with their async halves
(``graph.ainvoke``, ``langgraph dev``); only the calls differ, never the logic. No sync path calls
``asyncio.run`` on the caller's thread: notebooks and Studio already run a loop there. An async-only component
(a user's policy with just ``async def propose``) is run on a private loop in a worker thread instead
(:func:`run_coroutine_sync`).

:func:`twin` makes a LangGraph node from a sync and an async function, as ``langgraph-supervisor`` does; it is the
only place that touches LangGraph's internal ``RunnableCallable`` (a test fails loudly if an upgrade moves it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from langgraph._internal._runnable import RunnableCallable

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Call(Protocol[T_co]):
    """One unit of I/O with a sync and an async way to do it."""

    def run(self) -> T_co: ...

    async def arun(self) -> T_co: ...


Steps: TypeAlias = Generator[Call[Any], Any, T]
"""A generator yielding calls and returning ``T``: logic written once for both drivers."""


class Twin(Generic[T]):
    """``sync(*args)`` or ``await async_(*args)``; with ``async_=None`` the sync function is cheap and pure, so the
    async driver calls it directly."""

    __slots__ = ("args", "async_", "sync")

    def __init__(self, sync: Callable[..., T], async_: Callable[..., Awaitable[T]] | None = None, *args: Any) -> None:
        self.sync, self.async_, self.args = sync, async_, args

    def run(self) -> T:
        return self.sync(*self.args)

    async def arun(self) -> T:
        return self.sync(*self.args) if self.async_ is None else await self.async_(*self.args)


class AsyncOnly(Generic[T]):
    """A coroutine (made fresh per run) with no sync twin: the sync driver runs it on a private loop."""

    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self.factory = factory

    def run(self) -> T:
        return run_coroutine_sync(self.factory())

    async def arun(self) -> T:
        return await self.factory()


class Gather(Generic[T]):
    """Several calls at once: concurrently on the async path, one after another on the sync path."""

    __slots__ = ("calls",)

    def __init__(self, calls: Sequence[Call[T]]) -> None:
        self.calls = calls

    def run(self) -> list[T]:
        return [c.run() for c in self.calls]

    async def arun(self) -> list[T]:
        return list(await asyncio.gather(*(c.arun() for c in self.calls)))


def drive(steps: Steps[T]) -> T:
    """Run ``steps`` with the sync half of every call it yields."""
    try:
        call = next(steps)
        while True:
            call = steps.send(call.run())
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(steps: Steps[T]) -> T:
    """Run ``steps`` with the async half of every call it yields."""
    try:
        call = next(steps)
        while True:
            call = steps.send(await call.arun())
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def run_coroutine_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code: here when this thread has no running loop, else on a private
    loop in a worker thread (a notebook cell's loop must neither be re-entered nor blocked by ``asyncio.run``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stl-sync") as pool:
        return pool.submit(asyncio.run, coro).result()


def twin(func: Callable[..., Any], afunc: Callable[..., Awaitable[Any]], *, name: str | None = None) -> Any:
    """A graph node with a sync (``invoke``/``stream``) and an async (``ainvoke``/``astream``) implementation.

    Both must take the same parameters (LangGraph reads the sync one's signature to inject ``runtime``). Not traced
    as a run of its own, like the nodes LangGraph builds from plain functions."""
    return RunnableCallable(func, afunc, name=name or func.__name__, trace=False)
