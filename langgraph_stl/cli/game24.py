"""`stl game24`: solve, check and inspect Game-of-24 puzzles (exact arithmetic, no model needed)."""

from __future__ import annotations

from typing import Annotated

import typer

game24_app = typer.Typer(help="Game of 24: solve and check puzzles, show tasks.", no_args_is_help=True)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@game24_app.command("solve")
def solve_command(puzzle: Annotated[str, typer.Argument(help='Four numbers in 1..13, e.g. "4 5 6 10".')]) -> None:
    """Print an expression that makes 24 (exit 1 if the puzzle has none, 2 if it is malformed)."""
    from langgraph_stl.envs.game24 import PuzzleError, solve

    try:
        expression = solve(puzzle)
    except PuzzleError as exc:
        raise _fail(f"error: {exc}", 2) from None
    if expression is None:
        raise _fail(f"no solution: {puzzle.strip()} cannot make 24 with + - * /", 1)
    typer.echo(expression)


@game24_app.command("check")
def check_command(
    puzzle: Annotated[str, typer.Argument(help='Four numbers in 1..13, e.g. "4 5 6 10".')],
    answer: Annotated[str, typer.Argument(help='An answer such as "(10 - 4) * (5 - 6 / 6) = 24".')],
) -> None:
    """Score an answer like Tree-of-Thoughts' test_output (exit 0 if correct, 1 if not, 2 for a bad puzzle)."""
    from langgraph_stl.envs.game24 import PuzzleError, check_answer

    try:
        correct = check_answer(puzzle, answer)
    except PuzzleError as exc:
        raise _fail(f"error: {exc}", 2) from None
    typer.echo("correct" if correct else "wrong")
    if not correct:
        raise typer.Exit(1)


@game24_app.command("show")
def show_command(
    task_id: Annotated[str, typer.Argument(help='A row of 24.csv ("900") or a puzzle ("4 5 6 10").')],
) -> None:
    """Show a task: its instruction, the first legal moves and one solution."""
    from langgraph_stl.envs.base import InvalidTaskError
    from langgraph_stl.envs.game24 import Game24Env, PuzzleError, solve

    env = Game24Env()
    try:
        state = env.reset(task_id)
    except (InvalidTaskError, PuzzleError) as exc:
        raise _fail(f"error: {exc}", 2) from None
    actions = env.legal_actions(state)
    splits = [name for name in ("train", "dev", "test") if task_id.strip() in env.task_ids(name)]
    typer.echo(f"task {task_id.strip()} ({env.source}{', ' + splits[0] if splits else ''})")
    typer.echo(env.instruction(state))
    typer.echo(f"{len(actions)} legal first moves, e.g.: " + "; ".join(actions[:3]))
    typer.echo(f"solution: {solve(state['puzzle']) or 'none'}")


def register(app: typer.Typer) -> None:
    """Add the ``game24`` command group to `app`."""
    app.add_typer(game24_app, name="game24")
