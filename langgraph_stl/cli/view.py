"""`stl view`: one self-contained HTML page for a results file, a search tree, a dataset or an `stl improve` run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def view_command(
    path: Annotated[
        Path, typer.Argument(help="Results file (stl eval), tree file (stl search --tree), dataset or run folder.")
    ],
    compare: Annotated[
        Path | None, typer.Option("--compare", help="A second results file over the same tasks: where runs diverge.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="The HTML file to write (default: PATH with .html, beside it).")
    ] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Embed stl report's Pareto plots.")] = True,
) -> None:
    """Write an offline HTML inspector: task table, search trees, run comparison, STL iterations."""
    from langgraph_stl.view import load_view, write_html

    try:
        view = load_view(path, compare=compare, plots=plots)
    except (ValueError, FileNotFoundError) as exc:  # reader errors name the file (and line)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    target = out or default_out(path)
    written = write_html(view, target)
    trees = sum(run["trees"] for run in view.runs)
    typer.echo(f"{written} ({written.stat().st_size / 1e6:.1f} MB, {trees} trees)")
    if open_browser:
        import webbrowser

        webbrowser.open(written.resolve().as_uri())


def default_out(path: Path) -> Path:
    """``run.jsonl`` → ``run.html``, ``t.json.gz`` → ``t.html``, a folder ``runs/x`` → ``runs/x/view.html``."""
    if path.is_dir():
        return path / "view.html"
    name = path.name.removesuffix(".gz").removesuffix(".json").removesuffix(".jsonl")
    return path.with_name(name + ".html")


def register(app: typer.Typer) -> None:
    """Add ``stl view``."""
    app.command("view")(view_command)
