"""The ``stl`` command line. Each sub-module adds its commands with ``register(app)``.

Sub-modules keep heavy imports (torch, transformers, playwright) inside their command functions, so ``stl --help``
stays fast.
"""

from __future__ import annotations

import importlib

import typer

from langgraph_stl.extras import missing_extra

app = typer.Typer(
    name="stl",
    help="Self-Taught Lookahead for LangGraph: tree search with a self-improving value model.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_MODULES = (
    "data",
    "game24",
    "webshop",
    "search",
    "train",
    "improve",
    "evaluate",
    "execution",
    "demo",
    "view",
)


@app.callback()
def _root() -> None:
    """Self-Taught Lookahead for LangGraph: tree search with a self-improving value model."""


@app.command()
def version() -> None:
    """Print the installed langgraph-stl version."""
    from langgraph_stl import __version__

    typer.echo(__version__)


for _name in _MODULES:
    importlib.import_module(f"langgraph_stl.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the ``stl`` console script; a missing optional dependency is one line naming its extra."""
    try:
        app()
    except ModuleNotFoundError as exc:
        error = missing_extra(exc)
        if error is None:
            raise
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(1) from None
