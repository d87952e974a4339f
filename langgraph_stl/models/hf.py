"""Local transformers chat models with real batched generation, sync and async.

``ChatHuggingFace`` runs one pipeline call per prompt and is sync-only. :class:`BatchedChatHuggingFace` keeps its
interface (fields, message conversion, identity) but routes every request through a micro-batcher: requests that
arrive together (``batch``/``abatch``, or concurrent LangGraph nodes) with the same sampling parameters are
left-padded into ONE ``model.generate`` call; ``n > 1`` uses ``num_return_sequences``. ``ainvoke`` awaits the batch
without blocking the event loop. Every ``AIMessage`` carries ``usage_metadata`` counted with the tokenizer.

The model runs where :func:`pick_device` says (CUDA in bf16 when there is a GPU, else CPU in fp32); inputs are built
on the model's device. ``stream`` yields tokens as they are generated (one request, outside the batcher).
``bind_tools`` works when the model's chat template takes ``tools`` (Hermes/Qwen-style ``<tool_call>`` JSON replies
are parsed into ``tool_calls``); ``with_structured_output`` defaults to ``json_schema``: the schema goes into the
prompt and the reply is parsed (no constrained decoding: a small model may still answer off-schema).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import get_config_list
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_huggingface import ChatHuggingFace
from pydantic import BaseModel, PrivateAttr

from langgraph_stl.models.hub import resolve_hf_model
from langgraph_stl.models.threads import default_threads
from langgraph_stl.models.usage import choice_usage

if TYPE_CHECKING:
    import torch

__all__ = ["BatchedChatHuggingFace", "load_hf_chat_model", "pick_device"]

_GEN_OPTIONS = frozenset({"temperature", "max_tokens", "n", "seed", "stop", "top_p", "logprobs", "top_logprobs"})
_PROMPT_OPTIONS = frozenset({"tools", "tool_choice", "response_format"})
"""Options that shape the prompt (chat-template tools, a JSON-schema instruction), not the sampling."""
_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


def pick_device(device: str | None = None, dtype: str | None = None) -> tuple[str, str]:
    """``(device, dtype)`` for a transformers model: CUDA in bfloat16 when a GPU is visible, else CPU in float32.

    ``device`` may be ``"auto"``/``None``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``dtype`` a torch dtype name
    (default: ``bfloat16`` on CUDA, ``float16`` on GPUs without bf16, ``float32`` on CPU, where half precision is
    slow and changes greedy outputs).
    """
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but torch sees no CUDA device")
    if dtype is None:
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise ValueError(f"unknown torch dtype {dtype!r} (e.g. 'float32', 'bfloat16', 'float16')")
    return device, dtype


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
    tools: bool = False  # tools were in the prompt: parse <tool_call> blocks from the reply
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

    # langchain-core's default async stream runs the sync ``_stream`` in a worker thread, token by token.
    _astream = BaseChatModel._astream  # type: ignore[assignment]

    @property
    def _llm_type(self) -> str:
        return "huggingface-batched"

    @property
    def hf_model(self) -> Any:
        """The underlying ``transformers`` (or ``peft``) model."""
        return self.llm.pipeline.model

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        """LangSmith parameters with the model name (the base class finds no ``model``/``model_name`` field)."""
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "huggingface"
        params["ls_model_name"] = kwargs.get("model") or self.model_id or "unknown"
        return params

    @property
    def device(self) -> torch.device:
        """Where the model's inputs go (its first parameters' device)."""
        device: torch.device = self.hf_model.device
        return device

    @property
    def supports_tools(self) -> bool:
        """Whether the chat template renders ``tools`` (only then can the model see, and call, them)."""
        return "tools" in (self.tokenizer.chat_template or "")

    def prompt_text(
        self,
        messages: Sequence[BaseMessage],
        assistant_prefix: str = "",
        *,
        tools: list[dict[str, Any]] | None = None,
    ) -> str:
        """The chat-templated prompt, ending with the assistant turn header plus ``assistant_prefix``."""
        dicts = [self._to_chatml_format(m) for m in messages]
        extra = {"tools": tools} if tools else {}
        text: str = self.tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True, **extra)
        return text + assistant_prefix

    def _to_chatml_format(self, message: BaseMessage) -> dict[str, Any]:
        """Also tool results and assistant tool calls, in the shape tool-aware chat templates expect."""
        if isinstance(message, ToolMessage):
            return {"role": "tool", "content": message.content, "tool_call_id": message.tool_call_id}
        converted: dict[str, Any] = super()._to_chatml_format(message)
        if isinstance(message, AIMessage) and message.tool_calls:
            converted["tool_calls"] = [
                {"type": "function", "id": c["id"], "function": {"name": c["name"], "arguments": c["args"]}}
                for c in message.tool_calls
            ]
        return converted

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools go into the chat template; a template without tools cannot show them, which is an error here."""
        if not self.supports_tools:
            raise NotImplementedError(
                f"hf model {self.model_id!r}: its chat template takes no tools, so it cannot call them; use a model "
                "whose template does (Qwen2.5, Llama 3.1, ...), with_structured_output(method='json_schema'), or a "
                "server with tool calling (openai:MODEL@URL, e.g. vLLM --enable-auto-tool-choice)"
            )
        return super().bind_tools(tools, tool_choice=tool_choice, **kwargs)

    def with_structured_output(  # type: ignore[override]
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """``json_schema`` (default): the schema is put in the prompt and the reply parsed (pydantic in, pydantic
        out); ``json_mode``: any JSON object; ``function_calling``: through :meth:`bind_tools`."""
        if method == "function_calling" or schema is None or method not in ("json_schema", "json_mode"):
            return super().with_structured_output(schema, method=method, include_raw=include_raw, **kwargs)
        kwargs.pop("strict", None)
        if kwargs:
            raise ValueError(f"unsupported with_structured_output arguments: {sorted(kwargs)}")
        response_format: dict[str, Any] = {"type": "json_object"}
        if method == "json_schema":
            response_format["schema"] = convert_to_json_schema(schema)
        llm = self.bind(
            response_format=response_format,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": convert_to_openai_tool(schema)},
        )
        parser: Runnable[Any, Any] = (
            PydanticOutputParser(pydantic_object=schema)
            if isinstance(schema, type) and issubclass(schema, BaseModel)
            else JsonOutputParser()
        )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=lambda x: parser.invoke(x["raw"]), parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")

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
        unknown = set(kwargs) - _GEN_OPTIONS - _PROMPT_OPTIONS
        if unknown:
            raise ValueError(
                f"unsupported generation option(s) for a transformers model: {sorted(unknown)}; "
                f"supported: {sorted(_GEN_OPTIONS | _PROMPT_OPTIONS)}"
            )
        tools, instruction = _prompt_options(kwargs)
        if instruction:
            messages = [SystemMessage(instruction), *messages]
        opts = {name: getattr(self, name) for name in _GEN_OPTIONS} | {
            k: v for k, v in kwargs.items() if k in _GEN_OPTIONS
        }
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
        return _Request(self.encode(self.prompt_text(messages, tools=tools)), params, tools=bool(tools))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Token-by-token text of one request (``generate`` on a worker thread feeding a queue).

        Text that could be the start of a stop string is held back until it is not; usage and the finish reason
        come with the last chunk. ``n > 1`` and logprobs need the whole reply: they are refused here.
        """
        request = self._request(messages, stop, kwargs)
        params = request.params
        if params.n > 1 or params.top_logprobs is not None:
            raise ValueError("streaming an hf: model gives one choice without logprobs: drop n>1/logprobs or invoke")
        tokens: queue.Queue[list[int] | BaseException | None] = queue.Queue()
        worker = threading.Thread(target=self._generate_into, args=(request, tokens), daemon=True)
        worker.start()
        ids: list[int] = []
        sent = ""
        finish = "length"
        eos = self._eos_ids
        hold = max((len(s) for s in params.stop), default=1) - 1
        while (item := tokens.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            ids.extend(item)
            end = next((j for j, t in enumerate(ids) if t in eos), None)
            text = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
            hit = min((text.find(s) for s in params.stop if s in text), default=-1)
            if hit >= 0 or end is not None:
                text, finish = text[:hit] if hit >= 0 else text, "stop"
            safe = text if finish == "stop" else text[: max(len(sent), len(text) - hold)]
            if finish != "stop" and safe.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                safe = sent
            if len(safe) > len(sent):
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=safe[len(sent) :]))
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
                sent = safe
            if finish == "stop":
                break
        if finish != "stop":  # the last held-back characters
            rest = self.tokenizer.decode(ids, skip_special_tokens=True)[len(sent) :]
            if rest:
                yield ChatGenerationChunk(message=AIMessageChunk(content=rest))
        worker.join()
        end = next((j for j, t in enumerate(ids) if t in eos), None)
        meta = choice_usage(len(request.prompt_ids), [len(ids) if end is None else end + 1])[0]
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=meta, chunk_position="last"),
            generation_info={"finish_reason": finish, "model_name": self.model_id},
        )

    def _generate_into(self, request: _Request, tokens: queue.Queue[list[int] | BaseException | None]) -> None:
        """Run ``generate`` for one request, putting each new token's ids on ``tokens`` (``None`` at the end)."""
        from transformers.generation.streamers import BaseStreamer

        class _Streamer(BaseStreamer):  # type: ignore[misc]
            prompt_seen = False

            def put(self, value: torch.Tensor) -> None:
                if self.prompt_seen:
                    tokens.put([int(t) for t in value.reshape(-1).tolist()])
                self.prompt_seen = True  # the first call carries the prompt

            def end(self) -> None:
                pass

        try:
            self._generate_ids([request], streamer=_Streamer())
        except BaseException as exc:  # re-raised in the consumer
            tokens.put(exc)
        tokens.put(None)

    def _generate_ids(self, requests: list[_Request], streamer: Any = None) -> tuple[Any, int]:
        """One left-padded ``generate`` call on the model's device; returns its output and the padded width."""
        import torch

        params = requests[0].params
        tokenizer = self.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        width = max(len(r.prompt_ids) for r in requests)
        device = self.device
        input_ids = torch.tensor(
            [[pad_id] * (width - len(r.prompt_ids)) + r.prompt_ids for r in requests], device=device
        )
        attention_mask = torch.tensor(
            [[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in requests], device=device
        )
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
        if streamer is not None:
            options["streamer"] = streamer
        with torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            out = self.hf_model.generate(input_ids=input_ids, attention_mask=attention_mask, **options)
        return out, width

    def _run_batch(self, requests: list[_Request]) -> list[ChatResult]:
        """One batched ``generate`` call for ``requests`` (all with equal :class:`GenParams`) as chat results."""
        params = requests[0].params
        out, width = self._generate_ids(requests)
        copies = 1 if params.greedy else params.n
        generated = out.sequences[:, width:].cpu()
        results = []
        for i, request in enumerate(requests):
            rows = [i * copies + k for k in range(copies)] * (params.n if params.greedy else 1)
            choices = [self._choice(generated[row], out.logits, row, params) for row in rows]
            outputs = [count for _, count in choices]
            generations = []
            for (gen_info, _), meta in zip(choices, choice_usage(len(request.prompt_ids), outputs), strict=True):
                text = gen_info.pop("text")
                text, calls = _tool_calls(text) if request.tools else (text, [])
                if calls:
                    gen_info["finish_reason"] = "tool_calls"
                message = AIMessage(content=text, tool_calls=calls, usage_metadata=meta)
                generations.append(ChatGeneration(message=message, generation_info=gen_info))
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


def _prompt_options(kwargs: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, str]:
    """The tools to render and a system instruction for ``tool_choice``/``response_format`` (both may be empty)."""
    tools: list[dict[str, Any]] | None = kwargs.get("tools")
    lines = []
    choice = kwargs.get("tool_choice")
    if tools and choice not in (None, "auto", "none"):
        name = choice["function"]["name"] if isinstance(choice, dict) else None if choice == "required" else choice
        lines.append(f"You must call the tool {name}." if name else "You must call one of the tools.")
    response_format = kwargs.get("response_format") or {}
    if response_format.get("type") not in (None, "json_object", "json_schema"):
        raise ValueError(f"unsupported response_format {response_format!r}: 'json_object' or 'json_schema'")
    schema = response_format.get("schema") or (response_format.get("json_schema") or {}).get("schema")
    if schema:
        lines.append(
            "Reply with one JSON object and nothing else. It must match this JSON schema: " + json.dumps(schema)
        )
    elif response_format:
        lines.append("Reply with one JSON object and nothing else.")
    return tools or None, "\n".join(lines)


def _tool_calls(text: str) -> tuple[str, list[Any]]:
    """Split Hermes/Qwen-style ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks off ``text``."""
    calls = []
    for match in _TOOL_CALL.finditer(text):
        try:
            data = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue  # not a call after all: it stays in the text
        args = data.get("arguments", data.get("parameters", {}))
        if isinstance(args, str):
            args = json.loads(args)
        calls.append(tool_call(name=str(data.get("name", "")), args=args, id=f"call_{uuid.uuid4().hex[:24]}"))
        text = text.replace(match.group(0), "")
    return text.strip() if calls else text, calls


def load_hf_chat_model(
    ref: str,
    *,
    name: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    threads: int | None = None,
    **fields: Any,
) -> BatchedChatHuggingFace:
    """Load a transformers causal LM (a folder, a Hub id, or a PEFT adapter folder: base + adapter, unmerged).

    ``device``/``dtype`` default to :func:`pick_device` (CUDA bf16 when there is a GPU, else CPU fp32);
    ``device_map`` (e.g. ``"auto"`` to spread a large model over several GPUs) is passed to ``from_pretrained``
    instead of moving the model to ``device``. ``threads`` sets torch's (process-wide) intra-op threads; by default
    they are only ever *lowered*, to the cores the current load leaves idle (see :mod:`langgraph_stl.models.threads`).
    """
    import torch
    from langchain_huggingface import HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    elif default_threads() < torch.get_num_threads():
        torch.set_num_threads(default_threads())
    resolved = resolve_hf_model(ref)
    folder = resolved.folder
    device, dtype = pick_device(device, dtype)
    placement: dict[str, Any] = {"dtype": getattr(torch, dtype), "device_map": device_map or device}
    adapter_config = folder / "adapter_config.json"
    model: Any
    if adapter_config.is_file():
        from peft import PeftModel

        base = json.loads(adapter_config.read_text()).get("base_model_name_or_path")
        if not base:
            raise ValueError(f"{adapter_config} names no base_model_name_or_path")
        base_folder = resolve_hf_model(base).folder
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_folder, **placement), folder)
        has_tokenizer = (folder / "tokenizer_config.json").is_file()
        tokenizer = AutoTokenizer.from_pretrained(folder if has_tokenizer else base_folder)
    else:
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is neither a transformers model folder nor a PEFT adapter folder")
        model = AutoModelForCausalLM.from_pretrained(folder, **placement)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model_id = name or resolved.name
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    llm = HuggingFacePipeline(pipeline=pipe, model_id=model_id, pipeline_kwargs={"return_full_text": False})
    return BatchedChatHuggingFace(llm=llm, tokenizer=tokenizer, model_id=model_id, **fields)
