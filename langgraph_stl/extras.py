"""Optional dependencies: a missing one is reported with the extra that installs it.

The core install (``pip install langgraph-stl``) only carries LangGraph, LangChain and the OpenAI client. Local
models, training, WebShop, the browser, plots and Ray live in extras; :func:`require` imports a module of one of them or
raises :class:`MissingExtraError` naming the extra, and :func:`missing_extra` turns a ``ModuleNotFoundError``
raised deeper down (for instance inside transformers) into the same message. The CLI applies the latter to every
command.
"""

from __future__ import annotations

import importlib

__all__ = ["EXTRA_OF", "MissingExtraError", "missing_extra", "require"]

EXTRA_OF: dict[str, str] = {
    "torch": "local",
    "transformers": "local",
    "accelerate": "local",
    "langchain_huggingface": "local",
    "huggingface_hub": "local",
    "xllamacpp": "local",
    "gguf": "local",
    "peft": "train",
    "trl": "train",
    "datasets": "train",
    "starlette": "webshop",
    "uvicorn": "webshop",
    "jinja2": "webshop",
    "bs4": "webshop",
    "rapidfuzz": "webshop",
    "regex": "webshop",
    "spacy": "prepare",
    "playwright": "browser",
    "matplotlib": "plots",
    "ray": "distributed",
}
"""Top-level module -> the ``langgraph-stl[...]`` extra that installs it (mirrors pyproject.toml; a test checks)."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str, feature: str | None = None) -> None:
        what = f"{feature} needs" if feature else "this needs"
        super().__init__(
            f"{what} the {module!r} package, which is not installed: pip install 'langgraph-stl[{extra}]'",
            name=module,
        )
        self.extra = extra


def require(*modules: str, feature: str | None = None) -> None:
    """Import ``modules`` (keys of :data:`EXTRA_OF`) or raise :class:`MissingExtraError` for the first missing one."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            error = missing_extra(exc, feature=feature)
            if error is None:
                raise
            raise error from exc


def missing_extra(exc: ModuleNotFoundError, *, feature: str | None = None) -> MissingExtraError | None:
    """The :class:`MissingExtraError` for ``exc`` if the missing module belongs to an extra, else ``None``."""
    top = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF.get(top)
    return MissingExtraError(top, extra, feature) if extra else None
