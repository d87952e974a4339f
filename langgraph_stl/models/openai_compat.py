"""``ChatOpenAI`` for OpenAI-compatible servers (llama.cpp, vLLM, Ollama, OpenAI), with per-choice results fixed.

Two langchain-openai behaviours break ``n > 1`` search expansions, so this subclass repairs them in one place:
all choices share one ``generation_info`` dict (every choice ends up with the *last* choice's ``logprobs`` and
``finish_reason``), and every choice carries the whole call's usage. For llama.cpp, whose ``completion_tokens``
counts only the first choice, it also asks for per-token logprobs when ``n > 1`` and counts each choice exactly
from them. A managed server that died surfaces as :class:`LlamaServerError` with its log, not a connection error.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import httpx
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr, model_validator

from langgraph_stl.models.server import ManagedLlamaServer
from langgraph_stl.models.usage import choice_usage

__all__ = ["OpenAICompatibleChat"]


class _PerLoopClient:
    """Stands in for ``AsyncOpenAI`` (or one of its resources): each event loop gets its own client.

    langchain-openai shares one cached async httpx client between all models; its pooled connections belong to the
    loop that opened them, so a second ``asyncio.run`` (or pytest-asyncio's per-test loop) fails with "Event loop is
    closed". Attribute access here resolves to a copy of the root client with a fresh httpx client for the running
    loop; clients of closed loops are dropped.
    """

    def __init__(self, root: openai.AsyncOpenAI, path: tuple[str, ...] = ()) -> None:
        self._root = root
        self._path = path
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def resource(self, *path: str) -> _PerLoopClient:
        """A view of ``root.<path>`` (e.g. ``chat.completions``) sharing this object's per-loop clients."""
        view = _PerLoopClient(self._root, path)
        view._clients, view._lock = self._clients, self._lock
        return view

    def current(self) -> openai.AsyncOpenAI:
        """The client of the running event loop (the root client outside any loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._root
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                for stale in [old for old in self._clients if old.is_closed()]:
                    del self._clients[stale]
                client = self._clients[loop] = self._root.copy(http_client=openai.DefaultAsyncHttpxClient())
            return client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_root", "_path", "_clients", "_lock"):  # copy/pickle probes
            raise AttributeError(name)
        target: Any = self.current()
        for part in self._path:
            target = getattr(target, part)
        return getattr(target, name)


class OpenAICompatibleChat(ChatOpenAI):
    """A ``ChatOpenAI`` whose results keep per-choice metadata and usage exact (see the module docstring)."""

    count_choices_with_logprobs: bool = False
    """Request logprobs when ``n > 1`` so each choice's tokens can be counted (needed for llama.cpp)."""
    report_name: str | None = None
    """Name used in usage accounting and ``response_metadata`` (default: the requested model)."""

    _server: ManagedLlamaServer | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _client_per_event_loop(self) -> OpenAICompatibleChat:
        """Give every event loop its own async client (see :class:`_PerLoopClient`), unless the caller chose one."""
        if self.http_async_client is None and isinstance(self.root_async_client, openai.AsyncOpenAI):
            per_loop = _PerLoopClient(self.root_async_client)
            self.root_async_client = per_loop
            self.async_client = per_loop.resource("chat", "completions")
        return self

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Serialized models name this class, so ``langchain_core.load`` rebuilds it (not a plain ``ChatOpenAI``)."""
        return ["langgraph_stl", "models", "openai_compat"]

    @property
    def server(self) -> ManagedLlamaServer | None:
        """The managed llama.cpp server behind this model, if this process started it."""
        return self._server

    @property
    def reported_name(self) -> str:
        return self.report_name or self.model_name

    def get_token_ids(self, text: str) -> list[int]:
        """llama.cpp's own ``/tokenize`` for a managed server; tiktoken (downloaded once) for everything else."""
        if self._server is None:
            return super().get_token_ids(text)
        self._server.check_alive()
        response = httpx.post(
            f"{self._server.address}/tokenize",
            json={"content": text},
            headers={"Authorization": f"Bearer {self._server.config.api_key}"},
            timeout=60,
        )
        response.raise_for_status()
        return [int(t) for t in response.json()["tokens"]]

    def attach_server(self, server: ManagedLlamaServer) -> None:
        self._server = server

    def close(self) -> None:
        """Stop the managed server (shared with every model loaded for the same GGUF/adapter)."""
        if self._server is not None:
            self._server.close()

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        if self.count_choices_with_logprobs and (payload.get("n") or 1) > 1 and not payload.get("logprobs"):
            payload["logprobs"] = True
        return payload

    def _create_chat_result(
        self, response: dict[str, Any] | openai.BaseModel, generation_info: dict[str, Any] | None = None
    ) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        # `parsed` (structured output) may hold arbitrary objects: leave it out of the dump, as the parent does
        exclude = {"choices": {"__all__": {"message": {"parsed"}}}}
        data = response if isinstance(response, dict) else response.model_dump(exclude=exclude, warnings=False)
        choices: list[dict[str, Any]] = data.get("choices") or []
        for gen, choice in zip(result.generations, choices, strict=True):
            info = {k: v for k, v in (gen.generation_info or {}).items() if k != "logprobs"}
            info["finish_reason"] = choice.get("finish_reason")
            info["model_name"] = self.reported_name
            if choice.get("logprobs") is not None:
                info["logprobs"] = choice["logprobs"]
            gen.generation_info = info
        usage = data.get("usage") or {}
        if len(choices) > 1 and usage:
            prompt = int(usage.get("prompt_tokens") or 0)
            counted = [len((c.get("logprobs") or {}).get("content") or []) for c in choices]
            # Without per-choice counts keep the server's total, charged to the first choice.
            outputs = counted if all(counted) else [int(usage.get("completion_tokens") or 0)] + [0] * (len(choices) - 1)
            for gen, meta in zip(result.generations, choice_usage(prompt, outputs), strict=True):
                gen.message.usage_metadata = meta  # type: ignore[attr-defined]
            result.llm_output = {
                **(result.llm_output or {}),
                "token_usage": {**usage, "completion_tokens": sum(outputs), "total_tokens": prompt + sum(outputs)},
            }
        result.llm_output = {**(result.llm_output or {}), "model_name": self.reported_name}
        if isinstance(result.llm_output.get("token_usage"), dict):
            # llama.cpp reports unset details as null; langchain-openai's multi-prompt merge warns on each one
            result.llm_output["token_usage"] = _without_nulls(result.llm_output["token_usage"])
        return result

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._check_server(None)
        try:
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except openai.APIConnectionError as exc:
            self._check_server(exc)
            raise

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._check_server(None)
        try:
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except openai.APIConnectionError as exc:
            self._check_server(exc)
            raise

    def _check_server(self, cause: BaseException | None) -> None:
        if self._server is None:
            return
        if cause is not None:
            self._server.wait_exit(1.0)  # a request failing mid-crash can beat the exit status by a few ms
        try:
            self._server.check_alive()
        except Exception as exc:
            raise exc from cause


def _without_nulls(usage: dict[str, Any]) -> dict[str, Any]:
    """``usage`` without null entries, recursively (``prompt_tokens_details`` holds several)."""
    return {k: _without_nulls(v) if isinstance(v, dict) else v for k, v in usage.items() if v is not None}
