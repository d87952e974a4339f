"""Several OpenAI-compatible endpoints behind one chat model: ``openai:MODEL@URL1,URL2,...``.

Routing is client-side, per request: the endpoint with the fewest requests in flight from this process wins, and
every call made while one task runs goes to the endpoint that task started on (its prompts share a prefix, so the
server's prefix cache is reused). The task is named by :data:`endpoint_key`, a context variable the task runners
set (``execution.work``); calls made outside any task are simply least-loaded. An endpoint whose request fails (a
timeout, a refused connection, a 5xx) is skipped for ``cooldown_s`` and the tasks stuck to it move on; the failed
call itself is retried by the caller's retry policy, which then lands on another endpoint.

Every replica is a full :class:`OpenAICompatibleChat`, so usage accounting and per-choice metadata are unchanged.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from langgraph_stl.models.openai_compat import OpenAICompatibleChat

endpoint_key: ContextVar[str | None] = ContextVar("stl_endpoint_key", default=None)
"""The task the current calls belong to (sticky routing); ``None`` outside tasks."""


class EndpointPool:
    """Least-loaded choice among healthy endpoints, sticky per key (an LRU of ``max_keys`` keys); thread-safe."""

    def __init__(self, urls: Sequence[str], *, cooldown_s: float = 30.0, max_keys: int = 10_000) -> None:
        self.urls = list(urls)
        self.in_flight = [0] * len(self.urls)
        self.served = [0] * len(self.urls)
        self.failed = [0] * len(self.urls)
        self._down_until = [0.0] * len(self.urls)
        self._sticky: OrderedDict[str, int] = OrderedDict()
        self._cooldown_s = cooldown_s
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def acquire(self, key: str | None = None) -> int:
        """The endpoint for one request of ``key``'s task (counted in flight until :meth:`release`)."""
        with self._lock:
            now = time.monotonic()
            healthy = [i for i, t in enumerate(self._down_until) if t <= now] or list(range(len(self.urls)))
            index = self._sticky.get(key) if key is not None else None
            if index is None or index not in healthy:
                index = min(healthy, key=lambda i: (self.in_flight[i], i))
                if key is not None:
                    self._sticky[key] = index
                    while len(self._sticky) > self._max_keys:
                        self._sticky.popitem(last=False)
            elif key is not None:
                self._sticky.move_to_end(key)
            self.in_flight[index] += 1
            return index

    @contextmanager
    def routed(self, key: str | None = None) -> Iterator[int]:
        """One request's endpoint: released however the request ends (a cancelled one too), marked failed on an
        exception."""
        index = self.acquire(key)
        failed = False
        try:
            yield index
        except Exception:
            failed = True
            raise
        finally:
            self.release(index, failed=failed)

    def release(self, index: int, *, failed: bool = False) -> None:
        with self._lock:
            self.in_flight[index] -= 1
            if failed:
                self.failed[index] += 1
                self._down_until[index] = time.monotonic() + self._cooldown_s
            else:
                self.served[index] += 1


class RoutedChat(OpenAICompatibleChat):
    """An :class:`OpenAICompatibleChat` whose requests go to one of several replicas (see the module doc)."""

    _pool: EndpointPool = PrivateAttr()
    _replicas: list[OpenAICompatibleChat] = PrivateAttr()

    @classmethod
    def over(cls, urls: Sequence[str], *, cooldown_s: float = 30.0, **kwargs: Any) -> RoutedChat:
        """One model over ``urls`` (each an OpenAI-compatible ``.../v1``); ``kwargs`` as for every replica."""
        if len(urls) < 2:
            raise ValueError("a routed model needs at least two endpoints")
        routed = cls(base_url=urls[0], **kwargs)
        routed._replicas = [OpenAICompatibleChat(base_url=url, **kwargs) for url in urls]
        routed._pool = EndpointPool(urls, cooldown_s=cooldown_s)
        return routed

    @property
    def pool(self) -> EndpointPool:
        return self._pool

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._pool.routed(endpoint_key.get()) as index:
            return self._replicas[index]._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._pool.routed(endpoint_key.get()) as index:
            return await self._replicas[index]._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._pool.routed(endpoint_key.get()) as index:
            yield from self._replicas[index]._stream(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        with self._pool.routed(endpoint_key.get()) as index:
            async for chunk in self._replicas[index]._astream(messages, stop=stop, run_manager=run_manager, **kwargs):
                yield chunk
