"""`stl search`: one tree search (greedy / BFS / MCTS) on a Game-of-24 or WebShop task, with live progress."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from langgraph_stl.cli._options import RequestTimeout, apply_request_timeout


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def search_command(
    env: Annotated[str, typer.Option("--env", help="Environment: game24 or webshop.")] = "game24",
    task: Annotated[
        str, typer.Option("--task", help='Task id: a 24.csv row ("900") or "fixed_0" for WebShop.')
    ] = "900",
    policy: Annotated[
        str,
        typer.Option("--policy", help="Policy: 'enumerate', 'enumerate:shuffle' or a model spec (smollm2, hf:DIR...)."),
    ] = "smollm2",
    value: Annotated[
        str, typer.Option("--value", help="Value model spec; prefix 'stl:' for a fine-tuned STL value model.")
    ] = "smollm2",
    algorithm: Annotated[str, typer.Option("--algorithm", help="greedy, bfs or mcts.")] = "greedy",
    width: Annotated[int, typer.Option("--width", help="Proposals per expansion.")] = 5,
    breadth: Annotated[int, typer.Option("--breadth", help="BFS beam size.")] = 5,
    depth: Annotated[
        int | None, typer.Option("--depth", help="Max actions (default: 3 for game24, 5 for webshop).")
    ] = None,
    rollouts: Annotated[int, typer.Option("--rollouts", help="Independent greedy rollouts (pass@n).")] = 3,
    value_samples: Annotated[int, typer.Option("--value-samples", help="Value samples per state.")] = 5,
    budget: Annotated[int, typer.Option("--budget", help="MCTS expansions.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Seed of tie-breaking and shuffles.")] = 0,
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature of both models.")] = 1.0,
    value_mode: Annotated[
        str, typer.Option("--value-mode", help="generate or logits (one forward pass).")
    ] = "generate",
    webshop_url: Annotated[
        str | None, typer.Option("--webshop-url", help="A running WebShop server (default: an embedded one).")
    ] = None,
    webshop_goals: Annotated[
        int | None, typer.Option("--webshop-goals", help="Number of goals of the --webshop-url server.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the report.")] = False,
    request_timeout: RequestTimeout = None,
) -> None:
    """Search one task and print the chosen trajectory, its true reward (for display only) and the statistics."""
    apply_request_timeout(request_timeout)
    from rich.console import Console

    from langgraph_stl.envs import make_env
    from langgraph_stl.search import SearchContext, make_policy, make_value, run_search

    try:
        ctx = SearchContext(
            algorithm=algorithm,
            width=width,
            breadth=breadth,
            depth=depth if depth is not None else (3 if env == "game24" else 5),
            n_rollouts=rollouts,
            n_value_samples=value_samples,
            budget=budget,
            seed=seed,
            temperature=temperature,
            value_mode=value_mode,
        )
        pol = make_policy(policy, temperature=temperature)
        val = make_value(value, temperature=temperature, mode=ctx.value_mode)  # type: ignore[arg-type]
        environment = make_env(env, webshop_url=webshop_url, webshop_goals=webshop_goals)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise _fail(str(exc), 2) from None
    console = Console(stderr=True)
    try:
        with console.status("searching...") as status:
            progress = _Progress(status)
            result = run_search(
                environment,
                pol,
                val,
                task,
                algorithm=ctx.algorithm,
                context=ctx,
                on_event=progress,  # type: ignore[arg-type]
            )
    finally:
        environment.close()
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _report(Console(), result)
    if result.get("error"):
        raise typer.Exit(1)


class _Progress:
    """Turns the graph's custom stream events into a one-line live status."""

    def __init__(self, status: Any) -> None:
        self.status, self.expanded, self.valued, self.best = status, 0, 0, float("-inf")

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "expanded":
            self.expanded += 1
        elif event["type"] == "value":
            self.valued += 1
            self.best = max(self.best, event["value"])
        best = f"{self.best:.2f}" if self.valued else "-"
        self.status.update(f"searching... {self.expanded} nodes expanded, {self.valued} states valued, best {best}")


def _report(console: Any, result: dict[str, Any]) -> None:
    from rich.table import Table

    if result.get("error"):
        console.print(f"[red]search failed:[/red] {result['error']}")
    console.print(f"[bold]Task {result['task_id']}[/bold] ({result['algorithm']})")
    for i, action in enumerate(result["trajectory"], 1):
        console.print(f"  {i}. {action}")
    if result.get("value") is not None:
        console.print(f"value estimate of the chosen leaf: {result['value']:.3f}")
    truth = result.get("true_reward")
    if truth:
        console.print(
            f"true reward (display only, never used by the search): chosen {truth['value_selected']:.3f}, "
            f"pass@{truth['n']} (oracle best) {truth['pass_at_n']:.3f}, mean over rollouts {truth['mean']:.3f}"
        )
    table = Table(title="statistics")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for key in ("states_expanded", "expansions", "policy_calls", "value_calls", "invalid_proposals"):
        table.add_row(key, str(result.get(key, 0)))
    table.add_row("value_parse_failures", str(result.get("value_parse_failures", 0)))
    for model, usage in result.get("tokens", {}).items():
        table.add_row(f"tokens {model}", f"{usage['input_tokens']} in / {usage['output_tokens']} out")
    table.add_row("wall time (s)", f"{result.get('wall_time_s', 0):.2f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``stl search``."""
    app.command("search")(search_command)
