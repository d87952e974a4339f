"""Local transformers chat models with real batched generation, sync and async.

``ChatHuggingFace`` runs one pipeline call per prompt and is sync-only. :class:`BatchedChatHuggingFace` keeps its
interface (fields, message conversion, identity) but routes every request through a micro-batcher: requests that
arrive together (``batch``/``abatch``, or concurrent LangGraph nodes) with the same sampling parameters are
left-padded into ONE ``model.generate`` call; ``n > 1`` uses ``num_return_sequences``. ``ainvoke`` awaits the batch
without blocking the event loop. Every ``AIMessage`` carries ``usage_metadata`` counted with the tokenizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list
from langchain_huggingface import ChatHuggingFace
from pydantic import PrivateAttr

from langgraph_stl.models.threads import default_threads
from langgraph_stl.models.usage import choice_usage

if TYPE_CHECKING:
    import torch

__all__ = ["BatchedChatHuggingFace", "load_hf_chat_model"]

_GEN_OPTIONS = frozenset({"temperature", "max_tokens", "n", "seed", "stop", "top_p", "logprobs", "top_logprobs"})


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters of one request; only requests with equal params share a ``generate`` call."""

    max_tokens: int
    temperature: float
    top_p: float
    n: int
    seed: int | None
    stop: tuple[str, ...]
    top_logprobs: int | None  # None: no logprobs; 0: chosen token only

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class _Request:
    prompt_ids: list[int]
    params: GenParams
    future: Future[ChatResult] = field(default_factory=Future)


@dataclass
class _Ticket:
    """``batch``/``abatch`` announce how many requests are on their way, so the batcher waits for all of them."""

    remaining: int


_TICKET: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("stl_hf_batch_ticket", default=None)


class _MicroBatcher:
    """Collects concurrent requests and runs same-parameter groups as one batch on a worker thread.

    The worker lives only while requests are pending (no idle thread keeps the model alive). It waits
    ``window_s`` after the first arrival for company, or up to ``ticket_wait_s`` while an announced batch is still
    arriving, then runs up to ``max_batch`` requests with the first request's parameters.
    """

    def __init__(
        self,
        run: Callable[[list[_Request]], list[ChatResult]],
        max_batch: int,
        window_s: float,
        ticket_wait_s: float = 2.0,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._window_s = window_s
        self._ticket_wait_s = ticket_wait_s
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._tickets: list[_Ticket] = []
        self._worker: threading.Thread | None = None

    def submit(self, request: _Request) -> Future[ChatResult]:
        with self._cond:
            self._pending.append(request)
            ticket = _TICKET.get()
            if ticket is not None and ticket.remaining > 0:
                ticket.remaining -= 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="stl-hf-batcher", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        return request.future

    @contextlib.contextmanager
    def expecting(self, count: int) -> Iterator[None]:
        ticket = _Ticket(count)
        token = _TICKET.set(ticket)
        with self._cond:
            self._tickets.append(ticket)
        try:
            yield
        finally:
            _TICKET.reset(token)
            with self._cond:
                self._tickets.remove(ticket)
                self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._worker = None
                    return
                start = time.monotonic()
                while len(self._pending) < self._max_batch:
                    announced = any(t.remaining > 0 for t in self._tickets)
                    left = start + (self._ticket_wait_s if announced else self._window_s) - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                key = self._pending[0].params
                group = [r for r in self._pending if r.params == key][: self._max_batch]
                self._pending = [r for r in self._pending if r not in group]
            try:
                results = self._run(group)
            except BaseException as exc:  # the callers re-raise it; the worker must survive
                for request in group:
                    request.future.set_exception(exc)
            else:
                for request, result in zip(group, results, strict=True):
                    request.future.set_result(result)


class BatchedChatHuggingFace(ChatHuggingFace):
    """``ChatHuggingFace`` over a local model with batched, async-capable generation and tokenizer usage counts.

    Defaults follow the OpenAI API: ``temperature=None`` means 1.0 (sampling); ``temperature=0`` is greedy.
    """

    max_batch_size: int = 16
    """Most requests one ``generate`` call takes."""
    batch_window_s: float = 0.005
    """How long the first request of a batch waits for concurrent company."""

    _batcher: _MicroBatcher = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._batcher = _MicroBatcher(self._run_batch, self.max_batch_size, self.batch_window_s)

    # Streaming through the pipeline would bypass batching and usage: fall back to invoke (one final chunk).
    _stream = BaseChatModel._stream  # type: ignore[assignment]
    _astream = BaseChatModel._astream  # type: ignore[assignment]

    @property
    def _llm_type(self) -> str:
        return "huggingface-batched"

    @property
    def hf_model(self) -> Any:
        """The underlying ``transformers`` (or ``peft``) model."""
        return self.llm.pipeline.model

    def prompt_text(self, messages: Sequence[BaseMessage], assistant_prefix: str = "") -> str:
        """The chat-templated prompt, ending with the assistant turn header plus ``assistant_prefix``."""
        dicts = [self._to_chatml_format(m) for m in messages]
        text: str = self.tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)
        return text + assistant_prefix

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def get_token_ids(self, text: str) -> list[int]:
        """The model's own tokenizer (the base class would fetch GPT-2's from the Hub: fails offline)."""
        return self.encode(text)

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:  # type: ignore[override]
        configs = self._batch_configs(inputs, config)
        with self._batcher.expecting(min(len(inputs), configs[0]["max_concurrency"] or len(inputs))):
            return super().batch(inputs, configs, return_exceptions=return_exceptions, **kwargs)  # type: ignore[return-value]

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:  # type: ignore[override]
        configs = self._batch_configs(inputs, config)
        with self._batcher.expecting(min(len(inputs), configs[0]["max_concurrency"] or len(inputs))):
            return await super().abatch(inputs, configs, return_exceptions=return_exceptions, **kwargs)  # type: ignore[return-value]

    @staticmethod
    def _batch_configs(
        inputs: list[LanguageModelInput], config: RunnableConfig | list[RunnableConfig] | None
    ) -> list[RunnableConfig]:
        # Runnable.batch uses a thread pool of min(32, cores + 4) workers unless told otherwise; every input needs
        # its own thread to reach the batcher at the same time.
        return [
            c if c.get("max_concurrency") else {**c, "max_concurrency": max(1, len(inputs))}
            for c in get_config_list(config, max(1, len(inputs)))
        ]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        stream: bool | None = None,  # in ChatHuggingFace's signature; never streams
        **kwargs: Any,
    ) -> ChatResult:
        return self._batcher.submit(self._request(messages, stop, kwargs)).result()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        stream: bool | None = None,  # in ChatHuggingFace's signature; never streams
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.wrap_future(self._batcher.submit(self._request(messages, stop, kwargs)))

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> _Request:
        unknown = set(kwargs) - _GEN_OPTIONS
        if unknown:
            raise ValueError(
                f"unsupported generation option(s) for a transformers model: {sorted(unknown)}; "
                f"supported: {sorted(_GEN_OPTIONS)}"
            )
        opts = {name: getattr(self, name) for name in _GEN_OPTIONS} | {k: v for k, v in kwargs.items()}
        stops = stop if stop is not None else opts["stop"]
        top_logprobs = opts["top_logprobs"] if opts["top_logprobs"] is not None else 0 if opts["logprobs"] else None
        params = GenParams(
            max_tokens=int(opts["max_tokens"] or 256),
            temperature=1.0 if opts["temperature"] is None else float(opts["temperature"]),
            top_p=1.0 if opts["top_p"] is None else float(opts["top_p"]),
            n=int(opts["n"] or 1),
            seed=opts["seed"],
            stop=(stops,) if isinstance(stops, str) else tuple(stops or ()),
            top_logprobs=top_logprobs,
        )
        return _Request(self.encode(self.prompt_text(messages)), params)

    def _run_batch(self, requests: list[_Request]) -> list[ChatResult]:
        """One left-padded ``generate`` call for ``requests`` (all with equal :class:`GenParams`)."""
        import torch

        params = requests[0].params
        tokenizer = self.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        width = max(len(r.prompt_ids) for r in requests)
        input_ids = torch.tensor([[pad_id] * (width - len(r.prompt_ids)) + r.prompt_ids for r in requests])
        attention_mask = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in requests])
        copies = 1 if params.greedy else params.n  # greedy choices are identical: decode once, repeat
        options: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": not params.greedy,
            "num_return_sequences": copies,
            "pad_token_id": pad_id,
            "return_dict_in_generate": True,
            "output_logits": params.top_logprobs is not None,
        }
        if not params.greedy:
            options.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            options.update(stop_strings=list(params.stop), tokenizer=tokenizer)
        with torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            out = self.hf_model.generate(input_ids=input_ids, attention_mask=attention_mask, **options)
        generated = out.sequences[:, width:]
        results = []
        for i, request in enumerate(requests):
            rows = [i * copies + k for k in range(copies)] * (params.n if params.greedy else 1)
            choices = [self._choice(generated[row], out.logits, row, params) for row in rows]
            outputs = [count for _, count in choices]
            generations = []
            for (gen_info, _), meta in zip(choices, choice_usage(len(request.prompt_ids), outputs), strict=True):
                text = gen_info.pop("text")
                generations.append(
                    ChatGeneration(message=AIMessage(content=text, usage_metadata=meta), generation_info=gen_info)
                )
            prompt_tokens = len(request.prompt_ids)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": sum(outputs),
                "total_tokens": prompt_tokens + sum(outputs),
            }
            results.append(
                ChatResult(generations=generations, llm_output={"token_usage": usage, "model_name": self.model_id})
            )
        return results

    def _choice(
        self, tokens: torch.Tensor, logits: tuple[torch.Tensor, ...] | None, row: int, params: GenParams
    ) -> tuple[dict[str, Any], int]:
        """Text, finish reason, optional logprobs and the generated-token count (EOS included, as llama.cpp does)."""
        ids = tokens.tolist()
        eos = self._eos_ids
        end = next((j for j, t in enumerate(ids) if t in eos), None)
        text = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
        hit = min((text.find(s) for s in params.stop if s in text), default=-1)
        if hit >= 0:  # generation stopped on a stop string (padding follows it): cut it like the OpenAI API
            text, count, finish = text[:hit], len(ids) if end is None else end, "stop"
        elif end is not None:
            count, finish = end + 1, "stop"
        else:
            count, finish = len(ids), "length"
        info: dict[str, Any] = {"text": text, "finish_reason": finish, "model_name": self.model_id}
        if params.top_logprobs is not None and logits is not None:
            info["logprobs"] = {"content": self._logprob_entries(ids[:count], logits, row, params.top_logprobs)}
        return info, count

    def _logprob_entries(
        self, ids: list[int], logits: tuple[torch.Tensor, ...], row: int, top: int
    ) -> list[dict[str, Any]]:
        """OpenAI-format per-token logprobs from the raw (pre-temperature) logits."""
        entries = []
        for step, token_id in enumerate(ids):
            logprobs = logits[step][row].float().log_softmax(-1)
            entry: dict[str, Any] = {"token": self.tokenizer.decode([token_id]), "logprob": float(logprobs[token_id])}
            if top:
                values, indices = logprobs.topk(top)
                entry["top_logprobs"] = [
                    {"token": self.tokenizer.decode([int(t)]), "logprob": float(v)}
                    for v, t in zip(values.tolist(), indices.tolist(), strict=True)
                ]
            entries.append(entry)
        return entries

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        """Sum the usage of a multi-prompt ``generate`` call (the base class drops it)."""
        keys = ("prompt_tokens", "completion_tokens", "total_tokens")
        totals = {k: sum((out or {}).get("token_usage", {}).get(k, 0) for out in llm_outputs) for k in keys}
        return {"token_usage": totals, "model_name": self.model_id}

    @property
    def _eos_ids(self) -> set[int]:
        configured = self.hf_model.generation_config.eos_token_id
        ids = configured if isinstance(configured, list) else [configured]
        return {int(i) for i in ids if i is not None} | {int(self.tokenizer.eos_token_id)}


def load_hf_chat_model(
    folder_or_id: str,
    *,
    name: str | None = None,
    dtype: str = "float32",
    threads: int | None = None,
    **fields: Any,
) -> BatchedChatHuggingFace:
    """Load a transformers causal LM (or a PEFT adapter folder: base + adapter, unmerged) as a chat model.

    ``threads`` sets torch's (process-wide) intra-op threads; by default they are only ever *lowered*, to the
    cores the current load leaves idle (see :mod:`langgraph_stl.models.threads`).
    """
    import torch
    from langchain_huggingface import HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    elif default_threads() < torch.get_num_threads():
        torch.set_num_threads(default_threads())
    path = Path(folder_or_id).expanduser()
    source = str(path.resolve()) if path.exists() else folder_or_id
    adapter_config = path / "adapter_config.json"
    torch_dtype = getattr(torch, dtype)
    model: Any
    if adapter_config.is_file():
        from peft import PeftModel

        base = json.loads(adapter_config.read_text()).get("base_model_name_or_path")
        if not base:
            raise ValueError(f"{adapter_config} names no base_model_name_or_path")
        base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
        model = PeftModel.from_pretrained(base_model, source)
        has_tokenizer = (path / "tokenizer_config.json").is_file()
        tokenizer = AutoTokenizer.from_pretrained(source if has_tokenizer else base)
    else:
        if path.exists() and not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is neither a transformers model folder nor a PEFT adapter folder")
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(source)
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model_id = name or (path.name if path.exists() else folder_or_id)
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    llm = HuggingFacePipeline(pipeline=pipe, model_id=model_id, pipeline_kwargs={"return_full_text": False})
    return BatchedChatHuggingFace(llm=llm, tokenizer=tokenizer, model_id=model_id, **fields)
