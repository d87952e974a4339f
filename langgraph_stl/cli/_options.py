"""Options shared by several commands."""

from __future__ import annotations

import os
from typing import Annotated

import typer

RequestTimeout = Annotated[
    float | None,
    typer.Option(
        "--request-timeout",
        min=0.001,
        help="Seconds before a model request (OpenAI-compatible or llama.cpp server) fails; the task then fails. "
        "Default: $STL_REQUEST_TIMEOUT, else 120 (600 for a managed llama.cpp server).",
    ),
]


def apply_request_timeout(seconds: float | None) -> None:
    """Make ``seconds`` the default request timeout of every model this process (and its workers) loads."""
    from langgraph_stl.models.loader import REQUEST_TIMEOUT_ENV

    if seconds is not None:
        os.environ[REQUEST_TIMEOUT_ENV] = repr(float(seconds))
