"""Calling chat models: many prompts at once, the right way per backend, with retries.

Server backends (llama.cpp, vLLM, OpenAI) and the project's batched transformers models get concurrent requests
(one ``agenerate`` over all prompts), so the server batches them and reuses their shared prefix, and the
transformers micro-batcher runs them as one ``generate``. Local transformers models
(langchain-huggingface) have no async path and batch inside one ``batch`` call, run in a worker thread so the
event loop (and ``langgraph dev``'s blocking-call detector) stays free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.runnables import RunnableConfig

CallStyle = Literal["auto", "batch", "concurrent"]


class ModelCallError(RuntimeError):
    """A model call still failed after all retries; the search ends and records the message."""


def _is_local_batch_model(model: BaseChatModel) -> bool:
    """Transformers pipelines (langchain-huggingface) batch in one call and have no async generation."""
    return type(model).__module__.startswith("langchain_huggingface") or bool(getattr(model, "stl_batched", False))


def message_text(message: BaseMessage) -> str:
    """The text of a reply, whatever the content layout."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)


async def generate_many(
    model: BaseChatModel,
    prompts: Sequence[str],
    *,
    config: RunnableConfig | None = None,
    stop: list[str] | None = None,
    call_style: CallStyle = "auto",
    max_concurrency: int = 16,
    max_retries: int = 3,
    retry_delay: float = 0.5,
) -> list[str]:
    """Reply texts for ``prompts`` (one user message each), in order.

    Server-backed and batched-transformers models get one ``agenerate`` over all prompts: the requests run
    concurrently and the call opens one callback group (per-request ``ainvoke``s inside a graph cost about twice as
    much in callback bookkeeping). A failed group is retried as a whole with exponential backoff; after
    ``max_retries`` retries a :class:`ModelCallError` names the error.
    """
    if not prompts:
        return []
    style = call_style
    if style == "auto":
        style = "batch" if _is_local_batch_model(model) else "concurrent"
    inputs: list[list[BaseMessage]] = [[HumanMessage(content=p)] for p in prompts]
    cfg: RunnableConfig = config or {}
    last_error: Exception | None = None
    for attempt in range(max_retries + 1):
        try:
            if style == "batch":
                runnable: Any = model.bind(stop=stop) if stop else model
                run_config: RunnableConfig = {**cfg, "max_concurrency": max_concurrency}
                messages = await asyncio.to_thread(runnable.batch, inputs, run_config)
                return [message_text(m) for m in messages]
            result = await model.agenerate(
                inputs, stop=stop, callbacks=cfg.get("callbacks"), tags=cfg.get("tags"), metadata=cfg.get("metadata")
            )
            return [message_text(cast(ChatGeneration, gens[0]).message) for gens in result.generations]
        except Exception as exc:  # any backend error: connection, timeout, server 5xx, bad response
            last_error = exc
            if attempt < max_retries and retry_delay > 0:
                await asyncio.sleep(retry_delay * 2**attempt)
    raise ModelCallError(
        f"{len(prompts)} model calls failed after {max_retries} retries: {type(last_error).__name__}: {last_error}"
    )
