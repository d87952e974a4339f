"""Serve STL value models V_k from a running vLLM server by hot-loading LoRA adapters.

Start vLLM once with the base model and runtime LoRA updates enabled (see docs/BYOM.md for the exact command)::

    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve BASE --enable-lora --max-lora-rank 64

then, after each ``stl train``, :meth:`VLLMLoraClient.swap` loads V_k's adapter folder (a PEFT folder the server can
read at the same path) through ``POST /v1/load_lora_adapter`` and unloads V_{k-1}'s through
``POST /v1/unload_lora_adapter``. Requests naming the adapter as their model use it, so V_k is the spec
``openai:<adapter name>@<url>/v1`` (:meth:`VLLMLoraClient.spec`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

__all__ = ["VLLMError", "VLLMLoraClient", "adapter_name"]


class VLLMError(RuntimeError):
    """The vLLM server refused a LoRA request or could not be reached; the message carries its answer."""


def adapter_name(run: str, k: int) -> str:
    """The served name of V_k of a run: unique per run folder, so runs can share one server."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in run)
    return f"{safe}-v{k}"


class VLLMLoraClient:
    """The LoRA endpoints of one vLLM server (``url`` with or without the trailing ``/v1``)."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 120.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"vLLM URL must start with http:// or https://, got {url!r}")
        self.root = url.rstrip("/").removesuffix("/v1")
        key = api_key if api_key is not None else os.environ.get("VLLM_API_KEY")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._timeout = timeout

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root (``.../v1``)."""
        return f"{self.root}/v1"

    def spec(self, name: str) -> str:
        """The chat-model spec that routes requests to the served adapter (or base model) ``name``."""
        return f"openai:{name}@{self.base_url}"

    def models(self) -> list[str]:
        """Names the server answers to: the base model and every loaded adapter."""
        data = self._call("GET", "/v1/models")
        return [str(m["id"]) for m in data.get("data", [])]

    def load(self, name: str, path: str | os.PathLike[str]) -> None:
        """Load the PEFT adapter folder ``path`` as ``name``; an adapter already loaded under ``name`` is kept."""
        folder = Path(path).expanduser().resolve()
        if not (folder / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)")
        try:
            self._call("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folder)})
        except VLLMError as exc:
            if "already been loaded" not in str(exc):
                raise

    def unload(self, name: str, *, missing_ok: bool = True) -> None:
        """Unload the adapter ``name`` (one the server does not have is fine with ``missing_ok``)."""
        try:
            self._call("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        except VLLMError as exc:
            if not (missing_ok and "cannot be found" in str(exc)):
                raise

    def swap(self, name: str, path: str | os.PathLike[str], *, previous: str | None = None) -> str:
        """Load ``path`` as ``name``, then unload ``previous`` (so requests never find neither); returns the spec."""
        self.load(name, path)
        if previous and previous != name:
            self.unload(previous)
        return self.spec(name)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = httpx.request(method, self.root + path, json=body, headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise VLLMError(f"vLLM server at {self.root} unreachable ({type(exc).__name__}: {exc})") from exc
        if response.status_code >= 400:
            message = _error_message(response)
            if response.status_code == 404 and message == "Not Found":  # the route itself is missing
                raise VLLMError(
                    f"{self.root}{path} does not exist: start vLLM with --enable-lora and "
                    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
                )
            raise VLLMError(f"vLLM {path} failed ({response.status_code}): {message}")
        try:
            data = response.json()
        except ValueError:
            return {"text": response.text}  # the LoRA endpoints answer success in plain text
        return data if isinstance(data, dict) else {"data": data}


def _error_message(response: httpx.Response) -> str:
    """vLLM's error text: ``{"message": ...}``, ``{"error": {"message": ...}}`` or FastAPI's ``{"detail": ...}``."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(data, dict):
        nested = data.get("error")
        error: dict[str, Any] = nested if isinstance(nested, dict) else data
        return str(error.get("message") or error.get("detail") or data)[:500]
    return str(data)[:500]
