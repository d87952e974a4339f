"""Scores over a fixed task universe, three ways, and a paired bootstrap test.

Score is 100 × the mean true reward and success rate is the percentage of tasks with reward exactly 1, both over
the **task universe**: the tasks a run was meant to cover. A task with no line in the file (or one that failed)
counts 0, as the reference's ``process_results_webshop.py`` does, so a run cannot look better by dropping tasks.

Three ways to turn k rollouts per task into one number:

* **oracle pass@k** – the best true reward over the rollouts (the reference's ``true_reward``). It uses the
  ground truth to pick, so it is an upper bound no deployed agent reaches.
* **single trajectory** – the mean over the task's rollouts of their true rewards (and of their success): what one
  rollout achieves on average.
* **value-selected** – the rollout whose final value estimate is highest (ties: the first, as Python's ``max``;
  -1/None estimates rank lowest): what the agent would submit on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Literal

from langgraph_stl.evaluation.results import ResultsFile, Rollout, TaskRecord

Variant = Literal["oracle", "single", "value_selected"]
VARIANTS: tuple[Variant, ...] = ("oracle", "single", "value_selected")


@dataclass(frozen=True, slots=True)
class Universe:
    """The task ids a run is scored over, and where that list came from (reports print it)."""

    task_ids: tuple[str, ...]
    source: str


def task_universe(results: ResultsFile, n_tasks: int | None = None) -> Universe:
    """Resolve the universe: the run header's ids, else the file name's ``_a-b`` range, else (reference files)
    ids 0..max, else the ids present.

    ``n_tasks`` keeps the first ``n_tasks`` of that list (ids ``0..n_tasks-1`` when nothing else is known), e.g.
    ``--n-tasks 50`` scores the first 50 tasks of a 500-task file, like the reference's "first 50" numbers.
    """
    if results.header is not None and results.header.task_ids:
        ids, source = results.header.task_ids, "the run header's task list"
    elif (rng := results.name_range()) is not None:
        ids, source = tuple(str(i) for i in range(*rng)), f"the file name's range {rng[0]}-{rng[1]}"
    elif results.format == "reference" and results.tasks and all(_is_index(t) for t in results.tasks):
        top = max(int(t) for t in results.tasks)
        ids, source = tuple(str(i) for i in range(top + 1)), "task indices 0..max index seen"
    else:
        ids, source = tuple(results.tasks), "the tasks present (missing tasks cannot be detected)"
    if n_tasks is not None:
        if n_tasks <= 0:
            raise ValueError(f"--n-tasks must be positive, got {n_tasks}")
        if n_tasks > len(ids):
            if not all(_is_index(t) for t in ids):
                raise ValueError(f"{results.path}: --n-tasks {n_tasks} exceeds the {len(ids)} known task ids")
            ids = tuple(str(i) for i in range(n_tasks))
        else:
            ids = ids[:n_tasks]
        source = f"--n-tasks {n_tasks} ({source}, first {n_tasks})"
    return Universe(task_ids=tuple(ids), source=source)


def _is_index(task_id: str) -> bool:
    return re.fullmatch(r"\d+", task_id) is not None


def selected_rollout(task: TaskRecord) -> Rollout | None:
    """The rollout the value model itself ranks highest (the first of equals); None without rollouts."""
    return max(task.rollouts, key=lambda r: -1.0 if r.value is None else r.value, default=None)


def _selected(task: TaskRecord) -> float:
    """True reward of the rollout the value model itself ranks highest."""
    best = selected_rollout(task)
    return best.true_reward if best is not None else 0.0


_PER_TASK: dict[Variant, tuple[Callable[[TaskRecord], float], Callable[[TaskRecord], float]]] = {
    "oracle": (lambda t: t.true_reward, lambda t: float(t.true_reward == 1.0)),
    "single": (
        lambda t: fmean(r.true_reward for r in t.rollouts) if t.rollouts else 0.0,
        lambda t: fmean(float(r.true_reward == 1.0) for r in t.rollouts) if t.rollouts else 0.0,
    ),
    "value_selected": (_selected, lambda t: float(_selected(t) == 1.0)),
}


def per_task(results: ResultsFile, universe: Universe, variant: Variant) -> tuple[list[float], list[float]]:
    """Per-task (reward, success) over the universe, 0 for missing or failed tasks."""
    reward_of, success_of = _PER_TASK[variant]
    rewards, successes = [], []
    for tid in universe.task_ids:
        task = results.tasks.get(tid)
        ok = task is not None and task.error is None
        rewards.append(reward_of(task) if ok and task else 0.0)
        successes.append(success_of(task) if ok and task else 0.0)
    return rewards, successes


@dataclass(frozen=True, slots=True)
class VariantScore:
    """Score and success rate in percent over the universe, and over the tasks present (for comparison only)."""

    score: float
    success_rate: float
    score_present: float | None
    success_rate_present: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything a report prints about one results file."""

    label: str
    path: str
    format: str
    universe: Universe
    n_present: int
    n_failed: int
    n_outside: int
    rollouts_per_task: tuple[int, ...]
    variants: dict[Variant, VariantScore]
    states_expanded_per_task: float | None
    cost_per_task: float | None
    tokens: dict[str, dict[str, int | bool]]
    usage_resets: int

    @property
    def n_tasks(self) -> int:
        return len(self.universe.task_ids)

    @property
    def n_missing(self) -> int:
        return self.n_tasks - self.n_present

    def variant_label(self, variant: Variant) -> str:
        k = "/".join(str(n) for n in self.rollouts_per_task) or "0"
        return {"oracle": f"oracle pass@{k}", "single": "single trajectory", "value_selected": "value-selected"}[
            variant
        ]


def summarize(results: ResultsFile, universe: Universe) -> Summary:
    """Scores of every variant plus cost, tokens and expansions (per task present) for ``results``."""
    wanted = set(universe.task_ids)
    present = [results.tasks[t] for t in universe.task_ids if t in results.tasks]
    n = len(universe.task_ids)
    variants: dict[Variant, VariantScore] = {}
    for variant in VARIANTS:
        rewards, successes = per_task(results, universe, variant)
        hit = [i for i, t in enumerate(universe.task_ids) if t in results.tasks]
        variants[variant] = VariantScore(
            score=100 * sum(rewards) / n if n else 0.0,
            success_rate=100 * sum(successes) / n if n else 0.0,
            score_present=100 * fmean(rewards[i] for i in hit) if hit else None,
            success_rate_present=100 * fmean(successes[i] for i in hit) if hit else None,
        )
    expanded = [t.states_expanded for t in present if t.states_expanded is not None]
    costs = [t.cost for t in present if t.cost is not None]
    tokens: dict[str, dict[str, int | bool]] = {}
    for task in present:
        for model, u in task.usage.items():
            acc = tokens.setdefault(model, {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0, "local": u.local})
            acc["prompt_tokens"] = int(acc["prompt_tokens"]) + u.prompt_tokens
            acc["completion_tokens"] = int(acc["completion_tokens"]) + u.completion_tokens
            acc["calls"] = int(acc["calls"]) + u.calls
    return Summary(
        label=results.label,
        path=str(results.path),
        format=results.format,
        universe=universe,
        n_present=len(present),
        n_failed=sum(t.error is not None for t in present),
        n_outside=sum(t not in wanted for t in results.tasks),
        rollouts_per_task=tuple(sorted({len(t.rollouts) for t in present if t.error is None})),
        variants=variants,
        states_expanded_per_task=fmean(expanded) if expanded else None,
        cost_per_task=fmean(costs) if costs else None,
        tokens=tokens,
        usage_resets=results.usage_resets,
    )


# ------------------------------------------------------------------------------------------------------ bootstrap


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """One-sided test that the candidate beats the baseline; ``delta`` is in percentage points."""

    delta: float
    p_value: float
    resamples: int


def paired_bootstrap(
    candidate: Sequence[float], baseline: Sequence[float], *, resamples: int = 10_000, seed: int = 0
) -> BootstrapResult:
    """Paired bootstrap (Berg-Kirkpatrick et al., 2012) over tasks.

    Both runs are scored on the same tasks, so task difficulty is shared; resampling task indices *jointly* keeps
    that pairing, unlike resampling each run on its own. With observed mean difference ``d``, the p-value is the
    share of resamples whose mean difference reaches ``2d`` (the resampled differences, re-centred on the null of
    no difference, reaching ``d``). One-sided: small p means the candidate is better; identical runs give p = 1.
    """
    import numpy as np

    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired bootstrap needs two equally long, non-empty per-task score lists")
    diff = a - b
    observed = float(diff.mean())
    means = _resampled_means(diff, resamples, seed)
    return BootstrapResult(delta=100 * observed, p_value=float(np.mean(means >= 2 * observed)), resamples=resamples)


def reference_bootstrap(
    candidate: Sequence[float], baseline: Sequence[float], *, resamples: int = 10_000, seed: int = 0
) -> BootstrapResult:
    """The reference's ``bootstrap_test_webshop.py`` test, for comparison with the paper's stars.

    It resamples only the *baseline's* per-task results and counts resamples whose mean exceeds the baseline's by
    more than twice the observed improvement. It ignores the candidate's variance and the pairing by task.
    """
    import numpy as np

    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("bootstrap needs non-empty per-task score lists")
    observed = float(a.mean() - b.mean())
    means = _resampled_means(b, resamples, seed)
    return BootstrapResult(
        delta=100 * observed, p_value=float(np.mean(means - b.mean() > 2 * observed)), resamples=resamples
    )


def _resampled_means(values: Any, resamples: int, seed: int) -> Any:
    """Means of ``resamples`` bootstrap resamples of ``values``, drawn in chunks to bound memory."""
    import numpy as np

    if resamples <= 0:
        raise ValueError(f"the number of bootstrap resamples must be positive, got {resamples}")
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // values.size)
    parts = []
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        parts.append(values[rng.integers(0, values.size, size=(rows, values.size))].mean(axis=1))
    return np.concatenate(parts)
