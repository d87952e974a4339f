"""Reports over results files: markdown tables, a JSON document and Pareto plots (cost / states vs score)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_stl.evaluation.metrics import (
    VARIANTS,
    BootstrapResult,
    Summary,
    Variant,
    paired_bootstrap,
    per_task,
    reference_bootstrap,
    summarize,
    task_universe,
)
from langgraph_stl.evaluation.prices import PriceTable
from langgraph_stl.evaluation.results import ResultsFile, load_results
from langgraph_stl.extras import require


@dataclass(frozen=True, slots=True)
class Comparison:
    """A file against the baseline: per variant, tests on score and on success (paired, and the reference's)."""

    label: str
    tests: dict[Variant, dict[str, BootstrapResult]]


@dataclass(slots=True)
class Report:
    """Summaries of the input files, the baseline's, and comparisons against it."""

    summaries: list[Summary]
    baseline: Summary | None = None
    comparisons: list[Comparison] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        by_label = {c.label: c for c in self.comparisons}
        return {
            "missing_tasks_count_as": 0,
            "files": [_summary_json(s, by_label.get(s.label)) for s in self.summaries],
            "baseline": _summary_json(self.baseline, None) if self.baseline else None,
        }

    def to_markdown(self) -> str:
        return render_markdown(self)


def build_report(
    paths: Sequence[str | Path],
    *,
    baseline: str | Path | None = None,
    n_tasks: int | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    reference_test: bool = False,
    prices: PriceTable | None = None,
    labels: Sequence[str] | None = None,
    baseline_label: str | None = None,
) -> Report:
    """Load, score and compare; raises ResultsFormatError / ValueError with a message fit for the user.

    ``labels`` / ``baseline_label`` override the names taken from run headers or file names.
    """
    files = [_load(p, prices) for p in paths]
    universes = [task_universe(f, n_tasks) for f in files]
    summaries = [summarize(f, u) for f, u in zip(files, universes, strict=True)]
    if labels is not None:
        summaries = [dataclasses.replace(s, label=name) for s, name in zip(summaries, labels, strict=True)]
    report = Report(summaries=summaries)
    _disambiguate(report.summaries)
    if baseline is None:
        return report
    base = _load(baseline, prices)
    base_universe = task_universe(base, n_tasks)
    report.baseline = summarize(base, base_universe)
    if baseline_label is not None:
        report.baseline = dataclasses.replace(report.baseline, label=baseline_label)
    for f, u, s in zip(files, universes, report.summaries, strict=True):
        if u.task_ids != base_universe.task_ids:
            raise ValueError(
                f"cannot pair {f.path} ({len(u.task_ids)} tasks, from {u.source}) with the baseline {base.path} "
                f"({len(base_universe.task_ids)} tasks, from {base_universe.source}): the task sets differ; "
                "use --n-tasks to score both on the same first N tasks"
            )
        tests: dict[Variant, dict[str, BootstrapResult]] = {}
        for variant in VARIANTS:
            (cr, cs), (br, bs) = per_task(f, u, variant), per_task(base, base_universe, variant)
            tests[variant] = {
                "score": paired_bootstrap(cr, br, resamples=resamples, seed=seed),
                "success_rate": paired_bootstrap(cs, bs, resamples=resamples, seed=seed),
            }
            if reference_test:
                tests[variant]["score_reference_test"] = reference_bootstrap(cr, br, resamples=resamples, seed=seed)
                tests[variant]["success_rate_reference_test"] = reference_bootstrap(
                    cs, bs, resamples=resamples, seed=seed
                )
        report.comparisons.append(Comparison(label=s.label, tests=tests))
    return report


def _load(path: str | Path, prices: PriceTable | None) -> ResultsFile:
    results = load_results(path)
    if prices is not None:
        for tid, task in results.tasks.items():
            usage = {m: prices.priced(m, u) for m, u in task.usage.items()}
            results.tasks[tid] = dataclasses.replace(task, usage=usage, cost=sum(u.cost for u in usage.values()))
    return results


def _disambiguate(summaries: list[Summary]) -> None:
    """Give files that share a label distinct ones (their paths), so tables and JSON keys stay unambiguous."""
    labels = [s.label for s in summaries]
    for i, s in enumerate(summaries):
        if labels.count(s.label) > 1:
            summaries[i] = dataclasses.replace(s, label=s.path)


def _summary_json(s: Summary, comparison: Comparison | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": s.label,
        "path": s.path,
        "format": s.format,
        "n_tasks": s.n_tasks,
        "universe_source": s.universe.source,
        "n_present": s.n_present,
        "n_missing": s.n_missing,
        "n_failed": s.n_failed,
        "n_ignored_outside_universe": s.n_outside,
        "rollouts_per_task": list(s.rollouts_per_task),
        "variants": {v: {"label": s.variant_label(v), **dataclasses.asdict(score)} for v, score in s.variants.items()},
        "states_expanded_per_task": s.states_expanded_per_task,
        "cost_per_task_usd": s.cost_per_task,
        "tokens": s.tokens,
        "usage_counter_resets": s.usage_resets,
    }
    if comparison is not None:
        out["vs_baseline"] = {
            v: {name: dataclasses.asdict(r) for name, r in tests.items()} for v, tests in comparison.tests.items()
        }
    return out


# -------------------------------------------------------------------------------------------------------- markdown


def _num(x: float | None, digits: int = 3) -> str:
    """Up to ``digits`` decimals without trailing zeros (72.845, 67.65, 26.4), so reference numbers read as-is."""
    if x is None:
        return "–"
    text = f"{x:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _p(result: BootstrapResult) -> str:
    p = result.p_value
    stars = "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
    text = f"<{1 / result.resamples:.2g}" if p == 0 else f"{p:.4f}"  # no resample reached the observed gap
    return text + stars


def render_markdown(report: Report) -> str:
    """Tables: scores per variant, cost and tokens, and (with a baseline) the bootstrap tests."""
    rows = report.summaries + ([report.baseline] if report.baseline else [])
    lines = [
        "## Scores",
        "",
        "Score = 100 × mean true reward; SR = % of tasks with reward 1. **Missing and failed tasks count as 0.** "
        "Oracle pass@k takes the best rollout by the ground truth (an upper bound); single trajectory averages "
        "the rollouts; value-selected takes the rollout the value model rates highest.",
        "",
        "| run | tasks | missing | failed | oracle pass@k score | oracle pass@k SR | single-traj. score "
        "| single-traj. SR | value-selected score | value-selected SR | states/task | $/task |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in rows:
        name = s.label + (" (baseline)" if s is report.baseline else "")
        v = s.variants
        lines.append(
            f"| {name} | {s.n_tasks} | {s.n_missing} | {s.n_failed} "
            f"| {_num(v['oracle'].score)} | {_num(v['oracle'].success_rate)} "
            f"| {_num(v['single'].score)} | {_num(v['single'].success_rate)} "
            f"| {_num(v['value_selected'].score)} | {_num(v['value_selected'].success_rate)} "
            f"| {_num(s.states_expanded_per_task, 1)} | {_num(s.cost_per_task, 4)} |"
        )
    lines += ["", "Notes:"]
    for s in rows:
        k = "/".join(map(str, s.rollouts_per_task)) or "none"
        notes = [f"{s.n_tasks} tasks from {s.universe.source}", f"rollouts per task: {k}"]
        if s.n_missing:
            notes.append(f"{s.n_missing} missing (scored 0)")
        if s.n_outside:
            notes.append(f"{s.n_outside} records outside the task set ignored")
        if s.usage_resets:
            notes.append(f"usage counters restarted {s.usage_resets}× (segments summed)")
        lines.append(f"- {s.label} [{s.format}]: " + "; ".join(notes) + ".")
    lines += _token_table(rows)
    if report.comparisons and report.baseline:
        lines += [
            "",
            f"## Against the baseline ({report.baseline.label})",
            "",
            "Δ in percentage points; p from a one-sided paired bootstrap over tasks "
            f"({next(iter(report.comparisons[0].tests['oracle'].values())).resamples} resamples; "
            "* p<0.05, ** p<0.01, *** p<0.001).",
            "",
            "| run | variant | Δ score | p (score) | Δ SR | p (SR) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        summary_by_label = {s.label: s for s in report.summaries}
        for c in report.comparisons:
            s = summary_by_label[c.label]
            for variant, tests in c.tests.items():
                sc, sr = tests["score"], tests["success_rate"]
                row = f"| {c.label} | {s.variant_label(variant)} | {_num(sc.delta)} | {_p(sc)} "
                row += f"| {_num(sr.delta)} | {_p(sr)} |"
                lines.append(row)
        if "score_reference_test" in report.comparisons[0].tests["oracle"]:
            lines += [
                "",
                "The reference's own (unpaired, baseline-only) bootstrap, oracle variant, for comparison: "
                + "; ".join(
                    f"{c.label}: p(score) {_p(c.tests['oracle']['score_reference_test'])}, "
                    f"p(SR) {_p(c.tests['oracle']['success_rate_reference_test'])}"
                    for c in report.comparisons
                ),
            ]
    return "\n".join(lines) + "\n"


def _token_table(rows: Sequence[Summary]) -> list[str]:
    if not any(s.tokens for s in rows):
        return []
    lines = [
        "",
        "## Tokens per task",
        "",
        "| run | model | kind | prompt | completion | calls |",
        "|---|---|---|---:|---:|---:|",
    ]
    for s in rows:
        for model, t in s.tokens.items():
            n = max(s.n_present, 1)
            kind = "local" if t["local"] else "API"
            calls = _num(int(t["calls"]) / n, 1) if t["calls"] else "–"  # the reference does not count calls
            lines.append(
                f"| {s.label} | {model} | {kind} | {_num(int(t['prompt_tokens']) / n, 0)} "
                f"| {_num(int(t['completion_tokens']) / n, 0)} | {calls} |"
            )
    return lines


# ---------------------------------------------------------------------------------------------------------- plots


def plot_pareto(report: Report, out_dir: str | Path) -> list[Path]:
    """PNG scatter plots of oracle / single-trajectory score against $ per task and states per task.

    The line joins the Pareto-optimal runs (no other run is both cheaper and better on oracle score). A run that
    lacks the x quantity (e.g. no usage recorded) is left out of that plot; returns the files written.
    """
    require("matplotlib", feature="plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = report.summaries + ([report.baseline] if report.baseline else [])
    written = []
    for attr, xlabel, fname in (
        ("cost_per_task", "cost per task (USD, API models)", "pareto_cost.png"),
        ("states_expanded_per_task", "states expanded per task", "pareto_states.png"),
    ):
        pts = [(getattr(s, attr), s) for s in rows if getattr(s, attr) is not None]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(8, 4.5 + 0.18 * len(pts)))
        for i, (x, s) in enumerate(pts, start=1):
            oracle, single = s.variants["oracle"].score, s.variants["single"].score
            (dot,) = ax.plot([x], [oracle], "o", label=f"{i}: {s.label}")
            ax.plot([x], [single], "o", mfc="none", color=dot.get_color())
            ax.annotate(str(i), (x, oracle), fontsize=8, xytext=(4, 3), textcoords="offset points")
        frontier = _pareto_front([(x, s.variants["oracle"].score) for x, s in pts])
        ax.plot(*zip(*frontier, strict=True), "--", color="grey", lw=1, label="Pareto front (oracle)")
        xs = [x for x, _ in pts]
        if min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("score (filled: oracle pass@k,\nhollow: single trajectory)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.15), frameon=False)
        fig.tight_layout()
        path = out / fname
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated by a cheaper-or-equal, better-or-equal one, sorted by x."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front
