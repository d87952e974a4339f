"""Calling chat models: many prompts at once, through the Runnable interface, named and tagged per role.

A model is any chat-model Runnable: a ``BaseChatModel`` or one wrapped by ``.bind(...)``, ``.with_retry()``,
``.with_fallbacks([...])``, ``.configurable_alternatives(...)``. Wrapped models get ``batch``/``abatch`` with the
caller's config (so configurable fields and fallbacks see it). A bare ``BaseChatModel`` on the async path gets one
``agenerate`` over all prompts: the requests run concurrently (the server batches them and reuses their shared
prefix; the transformers micro-batcher runs them as one ``generate``) under one callback group, where per-request
``ainvoke``s inside a graph cost about twice as much in callback bookkeeping. Stock langchain-huggingface models
have no async generation and batch inside one sync ``batch`` call, run in a worker thread.

Every call carries the run name and tags ``stl:<role>`` plus the environment name, so LangSmith traces read
naturally; value-model calls are also tagged ``nostream`` unless asked otherwise, so ``stream_mode="messages"``
shows the agent's messages, not the value model's rationales.

Transport failures are not retried here: the graph's model-calling nodes carry a :data:`MODEL_RETRY` policy that
retries only :func:`is_transient` errors. One retry layer per kind of failure: stacked layers multiply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.constants import TAG_NOSTREAM
from langgraph.types import RetryPolicy

CallStyle = Literal["auto", "batch", "concurrent"]
Role = Literal["policy", "value"]
ChatModelLike: TypeAlias = Runnable[LanguageModelInput, BaseMessage]
"""A chat model or any Runnable wrapping one (``with_retry``, ``with_fallbacks``, ``bind``, configurable...)."""

_TRANSIENT_STATUS = frozenset({408, 429})


def is_transient(exc: BaseException) -> bool:
    """Whether a failed model call is worth repeating: timeouts, dropped or refused connections, and HTTP 408/429/5xx
    answers (request timeouts, rate limits, overloaded or restarting servers), also when wrapped as the ``__cause__`` of
    another error. Programming and input errors (``TypeError``, ``ValueError``, a 400 or 404...) never are."""
    import httpx

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (TimeoutError, ConnectionError, httpx.TimeoutException, httpx.NetworkError)):
            return True
        if isinstance(current, httpx.RemoteProtocolError):  # the server closed the connection mid-answer
            return True
        status = _status_code(current)
        if status is not None:
            return status in _TRANSIENT_STATUS or status >= 500
        if _is_openai_connection_error(current):
            return True
        current = current.__cause__
    return False


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status of an error that carries a response (openai's ``APIStatusError``, httpx, requests)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _is_openai_connection_error(exc: BaseException) -> bool:
    """openai's ``APIConnectionError``/``APITimeoutError`` (no status; the transport failed)."""
    try:
        import openai
    except ImportError:
        return False
    return isinstance(exc, openai.APIConnectionError)


MODEL_RETRY = RetryPolicy(max_attempts=4, initial_interval=0.5, backoff_factor=2.0, retry_on=is_transient)
"""Default retry policy of the graph's model-calling nodes: up to 4 attempts, 0.5 s, 1 s, 2 s apart (with jitter),
for :func:`is_transient` errors only."""


def base_chat_model(model: Any) -> BaseChatModel | None:
    """The chat model inside wrappers: ``bind``/``with_retry`` (``.bound``), ``with_fallbacks`` (the primary
    ``.runnable``), ``configurable_*`` (the ``.default``); None when there is none."""
    for _ in range(32):  # wrappers nest a few levels deep; a bound guards against cycles
        if isinstance(model, BaseChatModel):
            return model
        inner = next((getattr(model, a) for a in ("bound", "runnable", "default") if hasattr(model, a)), None)
        if inner is None:
            return None
        model = inner
    return None


def model_name(model: Any) -> str:
    """Name of a (possibly wrapped) chat model for reports: ``model_name``/``model`` attribute, else the class."""
    inner = base_chat_model(model) or model
    return str(getattr(inner, "model_name", None) or getattr(inner, "model", None) or type(inner).__name__)


def _is_local_batch_model(model: Any) -> bool:
    """Transformers pipelines (langchain-huggingface) batch in one call and have no async generation."""
    inner = base_chat_model(model)
    return inner is not None and (
        type(inner).__module__.startswith("langchain_huggingface") or bool(getattr(inner, "stl_batched", False))
    )


def role_config(config: RunnableConfig | None, role: Role, env_name: str, *, stream: bool = True) -> RunnableConfig:
    """``config`` plus the run name and tags of a ``role`` model call in environment ``env_name``."""
    cfg: RunnableConfig = dict(config or {})  # type: ignore[assignment]
    tags = [*cfg.get("tags", []), f"stl:{role}", env_name, *([] if stream else [TAG_NOSTREAM])]
    return {**cfg, "run_name": f"stl:{role}", "tags": list(dict.fromkeys(tags))}


def message_text(message: BaseMessage) -> str:
    """The text of a reply, whatever the content layout."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)


@dataclass(frozen=True, slots=True)
class Generate:
    """Reply texts for ``prompts`` (one user message each), in order: a :class:`~.twins.Call` for the drivers."""

    model: ChatModelLike
    prompts: Sequence[str]
    config: RunnableConfig
    stop: list[str] | None = None
    call_style: CallStyle = "auto"
    max_concurrency: int = 16

    def _inputs(self) -> list[list[BaseMessage]]:
        return [[HumanMessage(content=p)] for p in self.prompts]

    def _batch(self) -> list[str]:
        kwargs: dict[str, Any] = {"stop": self.stop} if self.stop else {}
        config: RunnableConfig = {**self.config, "max_concurrency": self.max_concurrency}
        return [message_text(m) for m in self.model.batch(cast(Any, self._inputs()), config, **kwargs)]

    def run(self) -> list[str]:
        return self._batch() if self.prompts else []

    async def arun(self) -> list[str]:
        if not self.prompts:
            return []
        style = self.call_style
        if style == "auto":
            style = "batch" if _is_local_batch_model(self.model) else "concurrent"
        if style == "batch":
            return await asyncio.to_thread(self._batch)
        if isinstance(self.model, BaseChatModel):
            cfg = self.config
            result = await self.model.agenerate(
                self._inputs(),
                stop=self.stop,
                callbacks=cfg.get("callbacks"),
                tags=cfg.get("tags"),
                metadata=cfg.get("metadata"),
                run_name=cfg.get("run_name"),
            )
            return [message_text(cast(ChatGeneration, gens[0]).message) for gens in result.generations]
        kwargs: dict[str, Any] = {"stop": self.stop} if self.stop else {}
        config: RunnableConfig = {**self.config, "max_concurrency": self.max_concurrency}
        return [message_text(m) for m in await self.model.abatch(cast(Any, self._inputs()), config, **kwargs)]
