"""Next-token log-probabilities after a chat prompt plus an assistant prefix: the value model's cheap readout.

A value model prompted to answer "...value: " can be read in one forward step instead of by sampling: the top-k
next-token distribution after the prefix gives an expected score. Transformers models do one batched forward pass
(left padding, last position only). llama.cpp servers get the chat-templated prompt from ``/apply-template``, append
the prefix and ask ``/v1/completions`` for ``max_tokens=1`` with ``logprobs=top_k`` (requests run concurrently, so
they batch in the server's slots and share cached prefixes). Other OpenAI-compatible servers fall back to chat
completions with ``top_logprobs``, which cannot take an assistant prefix.

:func:`aread_logprobs` adds an optional second step (the distribution after ``prefix + follow_up``, for the prompts
whose first distribution asks for it: SmolLM2 writes "10" as "1" then "0"). On a server both steps of one prompt
run back to back with at most one request per slot in flight, so the second step finds the first one's prompt in
the slot's cache and reads one token. Readouts report the prompt tokens they read, so callers can account for them.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_openai_messages

__all__ = ["Readout", "anext_token_logprobs", "aread_logprobs", "next_token_logprobs"]

_MAX_CONCURRENT_REQUESTS = 16
_SERVERS: dict[str, tuple[bool, int]] = {}
"""Per server base URL: whether it offers llama.cpp's ``/apply-template``, and its slot count; probed once."""
_SLOT_LIMITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)
"""Per event loop and server: one readout in flight per slot, shared by all concurrent callers (sibling groups)."""


@dataclass(frozen=True, slots=True)
class Readout:
    """One prompt's next-token distribution, the optional second step's, and the prompt tokens both read."""

    first: dict[str, float]
    second: dict[str, float] | None
    prompt_tokens: int
    reads: int


def next_token_logprobs(
    model: BaseChatModel, prompts: Sequence[Sequence[BaseMessage]], assistant_prefix: str = "", top_k: int = 20
) -> list[dict[str, float]]:
    """Per prompt, ``{token_text: logprob}`` of the ``top_k`` most likely next tokens after the prefix.

    Tokens that decode to the same text are merged (their probabilities add up).
    """
    if _is_hf(model, top_k):
        return [dist for dist, _ in _hf_logprobs(model, prompts, assistant_prefix, top_k)]
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: run the concurrent requests in a private one
        return asyncio.run(anext_token_logprobs(model, prompts, assistant_prefix, top_k))
    raise RuntimeError("next_token_logprobs was called inside a running event loop: await anext_token_logprobs instead")


async def anext_token_logprobs(
    model: BaseChatModel, prompts: Sequence[Sequence[BaseMessage]], assistant_prefix: str = "", top_k: int = 20
) -> list[dict[str, float]]:
    """Async twin of :func:`next_token_logprobs` (transformers work runs in a worker thread)."""
    return [r.first for r in await aread_logprobs(model, prompts, assistant_prefix, top_k)]


async def aread_logprobs(
    model: BaseChatModel,
    prompts: Sequence[Sequence[BaseMessage]],
    assistant_prefix: str = "",
    top_k: int = 20,
    *,
    follow_up: str = "",
    ask: Callable[[dict[str, float]], bool] | None = None,
) -> list[Readout]:
    """Per prompt, the top-k next-token distribution after the prefix and, where ``ask(first)`` is true, the one
    after ``prefix + follow_up`` (``second`` is None elsewhere)."""
    read = _Read(assistant_prefix, top_k, follow_up, ask)
    if _is_hf(model, top_k):
        return await asyncio.to_thread(_hf_read, model, prompts, read)
    return await _server_read(model, prompts, read)


@dataclass(frozen=True, slots=True)
class _Read:
    """What to read: the distribution after ``prefix``, then after ``prefix + follow_up`` where ``ask`` says so."""

    prefix: str
    top_k: int
    follow_up: str
    ask: Callable[[dict[str, float]], bool] | None

    def wants_second(self, first: dict[str, float]) -> bool:
        return self.ask is not None and self.ask(first)


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


def _hf_read(model: Any, prompts: Sequence[Sequence[BaseMessage]], read: _Read) -> list[Readout]:
    first = _hf_logprobs(model, prompts, read.prefix, read.top_k)
    wanted = [i for i, (dist, _) in enumerate(first) if read.wants_second(dist)]
    again = _hf_logprobs(model, [prompts[i] for i in wanted], read.prefix + read.follow_up, read.top_k)
    second = dict(zip(wanted, again, strict=True))
    out = []
    for i, (dist, n) in enumerate(first):
        if i in second:
            out.append(Readout(dist, second[i][0], n + second[i][1], 2))
        else:
            out.append(Readout(dist, None, n, 1))
    return out


def _hf_logprobs(
    model: Any, prompts: Sequence[Sequence[BaseMessage]], prefix: str, top_k: int
) -> list[tuple[dict[str, float], int]]:
    """Per prompt, the merged top-k distribution and the prompt length in tokens (one batched forward pass)."""
    import torch

    tokenizer = model.tokenizer
    pad_id = tokenizer.pad_token_id
    encoded = [model.encode(model.prompt_text(p, prefix)) for p in prompts]
    results: list[tuple[dict[str, float], int]] = []
    for start in range(0, len(encoded), model.max_batch_size):
        chunk = encoded[start : start + model.max_batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in chunk], device=model.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens start at position 0
        with torch.inference_mode():
            logits = model.hf_model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
            ).logits[:, -1, :]
        values, indices = logits.float().log_softmax(-1).topk(top_k)
        for ids, row_values, row_indices in zip(chunk, values.tolist(), indices.tolist(), strict=True):
            dist = _merge((tokenizer.decode([i]), v) for v, i in zip(row_values, row_indices, strict=True))
            results.append((dist, len(ids)))
    return results


async def _server_read(model: Any, prompts: Sequence[Sequence[BaseMessage]], read: _Read) -> list[Readout]:
    if getattr(model, "server", None) is not None:
        model.server.check_alive()  # a closed or dead managed server: say so, not "connection refused"
    base_url = str(model.openai_api_base or "https://api.openai.com/v1").rstrip("/")
    key = model.openai_api_key.get_secret_value() if model.openai_api_key else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    extra: dict[str, Any] = dict(model.extra_body or {})  # e.g. the per-request LoRA scale
    root = base_url.removesuffix("/v1")
    async with httpx.AsyncClient(headers=headers, timeout=model.request_timeout or 600) as client:
        if base_url not in _SERVERS:
            _SERVERS[base_url] = await _probe(client, root)
        templated, slots = _SERVERS[base_url]
        # One prompt per slot across every caller in this loop: a prompt's second step then lands on the slot
        # that still caches its first, and queued prompts do not evict each other's cached prefixes.
        limits = _SLOT_LIMITS.setdefault(asyncio.get_running_loop(), {})
        limit = limits.setdefault(base_url, asyncio.Semaphore(min(slots, _MAX_CONCURRENT_REQUESTS)))

        async def step(chat: list[dict[str, Any]], text: str | None, suffix: str) -> tuple[dict[str, float], int]:
            if text is not None:
                body = {"prompt": text + suffix, "logprobs": read.top_k}
                url = f"{base_url}/completions"
            elif suffix:
                raise NotImplementedError(
                    f"{base_url} has no /apply-template (not llama.cpp): an assistant prefix cannot be sent"
                )
            else:
                body = {"messages": chat, "logprobs": True, "top_logprobs": min(read.top_k, 20)}
                url = f"{base_url}/chat/completions"
            response = await client.post(
                url, json={"model": model.model_name, "max_tokens": 1, "temperature": 0, **body, **extra}
            )
            response.raise_for_status()
            data = response.json()
            return _parse_top(data["choices"][0]["logprobs"]), int((data.get("usage") or {}).get("prompt_tokens") or 0)

        async def one(messages: Sequence[BaseMessage]) -> Readout:
            chat = convert_to_openai_messages(list(messages))
            async with limit:
                text = None
                if templated:
                    response = await client.post(f"{root}/apply-template", json={"messages": chat})
                    response.raise_for_status()
                    text = str(response.json()["prompt"])
                first, n = await step(chat, text, read.prefix)
                if not read.wants_second(first):
                    return Readout(first, None, n, 1)
                second, m = await step(chat, text, read.prefix + read.follow_up)
                return Readout(first, second, n + m, 2)

        return list(await asyncio.gather(*(one(p) for p in prompts)))


async def _probe(client: httpx.AsyncClient, root: str) -> tuple[bool, int]:
    """llama.cpp's ``/apply-template`` and ``/props`` slot count; other servers: no template, many slots."""
    probe = await client.post(f"{root}/apply-template", json={"messages": [{"role": "user", "content": "x"}]})
    if probe.status_code in (401, 403):
        probe.raise_for_status()  # a wrong key, not a missing endpoint
    if probe.status_code != 200:
        return False, _MAX_CONCURRENT_REQUESTS
    props = await client.get(f"{root}/props")
    slots = props.json().get("total_slots") if props.status_code == 200 else None
    return True, int(slots) if isinstance(slots, int) and slots > 0 else _MAX_CONCURRENT_REQUESTS


def _parse_top(logprobs: dict[str, Any]) -> dict[str, float]:
    """Top alternatives of the first token, in the chat/llama.cpp format or the legacy completions format."""
    if logprobs.get("content"):
        return _merge((alt["token"], alt["logprob"]) for alt in logprobs["content"][0]["top_logprobs"])
    return _merge(logprobs["top_logprobs"][0].items())
