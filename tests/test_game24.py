"""Game of 24: puzzle set, splits, move enumeration, dynamics, solver, safe answer checking, CLI."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from langgraph_stl.envs.base import InvalidTaskError
from langgraph_stl.envs.game24 import (
    ExpressionError,
    Game24Env,
    PuzzleError,
    _plan,
    check_answer,
    evaluate_expression,
    expression_of,
    generate_puzzles,
    parse_puzzle,
    solve,
)
from tests.conftest import REPO


@pytest.fixture(scope="module")
def env(data_dir: Path) -> Game24Env:
    return Game24Env(data_dir)


@pytest.fixture(scope="module")
def generated() -> list[tuple[int, ...]]:
    return generate_puzzles()


# ------------------------------------------------------------------------------------------- puzzle set and splits


def test_generated_set_equals_tot_csv(generated: list[tuple[int, ...]], data_dir: Path) -> None:
    with (data_dir / "game24" / "24.csv").open(newline="") as fh:
        csv_puzzles = [tuple(sorted(int(n) for n in row["Puzzles"].split())) for row in csv.DictReader(fh)]
    assert len(generated) == 1362
    assert len(set(generated)) == 1362
    assert len(csv_puzzles) == 1362
    assert set(generated) == set(csv_puzzles)
    assert generated == sorted(generated)


def test_csv_order_and_tot_split(env: Game24Env) -> None:
    assert env.source == "24.csv"
    assert env.puzzles[0] == (1, 1, 4, 6)
    assert env.puzzles[900] == (4, 5, 6, 10)
    assert env.puzzles[999] == (4, 9, 10, 13)
    assert env.puzzles[1361] == (2, 3, 5, 12)
    test, dev, train, every = (env.task_ids(s) for s in ("test", "dev", "train", "all"))
    assert test == [str(i) for i in range(900, 1000)]
    assert (len(test), len(dev), len(train), len(every)) == (100, 100, 1162, 1362)
    assert not set(test) & set(dev) and not set(test) & set(train) and not set(dev) & set(train)
    assert sorted(test + dev + train, key=int) == every
    with pytest.raises(ValueError, match="unknown split"):
        env.task_ids("validation")


def test_fallback_without_csv(tmp_path: Path, generated: list[tuple[int, ...]]) -> None:
    with pytest.warns(UserWarning, match="NOT Tree-of-Thoughts' test puzzles"):
        env = Game24Env(tmp_path)
    assert env.source == "generated"
    assert env.puzzles == generated
    assert env.reset("0")["puzzle"] == [1, 1, 1, 8]
    assert len(env.task_ids("test")) == 100


def test_malformed_csv_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "game24").mkdir()
    (tmp_path / "game24" / "24.csv").write_text("Rank,Puzzles\n1,1 1 4 6\n2,1 1 x 6\n")
    with pytest.raises(PuzzleError, match=r"24\.csv:3: puzzle numbers must be integers"):
        Game24Env(tmp_path)


def test_reset_and_task_errors(env: Game24Env) -> None:
    state = env.reset("900")
    assert state == {"task_id": "900", "puzzle": [4, 5, 6, 10], "numbers": ["4", "5", "6", "10"], "history": []}
    assert env.reset("10 4 6 5")["puzzle"] == [4, 5, 6, 10]
    for bad in ("1362", "4 5 6", "apple", "0 1 2 3"):
        with pytest.raises(InvalidTaskError):
            env.reset(bad)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("4 5 6", "has 4 numbers, got 3"),
        ("4 5 6 10 11", "got 5"),
        ("4 5 6 1.5", "must be integers"),
        ("4 5 six 10", "must be integers"),
        ("0 5 6 10", "in 1..13, got 0"),
        ("4 5 6 14", "got 14"),
        ("", "got 0"),
    ],
)
def test_parse_puzzle_errors(text: str, error: str) -> None:
    with pytest.raises(PuzzleError, match=error):
        parse_puzzle(text)


def test_parse_puzzle_forms() -> None:
    assert parse_puzzle("10 4 6 5") == (4, 5, 6, 10)
    assert parse_puzzle(" 4,5, 6 ,10 ") == (4, 5, 6, 10)
    assert parse_puzzle([13, 1, 1, 1]) == (1, 1, 1, 13)


# ------------------------------------------------------------------------------------------- legal moves


def _brute_force_moves(numbers: list[Fraction]) -> set[tuple[str, tuple[Fraction, ...]]]:
    """Every (op, operands) over index pairs with a non-negative result; + and * keyed by the unordered pair."""
    moves = set()
    for i, j in itertools.permutations(range(len(numbers)), 2):
        a, b = numbers[i], numbers[j]
        for op in "+-*/":
            if op == "/" and b == 0:
                continue
            result = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else Fraction(0)}[op]
            if result >= 0:
                moves.add((op, tuple(sorted((a, b))) if op in "+*" else (a, b)))
    return moves


def _parsed(action: str) -> tuple[str, tuple[Fraction, ...]]:
    a, op, b = action.split(" = ")[0].split()
    key = (Fraction(a), Fraction(b))
    return op, tuple(sorted(key)) if op in "+*" else key


@pytest.mark.parametrize(
    ("task", "count"),
    [("4 5 6 10", 30), ("4 4 4 5", 9), ("3 3 8 8", 13), ("1 1 1 1", 4), ("2 2 2 2", 4)],
)
def test_legal_actions_count_and_completeness(env: Game24Env, task: str, count: int) -> None:
    state = env.reset(task)
    actions = env.legal_actions(state)
    assert len(actions) == count
    keys = [_parsed(a) for a in actions]
    assert len(set(keys)) == len(keys), "commutative or equal-number duplicate"
    assert set(keys) == _brute_force_moves([Fraction(n) for n in state["numbers"]])


def test_legal_actions_after_a_fraction(env: Game24Env) -> None:
    state = env.step(env.reset("3 3 8 8"), "8 / 3 = 8/3").state
    assert state["numbers"] == ["8/3", "3", "8"]
    actions = env.legal_actions(state)
    assert "3 - 8/3 = 1/3 (left: 1/3 8)" in actions
    assert {_parsed(a) for a in actions} == _brute_force_moves([Fraction(n) for n in state["numbers"]])
    for action in actions:
        result = env.step(state, action)
        assert result.valid, result.message
        assert len(result.state["numbers"]) == 2


def test_legal_actions_lose_no_solution() -> None:
    """Leaving out negative intermediates never turns a solvable multiset unsolvable (all 1820 multisets)."""
    for combo in itertools.combinations_with_replacement(range(1, 14), 4):
        values = tuple(Fraction(n) for n in combo)
        assert (_plan(values) is None) == (_plan(values, True) is None), combo


# ------------------------------------------------------------------------------------------- dynamics


def test_solving_walkthrough(env: Game24Env) -> None:
    state = env.reset("900")
    assert not env.is_terminal(state)
    r1 = env.step(state, "10 - 4 = 6")
    assert r1.valid and r1.state["numbers"] == ["5", "6", "6"]
    assert state["numbers"] == ["4", "5", "6", "10"], "step must not mutate its input"
    r2 = env.step(r1.state, "6 - 5 = 1 (left: 1 6)")
    assert r2.valid, r2.message
    r3 = env.step(r2.state, "6 × 1 = 6")
    assert r3.valid and r3.state["numbers"] == ["6"]
    assert env.is_terminal(r3.state) and env.legal_actions(r3.state) == []
    assert env.true_reward(r3.state) == 0.0
    r3 = env.step(r2.state, "6 + 1 = 7")
    assert env.true_reward(r3.state) == 0.0

    win = env.reset("900")
    for action in ("10 - 6 = 4 (left: 4 4 5)", "5 * 4 = 20 (left: 4 20)", "20 + 4 = 24 (left: 24)"):
        result = env.step(win, action)
        assert result.valid, result.message
        win = result.state
    assert env.is_terminal(win) and env.true_reward(win) == 1.0
    assert expression_of(win) == "(5 * (10 - 6)) + 4"
    assert check_answer("4 5 6 10", f"Answer: {expression_of(win)} = 24")
    assert env.observation(win) == (
        "Input: 4 5 6 10\nSteps:\n10 - 6 = 4 (left: 4 4 5)\n5 * 4 = 20 (left: 4 20)\n20 + 4 = 24 (left: 24)\n"
        "Answer: (5 * (10 - 6)) + 4 = 24"
    )
    assert env.observation(env.reset("900")) == "Input: 4 5 6 10\nSteps:\n(none yet)\nLeft: 4 5 6 10"
    assert "obtain 24" in env.instruction(win) and "Input: 4 5 6 10" in env.instruction(win)
    assert env.true_reward(env.reset("1 1 4 6")) == 0.0


def test_exact_fractions(env: Game24Env) -> None:
    state = env.reset("3 3 8 8")
    for action in ("8 / 3 = 8/3", "3 - 8/3 = 1/3 (left: 1/3 8)", "8 / 1/3 = 24"):
        result = env.step(state, action)
        assert result.valid, result.message
        state = result.state
    assert env.true_reward(state) == 1.0
    assert expression_of(state) == "8 / (3 - (8 / 3))"
    assert env.step(env.reset("1 1 2 13"), "13 / 2 = 6.5").state["numbers"] == ["1", "1", "13/2"]


def test_negative_results_are_valid_steps(env: Game24Env) -> None:
    result = env.step(env.reset("4 5 6 10"), "4 - 10 = -6")
    assert result.valid and result.state["numbers"] == ["-6", "5", "6"]
    actions = env.legal_actions(result.state)
    assert "6 + -6 = 0 (left: 0 5)" in actions and "5 - -6 = 11 (left: 6 11)" in actions
    assert all(env.step(result.state, action).valid for action in actions)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("7 + 4 = 11", "7 is not among the remaining numbers (4 5 6 10)"),
        ("4 + 4 = 8", "4 is not twice among the remaining numbers"),
        ("4 + 6 = 11", "4 + 6 = 10, not 11"),
        ("4 / 10 = 0.41", "4 / 10 = 2/5, not 0.41"),
        ("10 / 4 = 2.5 (left: 2.5 5 6)", ""),
        ("10 - 4 = 6 (left: 6 5 10)", "the numbers left would be 5 6 6, not 6 5 10"),
        ("10 - 4 = 6 (left: 5 6 x)", "'x' is not a number"),
        ("4 + 5 = 9/0", "'9/0' is not a number"),
        ("add 4 and 5", "expected a step like '4 + 8 = 12'"),
        ("", "expected a step"),
        ("4 ** 5 = 1024", "expected a step"),
    ],
)
def test_invalid_actions_explain(env: Game24Env, action: str, reason: str) -> None:
    state = env.reset("900")
    result = env.step(state, action)
    if not reason:
        assert result.valid, result.message
        return
    assert not result.valid
    assert result.state is state
    assert reason in result.message


def test_division_by_zero_and_game_over(env: Game24Env) -> None:
    state = env.step(env.reset("4 4 5 6"), "4 - 4 = 0").state
    result = env.step(state, "5 / 0 = 0")
    assert not result.valid and "division by zero" in result.message
    assert "5 / 0" not in " ".join(env.legal_actions(state))
    while not env.is_terminal(state):
        state = env.step(state, env.legal_actions(state)[0]).state
    result = env.step(state, "1 + 1 = 2")
    assert not result.valid and "game is over" in result.message


def test_states_round_trip_through_json(env: Game24Env) -> None:
    state = env.reset("3 3 8 8")
    for action in ("8 / 3 = 8/3", "3 - 8/3 = 1/3"):
        state = env.step(json.loads(json.dumps(state)), action).state
        assert json.loads(json.dumps(state)) == state
    restored = json.loads(json.dumps(state))
    assert env.observation(restored) == env.observation(state)
    assert env.legal_actions(restored) == env.legal_actions(state)
    final = env.step(restored, "8 / 1/3 = 24").state
    assert env.true_reward(final) == 1.0


async def test_async_twins(env: Game24Env) -> None:
    state = await env.areset("900")
    result = await env.astep(state, "10 - 6 = 4")
    assert result.valid
    assert await env.alegal_actions(result.state) == env.legal_actions(result.state)
    assert await env.atrue_reward(result.state) == 0.0


# ------------------------------------------------------------------------------------------- solver and scoring


def test_solver_on_every_puzzle(env: Game24Env, generated: list[tuple[int, ...]]) -> None:
    for puzzle in env.puzzles:
        expression = solve(puzzle)
        assert expression is not None, puzzle
        assert check_answer(" ".join(map(str, puzzle)), expression), (puzzle, expression)
    unsolvable = set(itertools.combinations_with_replacement(range(1, 14), 4)) - set(generated)
    assert len(unsolvable) == 1820 - 1362
    assert all(solve(p) is None for p in sorted(unsolvable))
    assert solve("1 1 1 1") is None
    assert solve("13 13 13 13") is None
    with pytest.raises(PuzzleError):
        solve("1 1 1")


@pytest.mark.parametrize(
    ("output", "correct"),
    [
        ("(5 * (10 - 6)) + 4", True),
        ("Answer: (5 * (10 - 6)) + 4 = 24", True),
        ("10 - 6 = 4 (left: 4 4 5)\n5 * 4 = 20 (left: 4 20)\nanswer: 4 + 5*(10-6) = 24", True),
        ("ANSWER: 4 + 5*(10-6) = 24\n", True),
        ("Answer: 4 + 5*(10-6) = 24\nI hope this helps", False),
        ("(5 * (10 - 6)) + 4 + 0", False),
        ("(5 * (10 - 6)) * 4", False),
        ("5 * 4 + 10 - 6 + 0 * 1", False),
        ("4 - -(5 * (10 - 6))", True),
        ("4 + 5 * (10 - 6", False),
        ("4 + 5 ** (10 - 6)", False),
        ("(4 + 5) / (10 - 10) * 6", False),
        ("__import__('os').system('echo pwned')", False),
        ("4 + 5 * (10 - 6) if True else 0", False),
        ("", False),
    ],
)
def test_check_answer(output: str, correct: bool) -> None:
    assert check_answer("4 5 6 10", output) is correct


def test_check_answer_bad_puzzle() -> None:
    with pytest.raises(PuzzleError):
        check_answer("4 5 6", "4 + 5 + 6 = 15")


def test_check_answer_exact_where_floats_fail() -> None:
    assert check_answer("3 3 8 8", "8 / (3 - 8 / 3) = 24")
    assert 8 / (3 - 8 / 3) != 24  # what float evaluation would get wrong


def test_evaluate_expression_is_never_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert evaluate_expression("(1 + 2) * 3 / 4") == (Fraction(9, 4), [1, 2, 3, 4])
    with pytest.raises(ExpressionError, match="unexpected character '_'"):
        evaluate_expression("__import__('os')")
    with pytest.raises(ExpressionError, match="division by zero"):
        evaluate_expression("1 / (2 - 2)")
    with pytest.raises(ExpressionError, match="unexpected end"):
        evaluate_expression("(1 + 2")
    with pytest.raises(ExpressionError, match="empty"):
        evaluate_expression("   ")
    with pytest.raises(ExpressionError, match="nested more than 100 levels"):
        evaluate_expression("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(ExpressionError, match="nested more than 100 levels"):
        evaluate_expression("-" * 5000 + "1")
    with pytest.raises(ExpressionError, match="too long"):
        evaluate_expression("9" * 5000)
    assert evaluate_expression("(" * 50 + "24" + ")" * 50)[0] == 24
    assert not check_answer("4 5 6 10", "(" * 5000 + "4" + ")" * 5000)


# ------------------------------------------------------------------------------------------- CLI


def _stl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langgraph_stl", "game24", *args], capture_output=True, text=True, cwd=REPO
    )


def test_cli_solve_exit_codes() -> None:
    ok = _stl("solve", "4 5 6 10")
    assert ok.returncode == 0
    assert check_answer("4 5 6 10", ok.stdout)
    none = _stl("solve", "1 1 1 1")
    assert none.returncode == 1 and "no solution" in none.stderr
    bad = _stl("solve", "4 5 x 10")
    assert bad.returncode == 2 and "must be integers" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_check_and_show() -> None:
    assert _stl("check", "3 3 8 8", "8 / (3 - 8 / 3) = 24").returncode == 0
    assert _stl("check", "3 3 8 8", "__import__('os')").returncode == 1
    assert _stl("check", "3 3 8", "1").returncode == 2
    shown = _stl("show", "900")
    assert shown.returncode == 0, shown.stderr
    assert "task 900 (24.csv, test)" in shown.stdout and "Input: 4 5 6 10" in shown.stdout
    missing = _stl("show", "99999")
    assert missing.returncode == 2 and "rows 0..1361" in missing.stderr
