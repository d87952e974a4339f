"""``load_chat_model(spec)``: one string picks the backend, the rest are uniform keyword arguments.

Spec forms (also in :data:`SPEC_FORMS` and docs/MODELS.md)::

    smollm2[+lora=ADAPTER.gguf]           the embedded SmolLM2-135M-Instruct on a managed llama.cpp server
    llamacpp:MODEL.gguf[+lora=ADAPTER.gguf] any local GGUF on a managed llama.cpp server
    hf:FOLDER_OR_ID | hf:smollm2          a transformers model (a PEFT adapter folder loads base + adapter)
    openai:MODEL[@BASE_URL]               OpenAI, or any OpenAI-compatible server (vLLM, llama.cpp, Ollama)
    openai:MODEL@URL1,URL2,...            several replicas: least-loaded, sticky per task (models/endpoints.py)

Server-backed specs go through :class:`OpenAICompatibleChat` (one code path for llama.cpp, vLLM and OpenAI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from langgraph_stl.extras import require
from langgraph_stl.models.embedded import CHATML_TEMPLATE, MODEL_NAME, embedded_gguf_path, embedded_hf_folder

__all__ = ["SPEC_FORMS", "ModelSpec", "load_chat_model", "parse_spec"]

SPEC_FORMS = (
    "'smollm2' (embedded SmolLM2-135M-Instruct on a managed llama.cpp server)",
    "'smollm2+lora=ADAPTER.gguf'",
    "'llamacpp:MODEL.gguf' or 'llamacpp:MODEL.gguf+lora=ADAPTER.gguf' (local GGUF on a managed llama.cpp server)",
    "'hf:FOLDER_OR_MODEL_ID' (transformers; a PEFT adapter folder loads base + adapter) or 'hf:smollm2'",
    "'openai:MODEL' or 'openai:MODEL@BASE_URL' (OpenAI or any OpenAI-compatible server)",
    "'openai:MODEL@URL1,URL2,...' (replicas of one model: least-loaded routing, sticky per task)",
)
_LORA = "+lora="
DEFAULT_MAX_TOKENS = 256
"""Local backends cap generations by default: a 135M model can ramble for hundreds of tokens."""

REQUEST_TIMEOUT_ENV = "STL_REQUEST_TIMEOUT"
"""Environment variable with the default request timeout in seconds (``--request-timeout`` sets it)."""
DEFAULT_REQUEST_TIMEOUT_S = {"llamacpp": 600.0, "openai": 120.0}
"""Finite request timeouts (a hung server fails the call, not the run); a managed llama.cpp server queues requests
for its slots on CPU, so its default is longer."""

Backend = Literal["llamacpp", "hf", "openai"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: ``target`` is a GGUF path (llamacpp), a folder or model id (hf) or a model name (openai)."""

    backend: Backend
    target: str
    lora: str | None = None
    base_url: str | None = None
    embedded: bool = False

    @property
    def name(self) -> str:
        """Model name reported in usage and ``response_metadata`` (policy and value models stay apart)."""
        base = MODEL_NAME if self.embedded else Path(self.target).stem if self.backend == "llamacpp" else self.target
        return f"{base}+lora={Path(self.lora).stem}" if self.lora else base


def _spec_error(spec: str, why: str) -> ValueError:
    forms = "\n  ".join(SPEC_FORMS)
    return ValueError(f"invalid model spec {spec!r}: {why}. Accepted forms:\n  {forms}")


def parse_spec(spec: str, lora: str | os.PathLike[str] | None = None) -> ModelSpec:
    """Parse ``spec`` (see :data:`SPEC_FORMS`); ``lora`` (the keyword) may replace a ``+lora=`` suffix."""
    text = spec.strip()
    adapter: str | None = None
    if _LORA in text:
        text, adapter = text.split(_LORA, 1)
        if not adapter:
            raise _spec_error(spec, "empty adapter path after '+lora='")
    if lora is not None:
        if adapter is not None:
            raise _spec_error(spec, "give the LoRA adapter either in the spec or as lora=, not both")
        adapter = os.fspath(lora)
    if text == MODEL_NAME:
        return ModelSpec("llamacpp", "", lora=adapter, embedded=True)
    prefix, sep, rest = text.partition(":")
    if not sep or not rest:
        raise _spec_error(spec, "unknown form")
    if prefix == "llamacpp":
        return ModelSpec("llamacpp", rest, lora=adapter)
    if adapter is not None:
        raise _spec_error(spec, f"'+lora=' applies to GGUF models only; for {prefix}: use a PEFT adapter folder")
    if prefix == "hf":
        return ModelSpec("hf", rest, embedded=rest == MODEL_NAME)
    if prefix == "openai":
        model, at, url = rest.partition("@")
        if not model or (at and not all(u.startswith(("http://", "https://")) for u in url.split(","))):
            raise _spec_error(spec, "expected openai:MODEL or openai:MODEL@http(s)://HOST:PORT/v1[,http(s)://...]")
        return ModelSpec("openai", model, base_url=url or None)
    raise _spec_error(spec, f"unknown backend {prefix!r}")


def request_timeout(backend: Literal["llamacpp", "openai"]) -> float:
    """Default request timeout of ``backend``: ``$STL_REQUEST_TIMEOUT`` if set, else its default."""
    text = os.environ.get(REQUEST_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_REQUEST_TIMEOUT_S[backend]
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{REQUEST_TIMEOUT_ENV}={text!r}: expected a positive number of seconds")
    return value


def load_chat_model(spec: str, **kwargs: Any) -> BaseChatModel:
    """Build a chat model from ``spec``.

    Uniform sampling keywords: ``temperature``, ``max_tokens`` (default 256 on local backends), ``n``, ``seed``,
    ``stop``, ``top_p``, ``logprobs``/``top_logprobs``. ``name`` overrides the model name used for usage
    accounting. ``timeout`` (server-backed specs): seconds per request, default :func:`request_timeout`.
    llama.cpp keywords: ``lora`` (adapter path), ``lora_scale`` (per request, default 1.0),
    ``n_parallel`` (slots, default 4), ``ctx_per_slot`` (default 4096). Transformers keywords: ``dtype`` (default
    float32), ``max_batch_size`` (default 16). ``threads`` (both local backends; default ``$STL_NUM_THREADS``, else
    the idle cores, see :mod:`langgraph_stl.models.threads`). Anything else goes to
    the backend class (``ChatOpenAI`` or :class:`~langgraph_stl.models.hf.BatchedChatHuggingFace`).
    """
    parsed = parse_spec(spec, kwargs.pop("lora", None))
    name = kwargs.pop("name", None) or parsed.name
    if parsed.backend == "llamacpp":
        return _load_llamacpp(parsed, name, kwargs)
    if parsed.backend == "hf":
        require("torch", "transformers", "langchain_huggingface", feature="an 'hf:' model")
        from langgraph_stl.models.hf import load_hf_chat_model

        kwargs.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        folder = str(embedded_hf_folder()) if parsed.embedded else parsed.target
        return load_hf_chat_model(folder, name=name, **kwargs)
    return _load_openai(parsed, name, kwargs)


def _load_llamacpp(parsed: ModelSpec, name: str, kwargs: dict[str, Any]) -> BaseChatModel:
    require("xllamacpp", feature=f"the managed llama.cpp server ({parsed.name!r})")
    from langgraph_stl.models.openai_compat import OpenAICompatibleChat
    from langgraph_stl.models.server import ServerConfig, get_server
    from langgraph_stl.models.threads import default_threads

    model_path = embedded_gguf_path() if parsed.embedded else Path(parsed.target).expanduser().resolve()
    lora_path = Path(parsed.lora).expanduser().resolve() if parsed.lora else None
    for label, path in (("GGUF model", model_path), ("GGUF LoRA adapter", lora_path)):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{label} not found: {path}")
    lora_scale = float(kwargs.pop("lora_scale", 1.0))
    config = ServerConfig(
        model_path=str(model_path),
        alias=name,
        lora_paths=(str(lora_path),) if lora_path else (),
        n_parallel=int(kwargs.pop("n_parallel", 4)),
        ctx_per_slot=int(kwargs.pop("ctx_per_slot", 4096)),
        threads=int(kwargs.pop("threads", None) or default_threads()),
        chat_template=CHATML_TEMPLATE if parsed.embedded else "",
    )
    server = get_server(config)
    if lora_path is not None:  # per-request scale: the server loads adapters at scale 0 (see docs/MODELS.md)
        extra_body = dict(kwargs.pop("extra_body", None) or {})
        extra_body.setdefault("lora", [{"id": 0, "scale": lora_scale}])
        kwargs["extra_body"] = extra_body
    kwargs.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    kwargs.setdefault("max_retries", 0)
    _set_timeout(kwargs, "llamacpp")
    kwargs.setdefault("stream_usage", True)
    model = OpenAICompatibleChat(
        model=name,
        base_url=server.base_url,
        api_key=SecretStr(server.config.api_key),
        count_choices_with_logprobs=True,
        **kwargs,
    )
    model.attach_server(server)
    return model


def _load_openai(parsed: ModelSpec, name: str, kwargs: dict[str, Any]) -> BaseChatModel:
    from langgraph_stl.models.openai_compat import OpenAICompatibleChat

    _set_timeout(kwargs, "openai")
    if parsed.base_url is not None:
        kwargs.setdefault("base_url", parsed.base_url)
        kwargs.setdefault("stream_usage", True)
        # Local servers (vLLM, llama.cpp, Ollama) usually need no key, but the client insists on one.
        kwargs.setdefault("api_key", os.environ.get("OPENAI_API_KEY") or "not-needed")
    elif not (kwargs.get("api_key") or os.environ.get("OPENAI_API_KEY")):
        raise ValueError(
            f"openai:{parsed.target} needs OPENAI_API_KEY (or api_key=...); for a local server use "
            f"openai:{parsed.target}@http://HOST:PORT/v1"
        )
    if parsed.base_url is not None and "," in parsed.base_url:
        from langgraph_stl.models.endpoints import RoutedChat

        urls = parsed.base_url.split(",")
        return RoutedChat.over(
            urls, model=parsed.target, report_name=name, **{k: v for k, v in kwargs.items() if k != "base_url"}
        )
    return OpenAICompatibleChat(model=parsed.target, report_name=name, **kwargs)


def _set_timeout(kwargs: dict[str, Any], backend: Literal["llamacpp", "openai"]) -> None:
    """Give ``kwargs`` the default request timeout unless it has one (``timeout`` or its name ``request_timeout``)."""
    if kwargs.get("timeout") is None and kwargs.get("request_timeout") is None:
        kwargs.pop("request_timeout", None)
        kwargs["timeout"] = request_timeout(backend)
