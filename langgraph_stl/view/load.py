"""Files → :class:`View`: the JSON payload the page renders, built only from the project's readers.

Nothing here runs a model, an environment or ``true_reward``: a view is a pure function of files. Every reader
error (``file:line``, an unknown record type, an empty run) is raised before any HTML exists.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from langgraph_stl.evaluation.results import ResultsFile, TaskRecord
    from langgraph_stl.evaluation.trees import SearchTree
    from langgraph_stl.training.dataset import Example

Kind = Literal["results", "tree", "dataset", "run"]
PAYLOAD_VERSION = 1
SAMPLE_EXAMPLES = 4
"""Lookahead examples (prompt → target) shown per iteration of a run folder."""
DATASET_EXAMPLES = 200
"""Examples embedded in a dataset view (the statistics always cover the whole file)."""


class ViewError(ValueError):
    """The input cannot be viewed (unknown record type, empty run, mismatched comparison); names the file."""


@dataclass(slots=True)
class View:
    """Everything one page shows, JSON-native (it is embedded as is)."""

    kind: Kind
    title: str
    sources: list[str]
    runs: list[dict[str, Any]] = field(default_factory=list)
    compare: list[dict[str, Any]] | None = None
    iterations: list[dict[str, Any]] | None = None
    dataset: dict[str, Any] | None = None
    plots: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PAYLOAD_VERSION,
            "kind": self.kind,
            "title": self.title,
            "sources": self.sources,
            "runs": self.runs,
            "compare": self.compare,
            "iterations": self.iterations,
            "dataset": self.dataset,
            "plots": self.plots,
        }


# ------------------------------------------------------------------------------------------------- dispatching


def load_view(path: str | Path, *, compare: str | Path | None = None, plots: bool = True) -> View:
    """A view of a results file (with its trees, if saved), a tree file, a collection dataset or an ``stl improve``
    run folder; with ``compare``, two results files over the same tasks side by side."""
    path = Path(path)
    kind = sniff(path)
    if compare is not None:
        other = Path(compare)
        if kind != "results" or sniff(other) != "results":
            raise ViewError(f"--compare needs two results files (stl eval / stl improve evaluations): {path}, {other}")
        return _compare_view(path, other, plots=plots)
    if kind == "tree":
        from langgraph_stl.evaluation.trees import read_tree

        return view_of_tree(read_tree(path), source=str(path))
    if kind == "results":
        results = _load_results(path)
        return View(
            kind="results",
            title=f"Results: {results.label}",
            sources=[str(path)],
            runs=[_run(results)],
            plots=_plots([path]) if plots else [],
        )
    if kind == "dataset":
        return _dataset_view(path)
    return _run_folder_view(path, plots=plots)


def sniff(path: Path) -> Kind:
    """What ``path`` holds, from its content (not its name); raises :class:`ViewError` for anything else."""
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "run"
        if path.name.endswith(".trees"):
            results = path.with_name(path.name.removesuffix(".trees") + ".jsonl")
            raise ViewError(f"{path}: a folder of per-task trees; view the results file beside it ({results})")
        raise ViewError(f"{path}: a folder without manifest.json (not an `stl improve` run folder)")
    if not path.is_file():
        raise ViewError(f"{path}: no such file or folder")
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head[:2] == b"\x1f\x8b":
        return "tree"
    text = head.decode("utf-8", errors="replace").lstrip()
    if not text:
        raise ViewError(f"{path}: empty file")
    if text.startswith("["):
        return "dataset"  # the reference's ShareGPT array
    first = text.splitlines()[0]
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        if text.startswith("{") and '"record"' in text[:200] and '"tree"' in text[:200]:
            return "tree"  # a pretty-printed tree file; read_tree reports what is wrong with it
        raise ViewError(f"{path}:1: not a JSON line; expected a results, tree or dataset file") from None
    if isinstance(obj, dict):
        if obj.get("record") == "tree":
            return "tree"
        if obj.get("record") in ("run", "task") or "task_idx" in obj or {"task_id", "rollouts"} <= set(obj):
            return "results"
        if {"prompt", "completion"} <= set(obj):
            return "dataset"
    record = obj.get("record") if isinstance(obj, dict) else type(obj).__name__
    raise ViewError(
        f"{path}:1: unknown record type {record!r}: expected a results file (stl eval), a search-tree file, "
        "a collection dataset or an `stl improve` run folder"
    )


# ------------------------------------------------------------------------------------------------- tasks and trees


def _load_results(path: Path) -> ResultsFile:
    from langgraph_stl.evaluation.results import load_results

    results = load_results(path)
    if not results.tasks:
        raise ViewError(f"{path}: empty run: the file has no task records yet")
    return results


def _run(results: ResultsFile, label: str | None = None) -> dict[str, Any]:
    """One run's task rows, with the trees saved beside the results file when there are any."""
    from langgraph_stl.evaluation.trees import read_trees, trees_dir

    folder = trees_dir(results.path)
    trees = read_trees(folder, list(results.tasks)) if folder.is_dir() else {}
    return {
        "label": label or results.label,
        "path": str(results.path),
        "trees": len(trees),
        "tasks": [task_row(rec, trees.get(tid)) for tid, rec in results.tasks.items()],
    }


def task_row(record: TaskRecord, tree: SearchTree | None) -> dict[str, Any]:
    """A table row: the scores, the costs and the chosen trajectory with its per-step values (and the tree)."""
    from langgraph_stl.evaluation.metrics import selected_rollout

    chosen = selected_rollout(record)
    trajectory = list(chosen.trajectory) if chosen else []
    values: list[float | None] = list(chosen.values) if chosen else []
    if tree is not None and tree.chosen:
        path = tree.chosen_path()[1:]
        trajectory = [tree.nodes[n].action or "" for n in path]
        values = [tree.nodes[n].value for n in path]
    return {
        "task_id": record.task_id,
        "reward": chosen.true_reward if chosen else 0.0,
        "pass_at_n": record.true_reward,
        "success": record.success,
        "states": record.states_expanded,
        "tokens": sum(u.prompt_tokens + u.completion_tokens for u in record.usage.values()) or None,
        "cost": record.cost,
        "wall_time_s": record.wall_time_s,
        "error": record.error,
        "rollouts": len(record.rollouts),
        "trajectory": trajectory,
        "values": values,
        "tree": tree.to_json() if tree is not None else None,
    }


def view_of_tree(tree: SearchTree, *, source: str = "") -> View:
    """A one-task view of a search tree (a tree file, or a notebook's search result)."""
    from langgraph_stl.evaluation.results import Rollout, TaskRecord

    summary = tree.summary
    raw_truth = summary.get("true_reward")
    truth: dict[str, Any] = raw_truth if isinstance(raw_truth, dict) else {}
    reward = summary.get("reward")
    record = TaskRecord(
        task_id=tree.task_id,
        rollouts=(Rollout(true_reward=float(reward or 0.0), value=summary.get("value")),),
        true_reward=float(truth.get("pass_at_n", reward or 0.0)),
        success=(reward or 0.0) >= 1.0,
        states_expanded=summary.get("states_expanded"),
        usage={},
        wall_time_s=summary.get("wall_time_s"),
        error=summary.get("error"),
    )
    row = task_row(record, tree)
    tokens = summary.get("tokens") or {}
    row["tokens"] = sum(int(t.get("input_tokens", 0)) + int(t.get("output_tokens", 0)) for t in tokens.values()) or None
    row["reward"] = reward
    return View(
        kind="tree",
        title=f"Search tree: task {tree.task_id} ({tree.algorithm}, {len(tree.nodes)} nodes)",
        sources=[source] if source else [],
        runs=[{"label": tree.algorithm, "path": source, "trees": 1, "tasks": [row]}],
    )


def view_of_result(result: dict[str, Any]) -> View:
    """A notebook view of an ``arun_search`` result (its tree when it kept one, else its rollouts), or of a search
    graph's state values (``graph.get_state(config).values``, a Studio thread's ``state["values"]``)."""
    from langgraph_stl.evaluation.results import record_from_search
    from langgraph_stl.evaluation.trees import SearchTree, tree_from_state

    if isinstance(result.get("nodes"), dict):
        return view_of_tree(tree_from_state(result))
    if isinstance(result.get("tree"), list):
        return view_of_tree(SearchTree.from_result(result))
    has_truth = all("true_reward" in r for r in result.get("rollouts", []))
    rows = [{"true_reward": 0.0, **r} for r in result.get("rollouts", [])]  # placeholder, hidden below
    row = task_row(record_from_search({**result, "rollouts": rows}), None)
    if not has_truth:  # searched with true_reward=False: no reward to show, not a reward of 0
        row.update(reward=None, pass_at_n=None)
    return View(
        kind="results",
        title=f"Search: task {result.get('task_id')} ({result.get('algorithm')})",
        sources=[],
        runs=[{"label": str(result.get("algorithm")), "path": "", "trees": 0, "tasks": [row]}],
    )


# ------------------------------------------------------------------------------------------------- comparison


def _compare_view(path_a: Path, path_b: Path, *, plots: bool) -> View:
    a, b = _load_results(path_a), _load_results(path_b)
    label_a, label_b = a.label, b.label
    if label_a == label_b:
        label_a, label_b = f"A: {label_a}", f"B: {label_b}"
    run_a, run_b = _run(a, label_a), _run(b, label_b)
    common = [t for t in a.tasks if t in b.tasks]
    if not common:
        raise ViewError(f"--compare: {path_a} and {path_b} have no task in common")
    rows_a = {r["task_id"]: r for r in run_a["tasks"]}
    rows_b = {r["task_id"]: r for r in run_b["tasks"]}
    return View(
        kind="results",
        title=f"Compare: {label_a} vs {label_b}",
        sources=[str(path_a), str(path_b)],
        runs=[run_a, run_b],
        compare=[divergence(rows_a[t], rows_b[t]) for t in common],
        plots=_plots([path_b], baseline=path_a) if plots else [],
    )


def divergence(row_a: dict[str, Any], row_b: dict[str, Any]) -> dict[str, Any]:
    """Where two runs' chosen trajectories first differ (1-based step; None if they agree) and what each value
    model said there: of its own action and, when its tree holds it, of the other run's action."""
    ta, tb = row_a["trajectory"], row_b["trajectory"]
    step = next((i for i, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb)))
    same = ta == tb
    out: dict[str, Any] = {
        "task_id": row_a["task_id"],
        "step": None if same else step + 1,
        "reward_a": row_a["reward"],
        "reward_b": row_b["reward"],
    }
    for side, row, other in (("a", row_a, tb), ("b", row_b, ta)):
        own = row["trajectory"]
        out[side] = {
            "action": own[step] if not same and step < len(own) else None,
            "value": row["values"][step] if not same and step < len(row["values"]) else None,
            "other_value": _value_of(row["tree"], own[:step], other[step]) if not same and step < len(other) else None,
        }
    return out


def _value_of(tree: dict[str, Any] | None, prefix: Sequence[str], action: str) -> float | None:
    """The value a tree gave to ``action`` after the actions ``prefix``, if the search ever proposed it there."""
    if tree is None:
        return None
    kids: dict[str | None, list[dict[str, Any]]] = {}
    for node in tree["nodes"]:
        kids.setdefault(node["parent"], []).append(node)
    frontier = kids.get(None, [])
    for act in prefix:
        frontier = [k for n in frontier for k in kids.get(n["id"], []) if k["action"] == act]
    values = [k["value"] for n in frontier for k in kids.get(n["id"], []) if k["action"] == action]
    return values[0] if values else None


# ------------------------------------------------------------------------------------------------- datasets


def _examples(path: Path) -> tuple[list[Example], list[str]]:
    from langgraph_stl.training.dataset import load_examples

    read = load_examples(path)
    if not read.examples:
        problems = f" ({len(read.errors)} malformed lines, first: {read.errors[0]})" if read.errors else ""
        raise ViewError(f"{path}: no training examples{problems}")
    return read.examples, read.errors


def example_json(e: Example) -> dict[str, Any]:
    return {
        "prompt": e.prompt,
        "target": e.completion,
        "depth": e.depth,
        "kind": e.kind,
        "value": e.value,
        "task": e.task,
        "candidates": e.extra.get("candidates", []),
    }


def _stats_json(examples: list[Example]) -> dict[str, Any]:
    from langgraph_stl.training.dataset import compute_stats

    stats = compute_stats(examples)
    return {
        "total": stats.total,
        "tasks": stats.tasks,
        "per_depth": {str(k): v for k, v in stats.per_depth.items()},
        "terminal_per_depth": {str(k): v for k, v in stats.terminal_per_depth.items()},
        "value_histogram": stats.value_histogram,
        "no_value": stats.no_value,
    }


def _dataset_view(path: Path) -> View:
    examples, errors = _examples(path)
    return View(
        kind="dataset",
        title=f"Dataset: {path.name} ({len(examples)} examples)",
        sources=[str(path)],
        dataset={
            "stats": _stats_json(examples),
            "errors": errors,
            "examples": [example_json(e) for e in examples[:DATASET_EXAMPLES]],
        },
    )


# ------------------------------------------------------------------------------------------------- run folders


def _run_folder_view(folder: Path, *, plots: bool) -> View:
    from langgraph_stl.training.dataset import load_examples
    from langgraph_stl.training.improve import Manifest, value_spec_of

    try:
        manifest = Manifest.read(folder)
    except FileNotFoundError as exc:
        raise ViewError(str(exc)) from None
    models = manifest.data["models"]
    if not models:
        raise ViewError(f"{folder}: empty run: the manifest registers no model yet")
    iterations, runs, evals = [], [], []
    for key in sorted(models, key=int):
        k, entry = int(key), models[key]
        eval_file = folder / ("eval_0.jsonl" if k == 0 else f"iter_{k}/eval.jsonl")
        data_file = folder / f"iter_{k}" / "data.jsonl"
        item: dict[str, Any] = {
            "k": k,
            "value_model": value_spec_of(entry) if ("spec" in entry or "spec_hf" in entry) else None,
            "metrics": entry.get("metrics"),
            "collect": manifest.data["steps"].get(f"iter{k}.collect", {}).get("stats"),
            "train": _train_json(entry.get("train")),
            "data": None,
            "samples": [],
        }
        if k > 0 and data_file.is_file():
            read = load_examples(data_file)  # an iteration whose collection found nothing shows no statistics
            examples, errors = read.examples, read.errors
            item["data"] = {**_stats_json(examples), "errors": len(errors)} if examples else None
            look = [e for e in examples if e.kind == "lookahead"]
            step = max(1, len(look) // SAMPLE_EXAMPLES)
            item["samples"] = [example_json(e) for e in look[::step][:SAMPLE_EXAMPLES]]
        if eval_file.is_file() and eval_file.stat().st_size:
            runs.append(_run(_load_results(eval_file), f"V{k}"))
            evals.append(eval_file)
        iterations.append(item)
    config = manifest.data.get("config", {})
    return View(
        kind="run",
        title=f"STL run {folder.name}: {config.get('env', '?')}, {len(iterations) - 1} iteration(s)",
        sources=[str(folder)],
        runs=runs,
        iterations=iterations,
        plots=_plots(evals[1:], baseline=evals[0], labels=[r["label"] for r in runs[1:]]) if plots and evals else [],
    )


def _train_json(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if not summary:
        return None
    curve = summary.get("loss_curve") or []
    if not curve:  # runs trained before the curve was recorded: the two ends
        ends = [
            (summary.get("start_step", 0), summary.get("loss_first")),
            (summary.get("steps"), summary.get("loss_last")),
        ]
        curve = [[s, v] for s, v in ends if s is not None and v is not None]
    keys = ("steps", "examples", "eval_loss", "eval_loss_by_depth", "tokens", "seconds", "loss_first", "loss_last")
    return {**{k: summary.get(k) for k in keys}, "loss_curve": [[int(s), float(v)] for s, v in curve]}


# ------------------------------------------------------------------------------------------------- plots


def _plots(
    paths: Sequence[Path], *, baseline: Path | None = None, labels: Sequence[str] | None = None
) -> list[dict[str, str]]:
    """``stl report``'s Pareto plots as data URIs (none when matplotlib is missing or nothing has a cost)."""
    from langgraph_stl.evaluation.report import build_report, plot_pareto

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    files = list(paths) or ([baseline] if baseline else [])
    report = build_report(
        files,
        baseline=baseline if paths else None,
        resamples=200,
        labels=labels if paths and labels else None,
        baseline_label="V0" if paths and labels else None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        return [
            {
                "title": png.stem.replace("_", " "),
                "src": "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode(),
            }
            for png in plot_pareto(report, tmp)
        ]
