"""Game of 24 (Tree-of-Thoughts' benchmark) as an exact, JSON-native environment.

A puzzle is four integers in 1..13; a step combines two remaining numbers with ``+ - * /`` into a new one, written
the Tree-of-Thoughts way: ``"4 + 8 = 12 (left: 6 10 12)"``. All arithmetic is exact (:class:`fractions.Fraction`),
so ``8 / 3`` stays ``8/3`` and ``(8 / 3) * 9`` is exactly 24: floating point would both accept wrong answers and
reject right ones.

Tasks follow ToT's ``24.csv`` (rows sorted by human solve time): task id ``"i"`` is the 0-based row ``i``, and
ToT's test split is rows 900–999. This module also generates the puzzle set itself (every solvable multiset over
1..13; there are 1362, exactly the rows of ``24.csv``), which is the fallback when ``24.csv`` is absent.

Scoring mirrors ToT's ``test_output`` but with a tokenizer and recursive-descent parser over exact fractions
instead of ``sympy.simplify`` on model output: nothing a model writes is ever evaluated as code.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from langgraph_stl.durable import decode_utf8
from langgraph_stl.envs.base import Environment, InvalidTaskError, State, StepResult, fingerprint
from langgraph_stl.paths import data_dir as resolve_data_dir

__all__ = [
    "CSV_RELPATH",
    "SPLITS",
    "TARGET",
    "ExpressionError",
    "Game24Env",
    "PuzzleError",
    "check_answer",
    "evaluate_expression",
    "expression_of",
    "generate_puzzles",
    "load_csv_puzzles",
    "parse_puzzle",
    "solve",
]

TARGET = Fraction(24)
CSV_RELPATH = "game24/24.csv"
PUZZLE_SIZE = 4
MIN_NUMBER, MAX_NUMBER = 1, 13
N_PUZZLES = 1362

SPLITS: dict[str, tuple[range, ...]] = {
    # ToT's `run.py` default and `scripts/game24/bfs.sh`: rows 900..999 (medium-hard by human solve time).
    "test": (range(900, 1000),),
    # The 100 rows just below the test band: the closest difficulty to test without touching it.
    "dev": (range(800, 900),),
    # Everything else: the easy head and the hard tail (1162 puzzles).
    "train": (range(0, 800), range(1000, N_PUZZLES)),
    "all": (range(0, N_PUZZLES),),
}
"""Row ranges of each split. Without ``24.csv`` the same ranges index the generated (lexicographic) order."""

_OPS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}
# Symbols models commonly write for the four operators.
_OP_ALIASES = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "x": "*", "X": "*", "/": "/", "÷": "/"}


class PuzzleError(ValueError):
    """A puzzle string is malformed (wrong count, not integers, out of range)."""


class ExpressionError(ValueError):
    """An arithmetic expression cannot be parsed or evaluated."""


# --------------------------------------------------------------------------------------------------- numbers


def format_number(value: Fraction) -> str:
    """Canonical text of an exact value: ``12``, ``-3``, ``5/2``."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _parse_number(text: str) -> Fraction:
    """Exact value of ``12``, ``-3``, ``5/2`` or a terminating decimal such as ``6.5``."""
    try:
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{text!r} is not a number") from exc


def parse_puzzle(text: str | Iterable[int]) -> tuple[int, ...]:
    """The four numbers of a puzzle such as ``"4 5 6 10"`` (spaces or commas), sorted ascending.

    Raises :class:`PuzzleError` with the reason for anything else.
    """
    parts = re.split(r"[\s,]+", text.strip()) if isinstance(text, str) else [str(p) for p in text]
    parts = [p for p in parts if p]
    if len(parts) != PUZZLE_SIZE:
        raise PuzzleError(f"a puzzle has {PUZZLE_SIZE} numbers, got {len(parts)}: {text!r}")
    numbers: list[int] = []
    for part in parts:
        if not re.fullmatch(r"[+-]?\d+", part):
            raise PuzzleError(f"puzzle numbers must be integers, got {part!r} in {text!r}")
        value = int(part)
        if not MIN_NUMBER <= value <= MAX_NUMBER:
            raise PuzzleError(f"puzzle numbers must be in {MIN_NUMBER}..{MAX_NUMBER}, got {value} in {text!r}")
        numbers.append(value)
    return tuple(sorted(numbers))


# --------------------------------------------------------------------------------------------------- solver


@dataclass(frozen=True, slots=True)
class _Move:
    a: Fraction
    op: str
    b: Fraction
    result: Fraction


def _moves(values: Sequence[Fraction], *, allow_negative: bool) -> list[_Move]:
    """Distinct moves on a sorted multiset: one order for ``+``/``*``, both for ``-``/``/``, equal values paired once.

    Pairs are formed over distinct values (not positions), so ``4 4 4 5`` yields ``4 + 4`` once, not three times.
    """
    distinct = [v for k, v in enumerate(values) if k == 0 or v != values[k - 1]]
    pairs = [(hi, lo) for k, hi in enumerate(distinct) for lo in distinct[:k]]
    pairs += [(v, v) for k, v in enumerate(values[1:]) if v == values[k] and (k == 0 or v != values[k - 1])]
    moves: list[_Move] = []
    for hi, lo in pairs:
        candidates = [(hi, "+", lo), (hi, "-", lo), (hi, "*", lo)]
        if hi != lo:
            candidates.insert(2, (lo, "-", hi))
        candidates += [(a, "/", b) for a, b in ((hi, lo), (lo, hi))[: 1 if hi == lo else 2] if b != 0]
        for a, op, b in candidates:
            result = _OPS[op](a, b)
            if allow_negative or result >= 0:
                moves.append(_Move(a, op, b, result))
    return moves


def _apply(values: Sequence[Fraction], move: _Move) -> tuple[Fraction, ...]:
    """The sorted multiset after ``move``; the operands must be present."""
    rest = list(values)
    rest.remove(move.a)
    rest.remove(move.b)
    rest.append(move.result)
    return tuple(sorted(rest))


@cache
def _plan(values: tuple[Fraction, ...], allow_negative: bool = False) -> tuple[_Move, ...] | None:
    """Moves that reduce the sorted multiset ``values`` to exactly 24, or None. Memoized across puzzles.

    Non-negative intermediates suffice (checked over all 1820 multisets in the tests), which halves the search.
    """
    if len(values) == 1:
        return () if values[0] == TARGET else None
    for move in _moves(values, allow_negative=allow_negative):
        rest = _plan(_apply(values, move), allow_negative)
        if rest is not None:
            return (move, *rest)
    return None


def _replay(numbers: Iterable[Fraction], moves: Iterable[tuple[Fraction, str, Fraction]]) -> list[tuple[Fraction, str]]:
    """Track each remaining number's expression through ``moves``; returns ``(value, expression)`` pairs.

    States record values, not which copy of an equal value a step used; the newest copy is taken, since a step
    that reuses a value just computed most likely meant that result.
    """
    items = [(n, format_number(n)) for n in numbers]

    def take(value: Fraction) -> str:
        for k in reversed(range(len(items))):
            v, expr = items[k]
            if v == value:
                del items[k]
                return expr
        raise ValueError(f"{format_number(value)} is not among the numbers")

    for a, op, b in moves:
        left, right = take(a), take(b)
        items.append((_OPS[op](a, b), f"({left} {op} {right})"))
    return items


def _strip_outer(expr: str) -> str:
    """``(a + b)`` → ``a + b`` when the outer parentheses enclose the whole expression."""
    if not (expr.startswith("(") and expr.endswith(")")):
        return expr
    depth = 0
    for k, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and k < len(expr) - 1:
            return expr
    return expr[1:-1]


def solve(numbers: str | Iterable[int]) -> str | None:
    """An expression using each number exactly once that equals 24 (e.g. ``"(5 * (10 - 6)) + 4"``), or None.

    ``numbers`` is a puzzle string or a sequence of four integers in 1..13 (:func:`parse_puzzle` validates it).
    """
    puzzle = parse_puzzle(numbers)
    values = tuple(Fraction(n) for n in puzzle)
    plan = _plan(values)
    if plan is None:
        return None
    ((_, expr),) = _replay(values, ((m.a, m.op, m.b) for m in plan))
    return _strip_outer(expr)


def generate_puzzles() -> list[tuple[int, ...]]:
    """Every solvable 4-number multiset over 1..13, in lexicographic order (1362 of them)."""
    return [
        combo
        for combo in itertools.combinations_with_replacement(range(MIN_NUMBER, MAX_NUMBER + 1), PUZZLE_SIZE)
        if _plan(tuple(Fraction(n) for n in combo)) is not None
    ]


# --------------------------------------------------------------------------------------------------- answers

_TOKEN = re.compile(r"\s*(?:(\d+)|(.))")
_MAX_DIGITS = 12
_MAX_DEPTH = 100  # bounds recursion: hostile input like "((((...1" must be an error, not a RecursionError


def _tokenize(expr: str) -> list[str]:
    tokens: list[str] = []
    for match in _TOKEN.finditer(expr):
        number, symbol = match.groups()
        if number is not None:
            if len(number) > _MAX_DIGITS:
                raise ExpressionError(f"number {number[:_MAX_DIGITS]}... is too long")
            tokens.append(number)
        elif symbol is not None and not symbol.isspace():
            if symbol not in "+-*/()":
                raise ExpressionError(f"unexpected character {symbol!r} in {expr!r} (allowed: digits + - * / ( ))")
            tokens.append(symbol)
    if not tokens:
        raise ExpressionError("empty expression")
    return tokens


class _Parser:
    """Recursive descent: ``expr := term (('+'|'-') term)*``, ``term := unary (('*'|'/') unary)*``,
    ``unary := ('+'|'-') unary | atom``, ``atom := integer | '(' expr ')'``."""

    def __init__(self, tokens: list[str], source: str) -> None:
        self.tokens, self.pos, self.source, self.numbers, self.depth = tokens, 0, source, list[int](), 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExpressionError(f"unexpected end of {self.source!r}")
        self.pos += 1
        return token

    def parse(self) -> Fraction:
        value = self.expr()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()!r} in {self.source!r}")
        return value

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = _OPS[self.take()](value, self.term())
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.unary()
            if op == "/" and right == 0:
                raise ExpressionError(f"division by zero in {self.source!r}")
            value = _OPS[op](value, right)
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            sign = self.take()
            value = self.nested(self.unary)
            return -value if sign == "-" else value
        return self.atom()

    def nested(self, parse: Callable[[], Fraction]) -> Fraction:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExpressionError(f"expression nested more than {_MAX_DEPTH} levels deep")
        value = parse()
        self.depth -= 1
        return value

    def atom(self) -> Fraction:
        token = self.take()
        if token == "(":
            value = self.nested(self.expr)
            if self.take() != ")":
                raise ExpressionError(f"missing ')' in {self.source!r}")
            return value
        if token.isdigit():
            self.numbers.append(int(token))
            return Fraction(int(token))
        raise ExpressionError(f"unexpected {token!r} in {self.source!r}")


def evaluate_expression(expr: str) -> tuple[Fraction, list[int]]:
    """Exact value of an arithmetic expression over integers, ``+ - * /`` and parentheses, and the integers it uses.

    Raises :class:`ExpressionError` for anything else (names, calls, powers, division by zero); never evaluates
    code.
    """
    parser = _Parser(_tokenize(expr), expr)
    return parser.parse(), parser.numbers


def check_answer(puzzle: str | Iterable[int], expression: str) -> bool:
    """ToT's ``test_output``: is ``expression`` (a model's output, possibly several lines) a correct answer?

    As in ToT: take the last line, drop ``answer:``, keep the left side of ``=``; the integers in it must be the
    puzzle's numbers as a multiset, and it must equal 24. Unlike ToT (``sympy.simplify``), only ``+ - * /``,
    parentheses and unary signs are accepted (no ``**``), evaluated exactly. Unparsable output is simply wrong.
    A malformed ``puzzle`` raises :class:`PuzzleError`.
    """
    numbers = sorted(parse_puzzle(puzzle))
    last_line = expression.strip().split("\n")[-1]
    left_side = re.sub(r"^\s*answer\s*:\s*", "", last_line.lower()).split("=")[0]
    try:
        value, used = evaluate_expression(left_side)
    except ExpressionError:
        return False
    return sorted(used) == numbers and value == TARGET


# --------------------------------------------------------------------------------------------------- data


def load_csv_puzzles(path: Path) -> list[tuple[int, ...]]:
    """Puzzles of ToT's ``24.csv`` (its ``Puzzles`` column) in file order; :class:`PuzzleError` if malformed."""
    return list(_load_csv_cached(path.resolve(), path.stat().st_mtime_ns))


@cache
def _load_csv_cached(path: Path, _mtime: int) -> tuple[tuple[int, ...], ...]:
    try:
        text = decode_utf8(path.read_bytes(), path)
    except ValueError as exc:
        raise PuzzleError(str(exc)) from None
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "Puzzles" not in reader.fieldnames:
            raise PuzzleError(f"{path} has no 'Puzzles' column (is it Tree-of-Thoughts' 24.csv?)")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append(parse_puzzle(row["Puzzles"] or ""))
            except PuzzleError as exc:
                raise PuzzleError(f"{path}:{line}: {exc}") from None
    return tuple(rows)


@cache
def _generated() -> tuple[tuple[int, ...], ...]:
    return tuple(generate_puzzles())


# --------------------------------------------------------------------------------------------------- environment

_NUM = r"[+-]?\d+(?:\.\d+)?(?:/\d+)?"
_OP = "|".join(re.escape(op) for op in _OP_ALIASES)
_STEP = re.compile(
    rf"^\s*(?P<a>{_NUM})\s*(?P<op>{_OP})\s*(?P<b>{_NUM})\s*=\s*(?P<c>{_NUM})"
    rf"\s*(?:\(\s*left\s*:\s*(?P<left>[^)]*)\))?\s*\.?\s*$",
    re.IGNORECASE,
)


def _values(state: State) -> list[Fraction]:
    return [Fraction(n) for n in state["numbers"]]


def _step_line(step: dict[str, Any]) -> str:
    return f"{step['a']} {step['op']} {step['b']} = {step['result']} (left: {' '.join(step['left'])})"


def expression_of(state: State) -> str:
    """The single expression a finished state's steps build, e.g. ``"(10 - 4) * (6 - 5) * 4"``.

    For an unfinished state it joins the expressions of the remaining numbers with ``", "``.
    """
    moves = ((Fraction(s["a"]), s["op"], Fraction(s["b"])) for s in state["history"])
    items = _replay((Fraction(n) for n in state["puzzle"]), moves)
    return ", ".join(_strip_outer(expr) for _, expr in sorted(items, key=lambda item: item[0]))


class Game24Env(Environment):
    """Game of 24 over ToT's puzzles.

    State (JSON): ``{"task_id", "puzzle": [4, 5, 6, 10], "numbers": ["5", "6", "6"], "history": [{"a", "op", "b",
    "result", "left"}, ...]}``; ``numbers`` are the remaining exact values as text (``"5/2"``), sorted ascending.

    Actions are ToT steps ``"10 - 4 = 6"``, optionally with ToT's ``"(left: 5 6 6)"``, which must then be right.
    :meth:`step` accepts any arithmetically correct step (negative results too, as ToT does); :meth:`legal_actions`
    lists each distinct move once and leaves out negative results, which never make a puzzle solvable that was not
    already (so search wastes no branches on them).

    Task ids are row indices of ``24.csv`` (``"900"``) or a puzzle itself (``"4 5 6 10"``, any four numbers in
    1..13). ``source`` says where the rows come from: ``"24.csv"`` or, when it is missing, ``"generated"``.
    """

    name = "game24"

    def __init__(self, data_dir: str | Path | None = None) -> None:
        path = resolve_data_dir(data_dir) / CSV_RELPATH
        if path.is_file():
            self.puzzles: list[tuple[int, ...]] = load_csv_puzzles(path)
            self.source = "24.csv"
        else:
            self.puzzles = list(_generated())
            self.source = "generated"
            warnings.warn(
                f"{path} not found: Game of 24 task ids index the generated (lexicographic) puzzle order, so "
                "the 'test' split is NOT Tree-of-Thoughts' test puzzles; run `stl data fetch --only game24` or "
                "set STL_DATA_DIR",
                UserWarning,
                stacklevel=2,
            )

    # ----------------------------------------------------------------------------------------------- tasks

    def task_data(self) -> dict[str, str]:
        """``24.csv`` or ``generated``, and a hash of the puzzles in row order (what the task ids index)."""
        return {"source": self.source, "fingerprint": fingerprint(self.puzzles)}

    def task_ids(self, split: str = "test") -> list[str]:
        """Row ids of ``split``: ``test`` = rows 900–999 (ToT), ``dev`` = 800–899, ``train`` = 0–799 and 1000–1361,
        ``all``. With ``source == "generated"`` these rows index the lexicographic generated order instead, so the
        ids are stable but are *not* ToT's test puzzles.
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return [str(i) for rows in SPLITS[split] for i in rows if i < len(self.puzzles)]

    def puzzle(self, task_id: str) -> tuple[int, ...]:
        """The numbers of a task id (a row index or a puzzle string)."""
        text = task_id.strip()
        if re.fullmatch(r"\d+", text):
            row = int(text)
            if row >= len(self.puzzles):
                raise InvalidTaskError(f"game24 has rows 0..{len(self.puzzles) - 1} ({self.source}); got {task_id}")
            return self.puzzles[row]
        try:
            return parse_puzzle(text)
        except PuzzleError as exc:
            raise InvalidTaskError(f"game24 task ids are row numbers or puzzles like '4 5 6 10': {exc}") from None

    def reset(self, task_id: str) -> State:
        numbers = self.puzzle(task_id)
        return {"task_id": task_id, "puzzle": list(numbers), "numbers": [str(n) for n in numbers], "history": []}

    # ----------------------------------------------------------------------------------------------- dynamics

    def step(self, state: State, action: str) -> StepResult:
        def invalid(reason: str) -> StepResult:
            return StepResult(state=state, valid=False, message=f"invalid action {action!r}: {reason}")

        if self.is_terminal(state):
            return invalid("the game is over (one number is left)")
        match = _STEP.match(action if isinstance(action, str) else "")
        if match is None:
            return invalid("expected a step like '4 + 8 = 12' or '4 + 8 = 12 (left: 6 10 12)'")
        try:
            a, b, claimed = (_parse_number(match[k]) for k in ("a", "b", "c"))
            stated = None if match["left"] is None else sorted(_parse_number(t) for t in match["left"].split())
        except ValueError as exc:
            return invalid(str(exc))
        op = _OP_ALIASES[match["op"]]
        pool = Counter(_values(state))
        for value, needed in Counter([a, b]).items():
            if pool[value] < needed:
                where = "among" if pool[value] == 0 else "twice among"
                return invalid(
                    f"{format_number(value)} is not {where} the remaining numbers ({' '.join(state['numbers'])})"
                )
        if op == "/" and b == 0:
            return invalid("division by zero")
        result = _OPS[op](a, b)
        if result != claimed:
            return invalid(f"{format_number(a)} {op} {format_number(b)} = {format_number(result)}, not {match['c']}")
        remaining = sorted([*(pool - Counter([a, b])).elements(), result])
        left = [format_number(v) for v in remaining]
        if stated is not None and stated != remaining:
            return invalid(f"the numbers left would be {' '.join(left)}, not {match['left'].strip()}")
        step = {"a": format_number(a), "op": op, "b": format_number(b), "result": format_number(result), "left": left}
        return StepResult(state={**state, "numbers": left, "history": [*state["history"], step]})

    def legal_actions(self, state: State) -> list[str]:
        """Every distinct non-negative move in ToT form, e.g. ``"10 - 4 = 6 (left: 5 6 6)"``."""
        if self.is_terminal(state):
            return []
        values = sorted(_values(state))
        actions = []
        for move in _moves(values, allow_negative=False):
            left = " ".join(format_number(v) for v in _apply(values, move))
            a, b, c = (format_number(v) for v in (move.a, move.b, move.result))
            actions.append(f"{a} {move.op} {b} = {c} (left: {left})")
        return actions

    def is_terminal(self, state: State) -> bool:
        """One number left (every state with two or more numbers has a legal move)."""
        return len(state["numbers"]) <= 1

    def true_reward(self, state: State) -> float:
        """1.0 iff the game is over and the last number is exactly 24."""
        return 1.0 if self.is_terminal(state) and [Fraction(n) for n in state["numbers"]] == [TARGET] else 0.0

    # ----------------------------------------------------------------------------------------------- text

    def instruction(self, state: State) -> str:
        numbers = " ".join(str(n) for n in state["puzzle"])
        return (
            "Use numbers and basic arithmetic operations (+ - * /) to obtain 24. In each step, you are only allowed "
            f"to choose two of the remaining numbers to obtain a new number.\nInput: {numbers}"
        )

    def observation(self, state: State) -> str:
        """ToT-style: the input, the steps so far, then what is left (or the answer once one number is left)."""
        lines = [f"Input: {' '.join(str(n) for n in state['puzzle'])}", "Steps:"]
        lines += [_step_line(step) for step in state["history"]] or ["(none yet)"]
        if self.is_terminal(state):
            lines.append(f"Answer: {expression_of(state)} = {state['numbers'][0]}")
        else:
            lines.append(f"Left: {' '.join(state['numbers'])}")
        return "\n".join(lines)
