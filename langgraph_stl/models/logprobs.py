"""Next-token log-probabilities after a chat prompt plus an assistant prefix: the value model's cheap readout.

A value model prompted to answer "...value: " can be read in one forward step instead of by sampling: the top-k
next-token distribution after the prefix gives an expected score. Transformers models do one batched forward pass
(left padding, last position only). llama.cpp servers get the chat-templated prompt from ``/apply-template``, append
the prefix and ask ``/v1/completions`` for ``max_tokens=1`` with ``logprobs=top_k`` (requests run concurrently, so
they batch in the server's slots and share cached prefixes). Other OpenAI-compatible servers fall back to chat
completions with ``top_logprobs``, which cannot take an assistant prefix.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_openai_messages

__all__ = ["anext_token_logprobs", "next_token_logprobs"]

_MAX_CONCURRENT_REQUESTS = 16
_TEMPLATING: dict[str, bool] = {}
"""Whether a server (by base URL) offers llama.cpp's ``/apply-template``; probed once per process."""


def next_token_logprobs(
    model: BaseChatModel, prompts: Sequence[Sequence[BaseMessage]], assistant_prefix: str = "", top_k: int = 20
) -> list[dict[str, float]]:
    """Per prompt, ``{token_text: logprob}`` of the ``top_k`` most likely next tokens after the prefix.

    Tokens that decode to the same text are merged (their probabilities add up).
    """
    if _is_hf(model, top_k):
        return _hf_logprobs(model, prompts, assistant_prefix, top_k)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: run the concurrent requests in a private one
        return asyncio.run(_server_logprobs(model, prompts, assistant_prefix, top_k))
    raise RuntimeError("next_token_logprobs was called inside a running event loop: await anext_token_logprobs instead")


async def anext_token_logprobs(
    model: BaseChatModel, prompts: Sequence[Sequence[BaseMessage]], assistant_prefix: str = "", top_k: int = 20
) -> list[dict[str, float]]:
    """Async twin of :func:`next_token_logprobs` (transformers work runs in a worker thread)."""
    if _is_hf(model, top_k):
        return await asyncio.to_thread(_hf_logprobs, model, prompts, assistant_prefix, top_k)
    return await _server_logprobs(model, prompts, assistant_prefix, top_k)


def _is_hf(model: BaseChatModel, top_k: int) -> bool:
    """Validate the arguments; True for a transformers model, False for an OpenAI-compatible server."""
    from langchain_openai import ChatOpenAI

    if not 1 <= top_k <= 100:
        raise ValueError(f"top_k must be between 1 and 100, got {top_k}")
    if isinstance(model, ChatOpenAI):
        return False
    try:
        from langgraph_stl.models.hf import BatchedChatHuggingFace
    except ImportError:  # the `local` extra is not installed, so this cannot be a transformers model
        BatchedChatHuggingFace = None  # type: ignore[assignment,misc]
    if BatchedChatHuggingFace is not None and isinstance(model, BatchedChatHuggingFace):
        return True
    raise TypeError(f"next_token_logprobs needs a model from load_chat_model(), got {type(model).__name__}")


def _merge(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    merged: dict[str, float] = {}
    for token, logprob in pairs:
        merged[token] = float(logprob) if token not in merged else math.log(math.exp(merged[token]) + math.exp(logprob))
    return merged


def _hf_logprobs(
    model: Any, prompts: Sequence[Sequence[BaseMessage]], prefix: str, top_k: int
) -> list[dict[str, float]]:
    import torch

    tokenizer = model.tokenizer
    pad_id = tokenizer.pad_token_id
    encoded = [model.encode(model.prompt_text(p, prefix)) for p in prompts]
    results: list[dict[str, float]] = []
    for start in range(0, len(encoded), model.max_batch_size):
        chunk = encoded[start : start + model.max_batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in chunk])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens start at position 0
        with torch.inference_mode():
            logits = model.hf_model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
            ).logits[:, -1, :]
        values, indices = logits.float().log_softmax(-1).topk(top_k)
        for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True):
            results.append(_merge((tokenizer.decode([i]), v) for v, i in zip(row_values, row_indices, strict=True)))
    return results


async def _server_logprobs(
    model: Any, prompts: Sequence[Sequence[BaseMessage]], prefix: str, top_k: int
) -> list[dict[str, float]]:
    base_url = str(model.openai_api_base or "https://api.openai.com/v1").rstrip("/")
    key = model.openai_api_key.get_secret_value() if model.openai_api_key else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    extra: dict[str, Any] = dict(model.extra_body or {})  # e.g. the per-request LoRA scale
    limit = asyncio.Semaphore(_MAX_CONCURRENT_REQUESTS)
    root = base_url.removesuffix("/v1")
    async with httpx.AsyncClient(headers=headers, timeout=model.request_timeout or 600) as client:
        if base_url not in _TEMPLATING:
            probe = await client.post(f"{root}/apply-template", json={"messages": [{"role": "user", "content": "x"}]})
            if probe.status_code in (401, 403):
                probe.raise_for_status()  # a wrong key, not a missing endpoint
            _TEMPLATING[base_url] = probe.status_code == 200
        templated = _TEMPLATING[base_url]

        async def one(messages: Sequence[BaseMessage]) -> dict[str, float]:
            chat = convert_to_openai_messages(list(messages))
            async with limit:
                if templated:
                    response = await client.post(f"{root}/apply-template", json={"messages": chat})
                    response.raise_for_status()
                    body = {"prompt": response.json()["prompt"] + prefix, "logprobs": top_k}
                    response = await client.post(
                        f"{base_url}/completions",
                        json={"model": model.model_name, "max_tokens": 1, "temperature": 0, **body, **extra},
                    )
                elif prefix:
                    raise NotImplementedError(
                        f"{base_url} has no /apply-template (not llama.cpp): an assistant prefix cannot be sent"
                    )
                else:
                    body = {"messages": chat, "logprobs": True, "top_logprobs": min(top_k, 20)}
                    response = await client.post(
                        f"{base_url}/chat/completions",
                        json={"model": model.model_name, "max_tokens": 1, "temperature": 0, **body, **extra},
                    )
            response.raise_for_status()
            return _parse_top(response.json()["choices"][0]["logprobs"])

        return list(await asyncio.gather(*(one(p) for p in prompts)))


def _parse_top(logprobs: dict[str, Any]) -> dict[str, float]:
    """Top alternatives of the first token, in the chat/llama.cpp format or the legacy completions format."""
    if logprobs.get("content"):
        return _merge((alt["token"], alt["logprob"]) for alt in logprobs["content"][0]["top_logprobs"])
    return _merge(logprobs["top_logprobs"][0].items())
