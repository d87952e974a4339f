"""Exact token accounting for every backend.

Chat models built by :func:`langgraph_stl.models.load_chat_model` keep one invariant: ``llm_output["token_usage"]``
holds the whole call's prompt/completion tokens, and the per-choice ``AIMessage.usage_metadata`` values *add up* to
the same totals (the prompt is charged to the first choice). Stock ``ChatOpenAI`` instead copies the full call usage
onto every choice when ``n > 1``, and llama.cpp reports only the first choice's completion tokens; both are corrected
where the loaded models produce their results (see :func:`choice_usage`). The callback below therefore reads
``llm_output`` first and falls back to summing message usage (streamed runs, foreign models).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager, BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableConfig

__all__ = ["TokenUsageCallback", "areport_usage", "choice_usage", "usage_name"]


def choice_usage(prompt_tokens: int, output_tokens: Sequence[int]) -> list[UsageMetadata]:
    """Per-choice usage whose sum is the call total: the first choice carries the prompt tokens."""
    return [
        UsageMetadata(
            input_tokens=prompt_tokens if i == 0 else 0,
            output_tokens=out,
            total_tokens=(prompt_tokens if i == 0 else 0) + out,
        )
        for i, out in enumerate(output_tokens)
    ]


class TokenUsageCallback(BaseCallbackHandler):
    """Thread-safe per-model totals of input/output tokens and calls, for any chat model.

    Pass it in ``config={"callbacks": [cb]}`` of a graph or model call; read :meth:`as_dict`. Models are keyed by
    ``llm_output["model_name"]`` (the name given to :func:`load_chat_model`), else by the message's
    ``response_metadata["model_name"]``, else ``"unknown"``.
    """

    raise_error = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._usage: dict[str, dict[str, int]] = {}

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        name, input_tokens, output_tokens = _usage_of(response)
        with self._lock:
            entry = self._usage.setdefault(name, {"input_tokens": 0, "output_tokens": 0, "calls": 0})
            entry["input_tokens"] += input_tokens
            entry["output_tokens"] += output_tokens
            entry["calls"] += 1

    def as_dict(self) -> dict[str, dict[str, int]]:
        """``{model: {"input_tokens", "output_tokens", "calls"}}`` (a copy)."""
        with self._lock:
            return {name: dict(entry) for name, entry in self._usage.items()}

    def reset(self) -> None:
        with self._lock:
            self._usage.clear()


def _usage_of(response: LLMResult) -> tuple[str, int, int]:
    llm_output = response.llm_output or {}
    messages = [
        gen.message
        for group in response.generations
        for gen in group
        if isinstance(gen, ChatGeneration) and isinstance(gen.message, AIMessage)
    ]
    name = llm_output.get("model_name") or next(
        (m.response_metadata["model_name"] for m in messages if m.response_metadata.get("model_name")), "unknown"
    )
    token_usage = llm_output.get("token_usage")
    if isinstance(token_usage, dict) and "prompt_tokens" in token_usage:
        return str(name), int(token_usage["prompt_tokens"]), int(token_usage.get("completion_tokens") or 0)
    input_tokens = sum(m.usage_metadata["input_tokens"] for m in messages if m.usage_metadata)
    output_tokens = sum(m.usage_metadata["output_tokens"] for m in messages if m.usage_metadata)
    return str(name), input_tokens, output_tokens


def usage_name(model: BaseChatModel) -> str:
    """The key a model's usage is counted under (what its own calls put in ``llm_output["model_name"]``)."""
    for attr in ("reported_name", "model_id", "model_name", "model"):
        name = getattr(model, attr, None)
        if isinstance(name, str) and name:
            return name
    return type(model).__name__


async def areport_usage(
    model: BaseChatModel,
    config: RunnableConfig | None,
    prompts: Sequence[Sequence[BaseMessage]],
    *,
    input_tokens: int,
    output_tokens: int,
) -> None:
    """Tell the config's callbacks about model work done outside ``invoke`` (the logits readout), as one call.

    Token counters and tracers then see it like any other chat-model call.
    """
    cfg = config or {}
    manager = AsyncCallbackManager.configure(
        inheritable_callbacks=cfg.get("callbacks"),
        inheritable_tags=cfg.get("tags"),
        inheritable_metadata=cfg.get("metadata"),
    )
    if not manager.handlers:
        return
    runs = await manager.on_chat_model_start({"name": usage_name(model)}, [list(p) for p in prompts[:1]])
    result = LLMResult(
        generations=[[ChatGeneration(message=AIMessage(content=""))]],
        llm_output={
            "model_name": usage_name(model),
            "token_usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens},
        },
    )
    for run in runs:
        await run.on_llm_end(result)
