"""`stl search`: one tree search (greedy / BFS / MCTS) on a Game-of-24 or WebShop task, with live progress.

Progress goes to stderr (the result to stdout): expansions, states valued, the best value so far, model calls done
and running, tokens and elapsed time. On a terminal it is one live line; otherwise (a log file, CI) one line per
expansion and, while models work, at most one every :data:`HEARTBEAT_S` seconds. ``--quiet`` turns it off.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from langgraph_stl.cli._options import RequestTimeout, apply_request_timeout
from langgraph_stl.models.usage import TokenUsageCallback

HEARTBEAT_S = 10.0
"""Seconds between progress lines while models work, when stderr is not a terminal."""


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
    policy_max_tokens: Annotated[
        int | None, typer.Option("--policy-max-tokens", help="Reply budget of a policy model (default: 160).")
    ] = None,
    value_max_tokens: Annotated[
        int | None,
        typer.Option("--value-max-tokens", help="Reply budget of a value model (default: 192; 1536 for stl: specs)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the report.")] = False,
    request_timeout: RequestTimeout = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress on stderr.")] = False,
    tree: Annotated[
        Path | None,
        typer.Option("--tree", help="Save every node of the search tree here (gzip JSON; view it with stl view)."),
    ] = None,
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
        pol = make_policy(policy, temperature=temperature, max_tokens=policy_max_tokens)
        val = make_value(
            value,
            temperature=temperature,
            mode=ctx.value_mode,  # type: ignore[arg-type]
            max_tokens=value_max_tokens,
        )
        environment = make_env(env, webshop_url=webshop_url, webshop_goals=webshop_goals)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise _fail(str(exc), 2) from None
    progress = _Progress(Console(stderr=True), quiet=quiet)
    try:
        with progress:
            result = run_search(
                environment,
                pol,
                val,
                task,
                algorithm=ctx.algorithm,
                context=ctx,
                on_event=progress.event,
                callbacks=[progress],
                keep_tree=tree is not None,
            )
    finally:
        environment.close()
    if tree is not None:
        _save_tree(result, tree, {"env": env, "policy": policy, "value": value, "search": dataclasses.asdict(ctx)})
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _report(Console(), result)
    if result.get("error"):
        raise typer.Exit(1)


def _save_tree(result: dict[str, Any], path: Path, config: dict[str, Any]) -> None:
    from langgraph_stl.evaluation.trees import SearchTree, write_tree

    raw = result.pop("tree", None)
    if raw:  # a search that failed before its root existed has no tree
        written = write_tree(SearchTree.from_result({**result, "tree": raw}, config=config), path)
        typer.echo(f"tree: {written} ({len(raw)} nodes; open it with: stl view {written})", err=True)


class _Progress(TokenUsageCallback):
    """Live progress from the graph's custom events and the model callbacks (calls started/ended, tokens)."""

    def __init__(self, console: Any, *, quiet: bool) -> None:
        super().__init__()
        self.console, self.quiet = console, quiet
        self.live = not quiet and console.is_terminal
        self.start = time.perf_counter()
        self.expanded = self.valued = self.running = 0
        self.best = float("-inf")
        self._last_line = self.start
        self._print_lock = threading.Lock()
        self._status: Any = None

    def __enter__(self) -> _Progress:
        if self.live:
            self._status = self.console.status(self)  # rich re-renders __rich__ at its refresh rate
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
        elif not self.quiet:
            self._line()

    def line(self) -> str:
        """``12.3s · 3 expanded · 15 valued · best 0.62 · 20 model calls (4 running) · 5,210 in / 812 out tokens``"""
        usage = self.as_dict().values()
        calls = sum(u["calls"] for u in usage)
        tokens_in, tokens_out = sum(u["input_tokens"] for u in usage), sum(u["output_tokens"] for u in usage)
        best = f"{self.best:.2f}" if self.valued else "-"
        return (
            f"{time.perf_counter() - self.start:.1f}s · {self.expanded} expanded · {self.valued} valued · best {best}"
            f" · {calls} model calls ({self.running} running) · {tokens_in:,} in / {tokens_out:,} out tokens"
        )

    def __rich__(self) -> str:
        return "searching: " + self.line()

    def _line(self) -> None:
        with self._print_lock:
            self._last_line = time.perf_counter()
            print("stl search: " + self.line(), file=sys.stderr, flush=True)

    def event(self, event: dict[str, Any]) -> None:
        """A custom stream event of the search graph."""
        if event["type"] == "expanded":
            self.expanded += 1
        elif event["type"] == "value":
            self.valued += 1
            self.best = max(self.best, event["value"])
        if not self.live and not self.quiet and event["type"] in ("start", "expanded"):
            self._line()

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.running += 1

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        super().on_llm_end(response, **kwargs)
        self._finished()

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self._finished()

    def _finished(self) -> None:
        with self._lock:
            self.running = max(0, self.running - 1)
        if not self.live and not self.quiet and time.perf_counter() - self._last_line >= HEARTBEAT_S:
            self._line()


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
