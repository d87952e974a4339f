"""The Game-of-24 STL experiment (the paper's Figure 2 at small scale) with the embedded SmolLM2-135M value model.

Stages (each resumable; rerun the same command to continue; ``--stages`` picks a subset, in this order):

* ``plan``      fixed, seeded task lists (STL training puzzles, seen subset, test subset) and the AUC state samples
                (per task and depth, balanced solvable/unsolvable), written once to OUT/plan.json + samples_*.jsonl;
* ``baselines`` BFS with a random value and with the solver ORACLE value (``stl eval``; evaluation-only bounds);
* per model V_k, k = 0..K:
  ``stl``       (k >= 1) collect lookahead data on the training puzzles labelled by V_{k-1}
                (:func:`langgraph_stl.training.collect.acollect`), train V_k from the base (``stl train``), convert it
                to a GGUF LoRA for llama.cpp;
  ``auc``       V_k's value on the fixed state samples (one JSON line per state, appended) -> AUC per depth;
  ``bfs``       BFS with V_k on the test subset and on the seen training subset (``stl eval``);
* ``report``    tables (accuracy with Wilson 95% intervals, AUC per depth with bootstrap 95% intervals), plots,
                and small summaries copied to docs/results/game24/ (``--docs``).

Every value model is read with the logits readout (``--value-mode logits``, :func:`langgraph_stl.search.value.
expected_score`, which splits a leading "1" into 1 vs 10 with a second, prefix-cached step): generation is far
too slow on 2 shared CPU cores and SmolLM2's V0 rarely writes a parseable score (docs/RESULTS.md).

Usage::

    python tools/exp_game24.py --out runs/game24 --iterations 3            # everything
    python tools/exp_game24.py --out runs/game24 --stages report --docs docs/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.evaluation import value_quality as vq
from langgraph_stl.search import make_value

console = Console(soft_wrap=True)
STAGES = ("plan", "baselines", "stl", "auc", "bfs", "generate", "report")
BASELINES = {
    "random": "py:langgraph_stl.evaluation.value_quality:random_value",
    "solver-oracle": "py:langgraph_stl.evaluation.value_quality:solver_value",
}


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Manifest:
    """OUT/manifest.json: what finished, when, how long, at what machine load (rewritten atomically)."""

    def __init__(self, out: Path) -> None:
        self.path = out / "manifest.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {"steps": {}}

    def done(self, step: str) -> bool:
        return bool(self.data["steps"].get(step, {}).get("done"))

    def mark(self, step: str, **info: Any) -> None:
        """Record ``step`` as done, merged into the file's current steps (another stage may have written it)."""
        if self.path.is_file():
            self.data["steps"] = {**json.loads(self.path.read_text())["steps"], **self.data["steps"]}
        self.data["steps"][step] = {"done": True, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        os.replace(tmp, self.path)


# ---------------------------------------------------------------------------------------------------- plan


def plan(args: argparse.Namespace, env: Game24Env) -> dict[str, Any]:
    """Task lists and AUC samples: chosen once with ``--seed``; a rerun with other sizes is refused."""
    import random

    path = args.out / "plan.json"
    wanted: dict[str, Any] = {
        "seed": args.seed,
        "n_train": args.n_train,
        "n_seen": args.n_seen,
        "n_test": args.n_test,
        "n_auc_test": args.n_auc_test,
        "n_auc_train": args.n_auc_train,
        "auc_per_task": args.auc_per_task,
        "auc_depths": args.auc_depths,
        "auc_parents": args.auc_parents,
    }
    if path.is_file():
        existing: dict[str, Any] = json.loads(path.read_text())
        if existing["sizes"] != wanted:
            raise SystemExit(f"{path} was planned with {existing['sizes']}; use the same sizes or a new --out")
        return existing
    train_split = env.task_ids("train")
    train = sorted(random.Random(f"{args.seed}|train").sample(train_split, args.n_train), key=int)
    test = env.task_ids("test")[: args.n_test]
    seen = train[: args.n_seen]
    data: dict[str, Any] = {
        "sizes": wanted,
        "train_tasks": train,
        "seen_tasks": seen,
        "seen_positions": [train_split.index(t) for t in seen],
        "test_tasks": test,
        "auc_test_tasks": env.task_ids("test")[: args.n_auc_test],
        "auc_train_tasks": train[: args.n_auc_train],
    }
    for split in ("test", "train"):
        samples = vq.sample_states(
            env,
            data[f"auc_{split}_tasks"],
            args.auc_depths,
            args.auc_per_task,
            seed=args.seed,
            parents=args.auc_parents,
        )
        vq.save_samples(samples, args.out / f"samples_{split}.jsonl")
        data[f"auc_{split}_states"] = len(samples)
    path.write_text(json.dumps(data, indent=2))
    console.print(f"plan: {len(train)} training puzzles, seen subset {seen}, test rows {test[0]}..{test[-1]}")
    return data


# ---------------------------------------------------------------------------------------------------- helpers


def _run(cmd: list[str], log: Path, env_extra: dict[str, str] | None = None) -> None:
    """Run a project CLI command, its output appended to ``log``; the command line is logged first."""
    env = {**os.environ, **(env_extra or {})}
    prefix = " ".join(f"{k}={v}" for k, v in (env_extra or {}).items())
    line = f"{prefix} {' '.join(cmd)}".strip()
    console.print(f"[dim]$ {line}[/dim]  (log: {log}, load {_load()})")
    with log.open("a") as fh:
        fh.write(f"\n$ {line}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"command failed (exit {proc.returncode}); see {log}: {line}")


def value_spec(args: argparse.Namespace, k: int) -> str:
    """V_0 = the embedded model with the base prompt; V_k = the base + iteration k's GGUF LoRA, STL prompt."""
    if k == 0:
        return "smollm2"
    return f"stl:smollm2+lora={(args.out / f'iter_{k}' / 'model.gguf').resolve()}"


def bfs_eval(args: argparse.Namespace, name: str, value: str, tasks: str, split: str) -> Path:
    """``stl eval`` BFS over enumerated legal moves."""
    out: Path = args.out / "eval" / f"{name}_{'test' if split == 'test' else 'seen'}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "langgraph_stl", "eval", "--env", "game24", "--split", split, "--tasks", tasks]
    cmd += ["--policy", "enumerate", "--value", value, "--algorithm", "bfs", "--breadth", str(args.breadth)]
    cmd += ["--width", "100", "--depth", "3", "--value-mode", "logits", "--value-samples", "1", "--rollouts", "1"]
    cmd += ["--concurrency", str(args.concurrency), "--label", f"{name} ({value})", "--out", str(out)]
    _run(cmd, args.out / "bfs.log")
    return out


def _positions(ids: list[str], split_ids: list[str]) -> str:
    return ",".join(str(split_ids.index(t)) for t in ids)


# ---------------------------------------------------------------------------------------------------- stages


def baselines(args: argparse.Namespace, env: Game24Env, p: dict[str, Any], m: Manifest) -> None:
    for name, spec in BASELINES.items():
        for split, ids in (("test", p["test_tasks"]), ("train", p["seen_tasks"])):
            step = f"bfs.{name}.{split}"
            if not m.done(step):
                start = time.perf_counter()
                bfs_eval(args, name, spec, _positions(ids, env.task_ids(split)), split)
                m.mark(step, seconds=time.perf_counter() - start, load=_load())


def stl_iteration(args: argparse.Namespace, env: Game24Env, p: dict[str, Any], m: Manifest, k: int) -> None:
    """Collect with V_{k-1}, train V_k from the base, export it as a GGUF LoRA."""
    from langgraph_stl.search import make_policy
    from langgraph_stl.search.context import SearchContext
    from langgraph_stl.training.collect import CollectConfig, acollect, stats_dict

    it = args.out / f"iter_{k}"
    it.mkdir(parents=True, exist_ok=True)
    if not m.done(f"collect.{k}"):
        prev = value_spec(args, k - 1)
        config = CollectConfig(
            beam=args.beam,
            explore=args.explore,
            search=SearchContext(width=args.collect_width, depth=3, n_value_samples=1, seed=args.seed + k),
            iteration=k - 1,
            policy_name="enumerate:shuffle",
            value_name=f"V{k - 1} logits {prev}",
            max_concurrency=2,
        )
        value = make_value(prev, temperature=0.0, mode="logits")
        with _progress() as progress:
            bar = progress.add_task(f"collect V{k} data (labels by V{k - 1})", total=len(p["train_tasks"]))

            def on_event(event: dict[str, Any]) -> None:
                if event["event"] in ("task_done", "task_skipped"):
                    progress.advance(bar)

            stats = asyncio.run(
                acollect(
                    env,
                    make_policy("enumerate:shuffle"),
                    value,
                    p["train_tasks"],
                    it / "data.jsonl",
                    config,
                    on_event=on_event,
                )
            )
        _close_servers()
        m.mark(f"collect.{k}", stats=stats_dict(stats), value=prev, load=_load())
    if not m.done(f"train.{k}"):
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "langgraph_stl", "train", "--data", str(it / "data.jsonl"), "--base", "smollm2"]
        cmd += ["--out", str(it / "model"), "--max-steps", str(args.max_steps), "--batch-size", str(args.batch_size)]
        cmd += [
            "--max-length",
            "512",
            "--save-steps",
            "5",
            "--warmup-steps",
            "3",
            "--device",
            "cpu",
            "--loss",
            args.loss,
        ]
        _run(cmd, args.out / "train.log", {"OMP_NUM_THREADS": "1"})  # 1 thread: the CPU is oversubscribed
        from langgraph_stl.training.sft import SUMMARY_FILE, training_dir

        (summary,) = json.loads((training_dir(it / "model") / SUMMARY_FILE).read_text())
        m.mark(f"train.{k}", seconds=time.perf_counter() - start, summary=summary, load=_load())
    if not m.done(f"export.{k}"):
        from langgraph_stl.training.gguf_lora import convert_adapter

        info = convert_adapter(it / "model", it / "model.gguf")
        m.mark(f"export.{k}", gguf=str(it / "model.gguf"), info=str(info))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def _close_servers() -> None:
    from langgraph_stl.models.server import close_all_servers

    close_all_servers()


def auc_stage(args: argparse.Namespace, env: Game24Env, m: Manifest, k: int) -> None:
    """V_k's value of every sampled state (logits readout)."""
    for split in ("test", "train"):
        _value_states(args, env, m, f"auc.{k}.{split}", f"V{k}_{split}", value_spec(args, k), "logits", split)


def generate_stage(args: argparse.Namespace, env: Game24Env, m: Manifest) -> None:
    """V0 in generate mode (rationale, then the score; ``--generate-samples`` samples at temperature 1, mean of
    the parsed ones as in the reference) on the first ``--generate-states`` test states: how much does the cheap
    logits readout give up?"""
    name = f"G0-generate-n{args.generate_samples}_test"
    _value_states(args, env, m, f"generate.{name}", name, "smollm2", "generate", "test", args.generate_states)


def _value_states(
    args: argparse.Namespace,
    env: Game24Env,
    m: Manifest,
    step: str,
    name: str,
    spec: str,
    mode: str,
    split: str,
    limit: int | None = None,
) -> None:
    """A value model's estimate of the sampled states, appended per puzzle (a rerun skips the states done)."""
    if m.done(step):
        return
    samples = vq.load_samples(args.out / f"samples_{split}.jsonl")[:limit]
    path = args.out / "auc" / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["key"] for line in path.read_text().splitlines()} if path.is_file() else set()
    todo = [s for s in samples if s.key not in done]
    start = time.perf_counter()
    if todo:
        value = make_value(spec, temperature=0.0 if mode == "logits" else 1.0, mode=mode)  # type: ignore[arg-type]
        n_samples = args.generate_samples if mode == "generate" else 1
        by_task: dict[str, list[vq.StateSample]] = {}
        for s in todo:
            by_task.setdefault(s.task, []).append(s)
        with _progress() as progress, path.open("a") as fh:
            bar = progress.add_task(f"{name} values", total=len(todo))
            for chunk in by_task.values():
                estimates = asyncio.run(vq.value_samples(env, value, chunk, n_samples=n_samples))
                for s, e in zip(chunk, estimates, strict=True):
                    row = {"key": s.key, "depth": s.depth, "solvable": s.solvable, "value": e.value}
                    fh.write(json.dumps(row | {"failures": e.failures}) + "\n")
                fh.flush()
                progress.advance(bar, len(chunk))
        _close_servers()
    m.mark(step, seconds=time.perf_counter() - start, states=len(todo), load=_load())


def bfs_stage(args: argparse.Namespace, env: Game24Env, p: dict[str, Any], m: Manifest, k: int) -> None:
    for split, ids in (("test", p["test_tasks"][: args.n_test_model]), ("train", p["seen_tasks"])):
        step = f"bfs.V{k}.{split}"
        if m.done(step):
            continue
        start = time.perf_counter()
        bfs_eval(args, f"V{k}", value_spec(args, k), _positions(ids, env.task_ids(split)), split)
        m.mark(step, seconds=time.perf_counter() - start, load=_load())


# ---------------------------------------------------------------------------------------------------- report


def _accuracy(path: Path) -> dict[str, Any]:
    """Value-selected and beam-any success with Wilson 95% intervals, tokens and wall time, from a results file."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header, tasks = rows[0], [r for r in rows[1:] if r.get("record") == "task"]
    n = len(header["task_ids"])
    selected = sum(1 for t in tasks if _selected_success(t))
    anyb = sum(1 for t in tasks if t.get("success"))
    tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for t in tasks for u in t["usage"].values())
    return {
        "tasks": n,
        "finished": len(tasks),
        "errors": sum(1 for t in tasks if t.get("error")),
        "value_selected": selected / n,
        "value_selected_ci": vq.wilson(selected, n),
        "beam_any": anyb / n,
        "beam_any_ci": vq.wilson(anyb, n),
        "value_calls": sum(t.get("value_calls", 0) for t in tasks),
        "tokens": tokens,
        "wall_s": sum(t.get("wall_time_s", 0.0) for t in tasks),
    }


def _selected_success(task: dict[str, Any]) -> bool:
    """The final beam member the value model ranks highest is 24 (first of equal values, as ``max``)."""
    rollouts = task.get("rollouts") or []
    if not rollouts:
        return False
    best = max(rollouts, key=lambda r: r["value"] if r.get("value") is not None else -2.0)
    return bool(best["true_reward"] >= 1.0)


def _label_stats(path: Path) -> dict[str, Any]:
    """How informative an iteration's STL labels are, judged by the solver (evaluation only): is the state and the
    successor that V_{k-1} picked as best still solvable, against the solvable share of all legal successors?"""
    import re

    env = Game24Env()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    look = [r for r in rows if r["kind"] == "lookahead"]
    parent = best = 0
    share = 0.0
    for r in look:
        numbers = re.findall(r"(?m)^Left: (.*)$", r["prompt"])[-1].split()
        kids = env.legal_actions({"task_id": "", "puzzle": [], "numbers": numbers, "history": []})
        share += sum(vq.solvable(_left(a)) for a in kids) / len(kids)
        parent += vq.solvable(numbers)
        best += vq.solvable(_left(r["extra"]["best_action"]))
    terminal = [r for r in rows if r["kind"] == "terminal"]
    return {
        "lookahead": len(look),
        "parent_solvable": parent,
        "best_solvable": best,
        "legal_solvable_share": share / len(look) if look else 0.0,
        "terminal": len(terminal),
        "terminal_24": sum(vq.solvable(_left(r["prompt"].rsplit("Current Action: ", 1)[1])) for r in terminal),
    }


def _left(action: str) -> list[str]:
    """The numbers left after an enumerated action ``"a op b = c (left: ...)"``."""
    return action.rsplit("(left:", 1)[1].split(")")[0].split()


def _auc_by_depth(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """AUC against solvability per depth, with its interval; unparsed values (−1) are counted, not scored."""
    per: dict[str, Any] = {}
    for depth in sorted({r["depth"] for r in rows}):
        sub = [r for r in rows if r["depth"] == depth and r["value"] >= 0]
        scores, labels = [r["value"] for r in sub], [r["solvable"] for r in sub]
        per[str(depth)] = {
            "auc": vq.auc(scores, labels),
            "ci": vq.auc_interval(scores, labels),
            "n": len(sub),
            "positives": sum(labels),
            "unparsed": sum(1 for r in rows if r["depth"] == depth and r["value"] < 0),
            "mean_value_pos": sum(s for s, y in zip(scores, labels, strict=True) if y) / max(1, sum(labels)),
            "mean_value_neg": sum(s for s, y in zip(scores, labels, strict=True) if not y)
            / max(1, len(labels) - sum(labels)),
        }
    return per


def report(args: argparse.Namespace, p: dict[str, Any], m: Manifest) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc: dict[str, dict[str, Any]] = {}
    for path in sorted((args.out / "eval").glob("*.jsonl")):
        acc[path.stem] = _accuracy(path)
    aucs: dict[str, dict[str, Any]] = {}
    for path in sorted((args.out / "auc").glob("[VG]*_*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        aucs[path.stem] = _auc_by_depth(rows)
        if path.stem.startswith("G0") and (args.out / "auc" / "V0_test.jsonl").is_file():
            keys = {r["key"] for r in rows}  # V0's logits readout on exactly the generate-mode states
            v0 = [json.loads(line) for line in (args.out / "auc" / "V0_test.jsonl").read_text().splitlines()]
            aucs["L0-logits-same-states_test"] = _auc_by_depth([r for r in v0 if r["key"] in keys])
    label_stats = {path.parent.name: _label_stats(path) for path in sorted(args.out.glob("iter_*/data.jsonl"))}
    summary: dict[str, Any] = {"plan": {k: v for k, v in p.items() if not k.endswith("_states")}}
    summary |= {"accuracy": acc, "auc": aucs, "labels": label_stats}
    summary["steps"] = m.data["steps"]
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = ["| condition | split | tasks | value-selected success [95% Wilson] | beam-any success [95% Wilson] |"]
    lines.append("|---|---|---|---|---|")
    for name, a in acc.items():
        cond, split = name.rsplit("_", 1)
        lo, hi = a["value_selected_ci"]
        lo2, hi2 = a["beam_any_ci"]
        lines.append(
            f"| {cond} | {split} | {a['finished']}/{a['tasks']} | {a['value_selected']:.0%} [{lo:.0%}, {hi:.0%}] "
            f"| {a['beam_any']:.0%} [{lo2:.0%}, {hi2:.0%}] |"
        )
    lines += [
        "",
        "| model | states from | depth | n scored (solvable) | unparsed | AUC [95% bootstrap] "
        "| mean value solvable / not |",
    ]
    lines.append("|---|---|---|---|---|---|---|")
    for name, per in aucs.items():
        model, split = name.split("_", 1)
        for depth, r in per.items():
            ci = r["ci"]
            text = "n/a" if r["auc"] is None else f"{r['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
            lines.append(
                f"| {model} | {split} | {depth} | {r['n']} ({r['positives']}) | {r['unparsed']} | {text} "
                f"| {r['mean_value_pos']:.3f} / {r['mean_value_neg']:.3f} |"
            )
    lines += ["", "| data | lookahead targets | current state solvable | best successor solvable | "]
    lines[-1] += "solvable share of all legal successors (mean) | terminal targets | terminal targets = 24 |"
    lines.append("|---|---|---|---|---|---|---|")
    for name, st in label_stats.items():
        lines.append(
            f"| {name} | {st['lookahead']} | {st['parent_solvable']} | {st['best_solvable']} "
            f"| {st['legal_solvable_share']:.1%} | {st['terminal']} | {st['terminal_24']} |"
        )
    (args.out / "tables.md").write_text("\n".join(lines) + "\n")
    console.print("\n".join(lines))
    _plots(args, acc, aucs, plt)
    if args.docs is not None:
        dest = args.docs / "game24"
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "tables.md", "manifest.json", "plan.json"):
            (dest / name).write_text((args.out / name).read_text())
        for png in args.out.glob("*.png"):
            (args.docs / png.name).write_bytes(png.read_bytes())
        console.print(f"copied summaries to {dest} and plots to {args.docs}")


def _plots(args: argparse.Namespace, acc: dict[str, Any], aucs: dict[str, Any], plt: Any) -> None:
    models = sorted(
        {n.split("_")[0] for n in aucs if n.startswith("V")} | {n.rsplit("_", 1)[0] for n in acc if n.startswith("V")}
    )
    ks = [int(mname[1:]) for mname in models]
    fig, ax = plt.subplots(figsize=(6, 4))
    for split, style in (("test", "-o"), ("seen", "--s")):
        xs, ys, lo, hi = [], [], [], []
        for k in ks:
            a = acc.get(f"V{k}_{split}")
            if a and a["finished"] == a["tasks"]:  # a partial run would plot its missing tasks as failures
                xs.append(k)
                ys.append(100 * a["value_selected"])
                lo.append(max(0.0, 100 * (a["value_selected"] - a["value_selected_ci"][0])))  # float round-off
                hi.append(max(0.0, 100 * (a["value_selected_ci"][1] - a["value_selected"])))
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt=style, capsize=3, label=f"STL V_k, {split} puzzles")
        for name, color in (("random", "grey"), ("solver-oracle", "green")):
            a = acc.get(f"{name}_{split}")
            if a:
                ax.axhline(100 * a["value_selected"], color=color, ls=style[:-1], lw=1, label=f"{name}, {split}")
    ax.set_xlabel("STL iteration k (0 = base V0)")
    ax.set_ylabel("BFS success, value-selected (%)")
    ax.set_xticks(ks or [0])
    ax.set_title(f"Game of 24, BFS b={args.breadth}, SmolLM2-135M value (finished runs only)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "game24_accuracy.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, split in zip(axes, ("test", "train"), strict=True):
        depths = sorted({d for n, per in aucs.items() if n.endswith(split) for d in per})
        for depth in depths:
            xs, ys = [], []
            for k in ks:
                r = aucs.get(f"V{k}_{split}", {}).get(depth)
                if r and r["auc"] is not None:
                    xs.append(k)
                    ys.append(r["auc"])
            ax.plot(xs, ys, "-o", label=f"after {depth} move(s)" + (" (terminal)" if depth == "3" else ""))
        ax.axhline(0.5, color="grey", lw=1, ls=":")
        ax.set_title(f"value AUC vs solvability, {split} puzzles")
        ax.set_xlabel("STL iteration k")
        ax.set_xticks(ks or [0])
        ax.legend(fontsize=7)
    axes[0].set_ylabel("AUC")
    fig.tight_layout()
    fig.savefig(args.out / "game24_auc.png", dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/game24"))
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {', '.join(STAGES)}")
    ap.add_argument("--iterations", type=int, default=3, help="STL iterations K (models V_0..V_K)")
    ap.add_argument("--models", default=None, help="only these k for auc/bfs, e.g. '0,1' (default 0..K)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=12, help="STL training puzzles (seeded sample of the train split)")
    ap.add_argument("--n-seen", type=int, default=8, help="training puzzles also used for the 'seen' BFS accuracy")
    ap.add_argument("--n-test", type=int, default=100, help="test puzzles (rows 900..) for the baselines")
    ap.add_argument("--n-test-model", type=int, default=20, help="test puzzles for BFS with language-model values")
    ap.add_argument("--n-auc-test", type=int, default=10)
    ap.add_argument("--n-auc-train", type=int, default=8)
    ap.add_argument("--auc-per-task", type=int, default=8, help="states per puzzle and depth (balanced)")
    ap.add_argument("--auc-parents", type=int, default=2, help="states come as sibling groups of this many parents")
    ap.add_argument("--auc-depths", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    ap.add_argument("--breadth", type=int, default=3, help="BFS beam")
    ap.add_argument("--concurrency", type=int, default=1, help="BFS tasks at once")
    ap.add_argument("--beam", type=int, default=2, help="collection: best states expanded per level")
    ap.add_argument("--explore", type=int, default=1, help="collection: random extra states per level")
    ap.add_argument("--collect-width", type=int, default=8, help="collection: successors per lookahead")
    ap.add_argument("--max-steps", type=int, default=30, help="SFT steps per iteration")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--loss", default="completion")
    ap.add_argument("--generate-states", type=int, default=60, help="generate: test states valued by V0 generating")
    ap.add_argument("--generate-samples", type=int, default=3, help="generate: samples per state")
    ap.add_argument("--docs", type=Path, default=None, help="copy summaries/plots here (e.g. docs/results)")
    args = ap.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if bad := set(stages) - set(STAGES):
        ap.error(f"unknown stage(s) {sorted(bad)}; choose from {', '.join(STAGES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    env = Game24Env()
    m = Manifest(args.out)
    p = plan(args, env)
    m.data["args"] = {k: str(v) for k, v in vars(args).items()}
    m.save()
    if "baselines" in stages:
        baselines(args, env, p, m)
    models = [int(x) for x in args.models.split(",")] if args.models else list(range(args.iterations + 1))
    for k in models:
        if k >= 1 and "stl" in stages:
            stl_iteration(args, env, p, m, k)
        if "auc" in stages:
            auc_stage(args, env, m, k)
        if "bfs" in stages:
            bfs_stage(args, env, p, m, k)
    if "generate" in stages:
        generate_stage(args, env, m)
    if "report" in stages:
        report(args, p, m)


if __name__ == "__main__":
    main()
