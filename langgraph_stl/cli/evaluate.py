"""`stl` commands: eval (run a search configuration over tasks) and report (score results files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def report(
    files: Annotated[list[Path], typer.Argument(help="Results files: ours (stl eval) or the STL reference's JSONL.")],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Compare every file against this one (paired bootstrap).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document instead of markdown.")] = False,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Write Pareto plots (cost / states vs score) as PNG here.")
    ] = None,
    n_tasks: Annotated[
        int | None,
        typer.Option(
            "--n-tasks",
            help="Score over the first N tasks. Default: the run header's task list, else the file name's "
            "'_a-b' range, else task indices 0..max seen.",
        ),
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Bootstrap random seed.")] = 0,
    reference_test: Annotated[
        bool, typer.Option("--reference-test", help="Also print the reference's unpaired bootstrap p-values.")
    ] = False,
    prices: Annotated[
        Path | None, typer.Option("--prices", help="JSON/TOML price table to recompute costs from token counts.")
    ] = None,
) -> None:
    """Score results files: oracle pass@k, single trajectory and value-selected; missing tasks count as 0."""
    from langgraph_stl.evaluation.prices import PriceTable
    from langgraph_stl.evaluation.report import build_report, plot_pareto

    try:
        table = PriceTable.load(prices) if prices else None
        rep = build_report(
            files,
            baseline=baseline,
            n_tasks=n_tasks,
            resamples=resamples,
            seed=seed,
            reference_test=reference_test,
            prices=table,
        )
    except ValueError as exc:  # ResultsFormatError is a ValueError; both carry a message meant for the user
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(rep.to_json(), indent=2))
    else:
        typer.echo(rep.to_markdown())
    if plots is not None:
        written = plot_pareto(rep, plots)
        typer.echo(f"plots: {', '.join(map(str, written)) or 'none (no file records cost or states)'}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("report")(report)
