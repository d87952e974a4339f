"""Calling chat models: many prompts at once, the right way per backend, with retries.

Server backends (llama.cpp, vLLM, OpenAI) get concurrent requests (``abatch``: one ``ainvoke`` per prompt under a
concurrency cap), so the server batches them and reuses their shared prefix. Local transformers models
(langchain-huggingface) have no async path and batch inside one ``batch`` call, run in a worker thread so the
event loop (and ``langgraph dev``'s blocking-call detector) stays free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
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

    Failed prompts are retried (only those) with exponential backoff; after ``max_retries`` retries a
    :class:`ModelCallError` names the last error.
    """
    if not prompts:
        return []
    style = call_style
    if style == "auto":
        style = "batch" if _is_local_batch_model(model) else "concurrent"
    runnable: Any = model.bind(stop=stop) if stop else model
    inputs: list[list[BaseMessage]] = [[HumanMessage(content=p)] for p in prompts]
    run_config: RunnableConfig = {**(config or {}), "max_concurrency": max_concurrency}
    results: list[BaseMessage | Exception | None] = [None] * len(inputs)
    todo = list(range(len(inputs)))
    for attempt in range(max_retries + 1):
        batch = [inputs[i] for i in todo]
        if style == "batch":
            outs = await asyncio.to_thread(runnable.batch, batch, run_config, return_exceptions=True)
        else:
            outs = await runnable.abatch(batch, run_config, return_exceptions=True)
        for i, out in zip(todo, outs, strict=True):
            results[i] = out
        todo = [i for i in todo if isinstance(results[i], Exception)]
        if not todo:
            break
        if attempt < max_retries and retry_delay > 0:
            await asyncio.sleep(retry_delay * 2**attempt)
    if todo:
        err = results[todo[0]]
        raise ModelCallError(
            f"{len(todo)} of {len(prompts)} model calls failed after {max_retries} retries: {type(err).__name__}: {err}"
        )
    return [message_text(cast(BaseMessage, r)) for r in results]
