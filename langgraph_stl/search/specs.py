"""Policies and value models from short spec strings (CLI, Studio context, evaluation configs).

Policy specs: ``enumerate`` (legal actions in order), ``enumerate:shuffle`` (seeded shuffle), or a chat-model spec
for :func:`langgraph_stl.models.load_chat_model` (``smollm2``, ``hf:<folder>``, ``openai:<model>@<url>``...).
Value specs: a chat-model spec (base prompts), ``stl:<chat-model spec>`` (fine-tuned STL format) or
``depths:{"1": "<value spec>", "2": ...}`` (one value model per depth, :class:`DepthValue`). Either may be
``py:<module>:<attr>``: a zero-argument callable returning a chat model or any chat-model Runnable (``with_retry``,
``with_fallbacks``...), or a ready policy/value model: the hook for models that have no spec (tests use it for
scripted fakes).

Spec-built models get a reply budget per role (``max_tokens``): :data:`POLICY_MAX_TOKENS` for policies,
:data:`VALUE_MAX_TOKENS` for base value models, :data:`STL_VALUE_MAX_TOKENS` for fine-tuned ones; a model you
build yourself keeps its own settings.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import Runnable

from langgraph_stl.search.policy import EnumeratePolicy, LLMPolicy, Policy
from langgraph_stl.search.value import DepthValue, ValueMode, ValueModel

PER_DEPTH = "depths:"

POLICY_MAX_TOKENS = 160
"""Reply budget of a spec-built policy model: a one-sentence rationale plus one action (WebShop), or eight
Game-of-24 step lines (about 20 tokens each with digit-wise tokenizers). A small model that rambles stops here."""
VALUE_MAX_TOKENS = 192
"""Reply budget of a spec-built base (V0) value model: a short reflection and the score line, or one
[SUCCESS]/[FAILURE] line per requirement for a terminal judgement."""
STL_VALUE_MAX_TOKENS = 1536
"""Reply budget of a spec-built fine-tuned (``stl:``) value model in ``generate`` mode: it writes the simulated
best next action and the whole successor observation (a WebShop item page is several hundred tokens) before its
score."""

_CACHE: dict[tuple[str, float | None, int | None], Any] = {}
_LOCK = threading.Lock()


def _load_model(spec: str, temperature: float | None, max_tokens: int | None = None) -> Any:
    """A chat model (or any object a ``py:`` factory returns), cached per spec, temperature and reply budget."""
    key = (spec, temperature, max_tokens)
    with _LOCK:
        if _usable(_CACHE.get(key)):
            return _CACHE[key]
    if spec.startswith("py:"):
        module_name, _, attr = spec[3:].rpartition(":")
        if not module_name or not attr:
            raise ValueError(f"bad spec {spec!r}: expected py:<module>:<callable>")
        model = getattr(importlib.import_module(module_name), attr)()
    else:
        from langgraph_stl.models import load_chat_model

        kwargs: dict[str, Any] = {} if temperature is None else {"temperature": temperature}
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        model = load_chat_model(spec, **kwargs)
    with _LOCK:
        if not _usable(_CACHE.get(key)):
            _CACHE[key] = model
        return _CACHE[key]


def _budget(max_tokens: int | None, default: int) -> int:
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    return default if max_tokens is None else max_tokens


def _usable(model: Any) -> bool:
    """Cached and, if it has a managed llama.cpp server, that server was neither closed nor died."""
    server = getattr(model, "server", None)
    return model is not None and (server is None or bool(server.usable))


def make_policy(spec: str, *, temperature: float | None = None, max_tokens: int | None = None) -> Policy:
    """A policy from its spec (see module doc); a model spec's replies are capped at ``max_tokens`` (default
    :data:`POLICY_MAX_TOKENS`)."""
    if spec == "enumerate":
        return EnumeratePolicy()
    if spec == "enumerate:shuffle":
        return EnumeratePolicy(shuffle=True)
    model = _load_model(spec, temperature, _budget(max_tokens, POLICY_MAX_TOKENS))
    if hasattr(model, "propose"):
        return model  # type: ignore[no-any-return]
    if isinstance(model, Runnable):
        return LLMPolicy(model)
    raise TypeError(f"policy spec {spec!r} gave {type(model).__name__}, neither a chat model nor a policy")


def make_value(
    spec: str, *, temperature: float | None = None, mode: ValueMode = "generate", max_tokens: int | None = None
) -> ValueModel:
    """A value model from its spec; ``stl:`` selects the fine-tuned prompt format, ``depths:`` one model per depth.
    A model spec's replies are capped at ``max_tokens`` (default :data:`VALUE_MAX_TOKENS`,
    :data:`STL_VALUE_MAX_TOKENS` for ``stl:``)."""
    if spec.startswith(PER_DEPTH):
        try:
            specs = {int(d): str(s) for d, s in json.loads(spec[len(PER_DEPTH) :]).items()}
        except (ValueError, AttributeError):
            raise ValueError(f'bad spec {spec!r}: expected depths:{{"1": "<value spec>", ...}}') from None
        return DepthValue(
            {d: make_value(s, temperature=temperature, mode=mode, max_tokens=max_tokens) for d, s in specs.items()}
        )
    style = "base"
    if spec.startswith("stl:"):
        style, spec = "stl", spec[4:]
    default = STL_VALUE_MAX_TOKENS if style == "stl" else VALUE_MAX_TOKENS
    model = _load_model(spec, temperature, _budget(max_tokens, default))
    if isinstance(model, ValueModel):
        return model
    if not isinstance(model, Runnable):
        raise TypeError(f"value spec {spec!r} gave {type(model).__name__}, not a chat model")
    return ValueModel(model, style="stl" if style == "stl" else "base", mode=mode)


def per_depth_spec(specs: Mapping[int, str]) -> str:
    """The ``depths:`` value spec of one value-model spec per depth (a string, so it crosses process boundaries)."""
    return PER_DEPTH + json.dumps({str(d): specs[d] for d in sorted(specs)})


def component_specs(spec: str) -> list[str]:
    """The model specs inside a policy or value spec: ``depths:`` expanded, ``stl:`` removed."""
    if spec.startswith(PER_DEPTH):
        return [c for inner in json.loads(spec[len(PER_DEPTH) :]).values() for c in component_specs(str(inner))]
    return [spec.removeprefix("stl:")]
