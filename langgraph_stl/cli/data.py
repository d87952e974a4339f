"""`stl data`: see what the data directory holds, download the official files, prepare derived artefacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(help="The data directory: what is present, downloads, preparation.", no_args_is_help=True)

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: $STL_DATA_DIR, else the user cache).")
]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


@data_app.command("info")
def info_command(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the data files: present or missing, size, integrity, which features need them and how to get them."""
    from rich.console import Console
    from rich.table import Table

    from langgraph_stl.data import info
    from langgraph_stl.paths import data_dir as resolve_data_dir

    root = resolve_data_dir(data_dir)
    statuses = info(root)
    if as_json:
        typer.echo(json.dumps({"data_dir": str(root), "files": [s.as_dict() for s in statuses]}, indent=2))
        return
    table = Table(title=f"data directory: {root}", title_justify="left")
    for column in ("file", "state", "size", "needed for"):
        table.add_column(column, overflow="fold")
    for status in statuses:
        size = _size(status.size) + (f" ({status.n_files} files)" if status.path.is_dir() else "")
        style = "green" if status.present else "yellow" if status.covered_by else "red"
        table.add_row(
            status.file.relpath, f"[{style}]{status.state}[/]", size if status.present else "", status.file.needed_for
        )
    console = Console(width=max(Console().width, 140))
    console.print(table)
    missing = [s for s in statuses if not s.present and not s.covered_by]
    for hint in sorted({s.how_to_get for s in missing}):
        files = ", ".join(s.file.relpath for s in missing if s.how_to_get == hint)
        console.print(f"[bold]{files}[/]: {hint}", highlight=False)


@data_app.command("fetch")
def fetch_command(
    only: Annotated[
        str | None, typer.Option("--only", help="Fetch one group only: webshop or game24.", show_default=False)
    ] = None,
    data_dir: DataDirOption = None,
    mirror: Annotated[
        str | None, typer.Option("--mirror", help="Base URL laid out like the data dir ($STL_DATA_MIRROR).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download even files that are present and verified.")] = False,
    no_checksum: Annotated[
        bool, typer.Option("--no-checksum", help="Keep structural checks only (a mirror with other versions).")
    ] = False,
) -> None:
    """Download the official upstream files (WebShop 1k catalogue, attributes, human instructions; ToT's 24.csv)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from langgraph_stl.data import DataFile, FetchError, fetch

    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=None)

        def on_file(file: DataFile) -> None:
            progress.reset(task, description=file.relpath, total=file.size)

        def on_bytes(n: int, total: int | None) -> None:
            progress.update(task, advance=n, total=total)

        try:
            results = fetch(
                only,
                data_dir=data_dir,
                mirror=mirror,
                verify_checksums=not no_checksum,
                force=force,
                on_file=on_file,
                on_bytes=on_bytes,
            )
        except ValueError as exc:
            err.print(f"error: {exc}", highlight=False)
            raise typer.Exit(2) from None
        except FetchError as exc:
            progress.stop()
            err.print(f"error: {exc}", highlight=False)
            raise typer.Exit(1) from None
    for result in results:
        typer.echo(f"{result.relpath}: {result.action} ({_size(result.size)}, {result.summary})")


@data_app.command("prepare")
def prepare_command(
    what: Annotated[str, typer.Argument(help="What to prepare: webshop (title noun tokens for the reward).")],
    data_dir: DataDirOption = None,
) -> None:
    """Compute derived artefacts once (WebShop: spaCy title nouns for the reward; needs the `prepare` extra)."""
    if what != "webshop":
        typer.echo(f"error: unknown target {what!r}; choose: webshop", err=True)
        raise typer.Exit(2)
    from langgraph_stl.envs.webshop.catalog import WebShopDataError
    from langgraph_stl.envs.webshop.prepare import TitleNounsUnavailable, prepare
    from langgraph_stl.paths import DataNotFoundError

    try:
        result = prepare(data_dir)
    except (DataNotFoundError, TitleNounsUnavailable, WebShopDataError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"webshop prepared{f': {result}' if result is not None else ''}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to `app`."""
    app.add_typer(data_app, name="data")
