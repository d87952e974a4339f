"""How good is a value model as a value model? AUC against ground-truth solvability, per depth (Game of 24).

STL claims to improve the *value model*; search accuracy measures that only indirectly (a beam of 5 can hide a
poor ranking, or one lucky terminal judgement can rescue it). Game of 24 has an exact oracle (is 24 still
reachable from the numbers left?), so the value model's ranking can be scored directly:

* :func:`sample_states`: a fixed, seeded, per-task *balanced* sample of states after ``d`` moves (legal
  non-negative moves, as the search enumerates them), labelled by the solver. Evaluation only: nothing here is
  used for search or training.
* :func:`value_samples`: the value model's estimate of each sampled state, built exactly as the search builds its
  value prompts (:func:`~langgraph_stl.search.steps.evaluate_children`), siblings batched to share prompt prefixes.
* :func:`auc` (Mann-Whitney, ties count one half) with a percentile bootstrap interval, and :func:`wilson` for
  success rates.
* :class:`SolverValue` and :class:`RandomValue`: reference value models for the search baselines, loadable as
  ``py:langgraph_stl.evaluation.value_quality:solver_value`` / ``...:random_value``. The solver one reads
  ground truth, so it is an **oracle upper bound**, never a method.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_stl.envs.game24 import Game24Env, _plan
from langgraph_stl.search import prompts as P
from langgraph_stl.search.steps import evaluate_children
from langgraph_stl.search.value import ProgrammaticValue, ValueEstimate, ValueItem, ValueModel

_LEFT = re.compile(r"\(left:\s*([^)]*)\)")


def solvable(numbers: Iterable[str | int | Fraction]) -> bool:
    """True when the remaining numbers (exact, e.g. ``"5/2"``) can still make exactly 24; one number: it is 24."""
    return _plan(tuple(sorted(Fraction(n) for n in numbers))) is not None


# ------------------------------------------------------------------------------------------------ state samples


@dataclass(frozen=True, slots=True)
class StateSample:
    """A state reached from ``task`` by ``actions`` (``len(actions)`` = depth), with its solver label."""

    task: str
    actions: tuple[str, ...]
    numbers: tuple[str, ...]
    solvable: bool

    @property
    def depth(self) -> int:
        return len(self.actions)

    @property
    def key(self) -> str:
        return f"{self.task}|{' ; '.join(self.actions)}"


def _states_at(env: Game24Env, task: str, depth: int) -> list[StateSample]:
    """Every legal path of ``depth`` moves from ``task`` (``legal_actions`` order), labelled by the solver."""
    frontier: list[tuple[tuple[str, ...], dict[str, Any]]] = [((), env.reset(task))]
    for _ in range(depth):
        frontier = [
            ((*path, action), env.step(state, action).state)
            for path, state in frontier
            for action in env.legal_actions(state)
        ]
    return [StateSample(task, path, tuple(s["numbers"]), solvable(s["numbers"])) for path, s in frontier]


def sample_states(
    env: Game24Env,
    tasks: Sequence[str],
    depths: Sequence[int],
    per_task: int,
    *,
    seed: int = 0,
    parents: int | None = None,
) -> list[StateSample]:
    """Up to ``per_task`` states per task and depth, half solvable and half not where both exist (the rest from
    whichever class has states), drawn with a seed that depends only on ``seed``, task and depth: a fixed sample
    that later runs and other models see identically.

    ``parents=m`` draws the states as sibling groups: the children of ``m`` random parents (parents whose
    children hold both classes first), ``per_task // m`` each. Siblings share their prompt prefix, so valuing them
    costs a fraction of unrelated states on a CPU server, and ranking siblings is exactly what a beam does.
    """
    if per_task < 1 or any(d < 1 for d in depths) or (parents is not None and parents < 1):
        raise ValueError("per_task and parents must be >= 1 and depths >= 1 (the root of every puzzle is solvable)")
    out: list[StateSample] = []
    for task, depth in itertools.product(tasks, depths):
        rng = random.Random(f"{seed}|{task}|{depth}")
        states = _states_at(env, task, depth)
        if parents is None:
            out += _balanced(states, per_task, rng)
            continue
        groups: dict[tuple[str, ...], list[StateSample]] = defaultdict(list)
        for s in states:
            groups[s.actions[:-1]].append(s)
        keys = list(groups)
        rng.shuffle(keys)
        keys.sort(key=lambda k: len({s.solvable for s in groups[k]}) < 2)  # mixed groups first (stable)
        for key in keys[:parents]:
            out += _balanced(groups[key], max(1, per_task // parents), rng)
    return out


def _balanced(states: Sequence[StateSample], n: int, rng: random.Random) -> list[StateSample]:
    """``n`` states, half solvable where possible."""
    pos = [s for s in states if s.solvable]
    neg = [s for s in states if not s.solvable]
    n_pos = min(len(pos), max(n // 2, n - len(neg)))
    n_neg = min(len(neg), n - n_pos)
    return rng.sample(pos, n_pos) + rng.sample(neg, n_neg)


def save_samples(samples: Sequence[StateSample], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(s)) + "\n" for s in samples), encoding="utf-8")


def load_samples(path: Path) -> list[StateSample]:
    """Samples written by :func:`save_samples`; a bad line raises ValueError naming ``file:line``."""
    samples = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            r = json.loads(raw.decode("utf-8"))
            samples.append(StateSample(str(r["task"]), tuple(r["actions"]), tuple(r["numbers"]), bool(r["solvable"])))
        except (ValueError, KeyError, TypeError) as exc:  # bad JSON or bytes, a missing or mistyped field
            raise ValueError(f"{path}:{lineno}: not a value-quality sample ({type(exc).__name__}: {exc})") from None
    return samples


async def value_samples(
    env: Game24Env,
    value: ValueModel,
    samples: Sequence[StateSample],
    *,
    n_samples: int = 1,
    config: RunnableConfig | None = None,
) -> list[ValueEstimate]:
    """The value model's estimate of each sample, prompted exactly as in search (siblings share one call)."""
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[(s.task, s.actions[:-1])].append(i)
    out: list[ValueEstimate | None] = [None] * len(samples)
    for (task, parent_actions), indices in groups.items():
        state = env.reset(task)
        root_obs = env.observation(state)
        path: list[tuple[str, str]] = []
        for action in parent_actions:
            state = env.step(state, action).state
            path.append((action, env.observation(state)))
        children = []
        for i in indices:
            child = env.step(state, samples[i].actions[-1]).state
            children.append((samples[i].actions[-1], env.observation(child), env.is_terminal(child)))
        estimates = await evaluate_children(
            env.name, value, root_obs, path, children, n_samples=n_samples, config=config
        )
        for i, estimate in zip(indices, estimates, strict=True):
            out[i] = estimate
    return [e for e in out if e is not None]


# ------------------------------------------------------------------------------------------------ statistics


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve = P(score of a random positive > score of a random negative), ties count 1/2.

    None when one class is empty (undefined). 0.5 is chance; a constant scorer gets exactly 0.5.
    """
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    pos = sorted(s for s, y in zip(scores, labels, strict=True) if y)
    neg = sorted(s for s, y in zip(scores, labels, strict=True) if not y)
    if not pos or not neg:
        return None
    # Mann-Whitney U via midranks over the pooled scores.
    pooled = sorted((s, y) for s, y in zip(scores, labels, strict=True))
    rank_sum = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            j += 1
        midrank = (i + j + 1) / 2  # ranks i+1..j
        rank_sum += midrank * sum(1 for _, y in pooled[i:j] if y)
        i = j
    u = rank_sum - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def auc_interval(
    scores: Sequence[float], labels: Sequence[bool], *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of :func:`auc`, resampling positives and negatives separately (stratified)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        p = rng.choices(pos, k=len(pos))
        n = rng.choices(neg, k=len(neg))
        value = auc(p + n, [True] * len(p) + [False] * len(n))
        assert value is not None
        values.append(value)
    values.sort()
    tail = (1 - level) / 2
    return values[int(tail * resamples)], values[min(resamples - 1, int((1 - tail) * resamples))]


def wilson(successes: int, n: int, *, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default); sound at 0 and n successes, unlike Wald."""
    if n <= 0:
        raise ValueError("wilson needs n >= 1")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# ------------------------------------------------------------------------------------------------ baseline values


def _numbers_after(item: ValueItem) -> list[str]:
    """The numbers left after ``item.action``, read from its ``(left: ...)`` part or the observation's Left line."""
    match = _LEFT.search(item.action)
    if match is not None:
        return match.group(1).split()
    if item.terminal:  # the observation is "Terminal State": the step's result is the one number left
        result = re.search(r"=\s*(\S+)", item.action)
        if result is None:
            raise ValueError(f"cannot tell the result of {item.action!r}")
        return [result.group(1)]
    return P.game24_numbers(item.observation).split()


class SolverValue(ProgrammaticValue):
    """ORACLE: 1 if 24 is still reachable from the state (exact solver), else 0. Reads ground truth: evaluation
    upper bound only."""

    def __init__(self) -> None:
        super().__init__("solver-oracle")

    def score(self, item: ValueItem) -> float:
        return 1.0 if solvable(_numbers_after(item)) else 0.0


class RandomValue(ProgrammaticValue):
    """Uniform values in [0, 1], a deterministic function of the prompt (so a resumed run sees the same values)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(f"random-{seed}")
        self.seed = seed

    def score(self, item: ValueItem) -> float:
        text = f"{self.seed}|{item.trajectory}|{item.action}|{item.observation}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def solver_value() -> SolverValue:
    """``py:langgraph_stl.evaluation.value_quality:solver_value``."""
    return SolverValue()


def random_value() -> RandomValue:
    """``py:langgraph_stl.evaluation.value_quality:random_value``."""
    return RandomValue()
