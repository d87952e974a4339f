"""`stl webshop ...` commands: the local WebShop server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

webshop_app = typer.Typer(name="webshop", help="WebShop: serve the shop, search its catalogue.", no_args_is_help=True)


@webshop_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 3000,
    goals: Annotated[str, typer.Option(help="Goal set: synthetic (text env, AgentGym) or human (Flask app).")] = (
        "synthetic"
    ),
    attrs: Annotated[bool, typer.Option("--attrs/--no-attrs", help="Show the Attributes tab on item pages.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of prices and goal price caps (original after random.seed).")] = 0,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default: STL_DATA_DIR or the cache).")] = None,
) -> None:
    """Serve WebShop with the original's routes and pages: fixed_<i> sessions select goal i."""
    import uvicorn
    from rich.console import Console

    from langgraph_stl.envs.webshop.server import load_site, uvicorn_config
    from langgraph_stl.paths import DataNotFoundError

    if goals not in ("synthetic", "human"):
        raise typer.BadParameter("use synthetic or human", param_hint="--goals")
    console = Console(stderr=True)
    with console.status("loading catalogue, goals and search index"):
        try:
            site = load_site(data_dir, goals=goals, seed=seed, show_attrs=attrs)
        except DataNotFoundError as err:
            console.print(f"[red]{err}[/red]")
            raise typer.Exit(2) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning: listening on {host}, not loopback: others can reach the shop[/yellow]")
    console.print(
        f"WebShop: {len(site.products)} products, {len(site.goals)} {goals} goals; "
        f"open http://{host}:{port}/fixed_0 (Ctrl-C to stop)"
    )
    uvicorn.Server(uvicorn_config(site, host=host, port=port)).run()


@webshop_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Search keywords, as typed into the shop's search box.")],
    top: Annotated[int, typer.Option(min=1, max=1000, help="How many hits to return (the shop uses 50).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {rank, asin, score}.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default: STL_DATA_DIR or the cache).")] = None,
) -> None:
    """Rank the catalogue for QUERY with the shop's BM25 engine (pyserini/Lucene-exact scores)."""
    from langgraph_stl.envs.webshop.search_engine import format_results, load_search_engine
    from langgraph_stl.paths import DataNotFoundError

    try:
        engine = load_search_engine(data_dir)
    except DataNotFoundError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    # The original app lower-cases the query in Python before it reaches Lucene.
    typer.echo(format_results(engine.search(query.lower(), k=top), as_json=as_json))


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(webshop_app)
