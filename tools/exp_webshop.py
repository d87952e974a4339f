"""The WebShop experiment with the embedded SmolLM2-135M as value model (docs/RESULTS.md, "## WebShop").

Stages (each resumable: rerun a stage to continue it; ``all`` = rule rule_full random collect train evals
report, in that order, skipping finished work):

  measure  value evaluations/s of the embedded model on WebShop-length prompts (logits and generate mode)
  rule     WebShop's rule baseline (search the instruction, buy the first result) on the test tasks
  rule_full  the rule baseline on the whole test split (goals 0-499)
  random   clickables policy + random value, greedy, 3 rollouts
  collect  STL lookahead data on train goals, labelled by V0 (embedded model, base prompts, logits mode)
  train    LoRA on that data (``stl train``, resumes from its checkpoints), then ``export``
  export   the GGUF LoRA for llama.cpp (of the latest checkpoint when training was stopped early)
  v0, stl  the V0 / STL (V1) greedy runs alone
  evals    V0 and STL (V1) greedy runs, side by side (two processes), so both cover the same tasks when stopped
  report   ``stl report`` over the result files, plots and copies into docs/results/webshop/
  analyse  what the value models chose (option clicks, product vs the rule's, value band, wins vs V0)

Everything lives under runs/webshop/ (gitignored); ``report`` copies the small result files (JSONL, manifest,
collection data statistics, report) into docs/results/webshop/ so a later session can continue the runs.
Every command run is appended to runs/webshop/commands.log with the load average at its start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs" / "webshop"
DOCS = REPO / "docs" / "results" / "webshop"
STL = [sys.executable, "-m", "langgraph_stl"]
BASELINES = "py:langgraph_stl.evaluation.baselines"

TEST_TASKS = "0-49"
"""Positions in the test split (goals fixed_0 .. fixed_49)."""
TRAIN_TASKS = [f"fixed_{i}" for i in range(1500, 1508)]
"""STL collection goals: the start of WebShop's train split (the reference used fixed_1500..1549)."""
SEARCH = ["--algorithm", "greedy", "--width", "3", "--depth", "5", "--temperature", "1.0", "--seed", "0"]
"""Greedy as the reference (5 steps, Buy Now forced at the last one); 3 proposals per expansion."""
ADAPTER = RUNS / "stl_v1"
GGUF = RUNS / "stl_v1.gguf"
TRAIN = [
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--lr",
    "5e-4",
    "--warmup-steps",
    "1",
    "--max-length",
    "1024",
    "--save-steps",
    "2",
]


def log_command(cmd: list[str]) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    with (RUNS / "commands.log").open("a") as fh:
        line = shlex.join(str(c) for c in cmd).replace(sys.executable, "python")
        fh.write(f"{time.strftime('%H:%M:%S', time.gmtime())} load={os.getloadavg()[0]:.1f} {line}\n")


def run(cmd: list[str]) -> None:
    log_command(cmd)
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def eval_cmd(name: str, policy: str, value: str, *extra: str) -> list[str]:
    return [
        *STL, "eval", "--env", "webshop", "--split", "test", "--tasks", TEST_TASKS, "--policy", policy,
        "--value", value, *SEARCH, "--out", str(RUNS / f"{name}.jsonl"), "--label", name, *extra,
    ]  # fmt: skip


MODEL_EVAL = ["--rollouts", "1", "--value-mode", "logits", "--value-samples", "1", "--concurrency", "1"]
"""Logits mode is deterministic, so greedy rollouts coincide: one rollout (pass@1 = single = value-selected)."""


def stage_measure() -> None:
    """Seconds per value evaluation of the embedded model on real WebShop value prompts (sibling item pages)."""
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
    from langgraph_stl.search.specs import make_value
    from langgraph_stl.search.steps import value_items

    out: dict[str, Any] = {"load_start": os.getloadavg()}
    with WebShopHttpEnv() as env:
        state = env.reset(TRAIN_TASKS[0])
        query = f"search[{env.instruction(state)}]"
        results = env.step(state, query).state
        products = [a for a in env.legal_actions(results) or [] if a.startswith("click[B0")][:3]
        children = [(a, env.observation(env.step(results, a).state), False) for a in products]
        items = value_items(env.observation(state), [(query, env.observation(results))], children)

    async def timed(mode: str, n: int) -> dict[str, Any]:
        vm = make_value("smollm2", temperature=1.0, mode=mode)  # type: ignore[arg-type]
        rows = []
        for rep in range(2 if mode == "logits" else 1):
            load = os.getloadavg()[0]
            start = time.perf_counter()
            est = await vm.aevaluate("webshop", items[:n], n_samples=1)
            rows.append({"rep": rep, "states": n, "s": time.perf_counter() - start, "load": load,
                         "values": [e.value for e in est]})  # fmt: skip
            print(mode, rows[-1], flush=True)
        return {"prompt_chars": len(vm.prompt("webshop", items[0])), "runs": rows}

    out["logits"] = asyncio.run(timed("logits", len(items)))
    out["generate"] = asyncio.run(timed("generate", 1))
    (RUNS / "measure.json").write_text(json.dumps(out, indent=1))


def stage_rule() -> None:
    run(eval_cmd("rule", f"{BASELINES}:rule_policy", f"{BASELINES}:random_value", "--rollouts", "1"))


def stage_rule_full() -> None:
    """The rule baseline needs no model: run it on the whole test split (goals 0-499) for context."""
    cmd = eval_cmd("rule_full", f"{BASELINES}:rule_policy", f"{BASELINES}:random_value", "--rollouts", "1")
    cmd[cmd.index("--tasks") + 1] = "0-499"
    run(cmd)


def stage_random() -> None:
    run(eval_cmd("random", f"{BASELINES}:clickables_policy", f"{BASELINES}:random_value", "--rollouts", "3"))


def stage_collect() -> None:
    """Lookahead targets on the train goals: best successor by V0 (logits), its real observation, V0's value."""
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
    from langgraph_stl.evaluation.baselines import clickables_policy
    from langgraph_stl.search.context import SearchContext
    from langgraph_stl.search.specs import make_value
    from langgraph_stl.training.collect import CollectConfig, acollect, stats_dict

    config = CollectConfig(
        beam=1,
        explore=1,
        search=SearchContext(width=3, depth=5, n_value_samples=1, seed=0, temperature=1.0),
        iteration=0,
        policy_name=f"{BASELINES}:clickables_policy",
        value_name="smollm2 (logits)",
    )
    log_command(["collect", *TRAIN_TASKS[:1], "...", TRAIN_TASKS[-1], "beam=1", "explore=1", "width=3", "depth=5"])

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") in ("task_done", "task_skipped"):
            print(time.strftime("%H:%M:%S"), event.get("event"), event.get("task"), flush=True)

    with WebShopHttpEnv() as env:
        value = make_value("smollm2", temperature=1.0, mode="logits")
        stats = asyncio.run(
            acollect(env, clickables_policy(), value, TRAIN_TASKS, RUNS / "collect.jsonl", config, on_event=progress)
        )
    summary = {**stats_dict(stats), "load_end": os.getloadavg()}
    (RUNS / "collect_stats.json").write_text(json.dumps(summary, indent=1))
    print(summary, flush=True)


def stage_train() -> None:
    run([*STL, "train", "--data", str(RUNS / "collect.jsonl"), "--out", str(ADAPTER), "--base", "smollm2", *TRAIN])
    stage_export()


def stage_export() -> None:
    """The GGUF LoRA of the trained adapter, or of its latest checkpoint when training was stopped early."""
    from langgraph_stl.training.sft import training_dir

    source = ADAPTER
    if not (ADAPTER / "adapter_config.json").exists():
        found = (training_dir(ADAPTER) / "checkpoints").glob("checkpoint-*")
        checkpoints = sorted(found, key=lambda p: int(p.name.split("-")[1]))
        if not checkpoints:
            raise SystemExit(f"no adapter or checkpoint under {ADAPTER}: run the train stage")
        source = checkpoints[-1]
    from langgraph_stl.training.gguf_lora import convert_adapter

    log_command(["convert_adapter", str(source), str(GGUF)])
    convert_adapter(source, GGUF)
    (RUNS / "export.json").write_text(json.dumps({"adapter": str(source.relative_to(REPO)), "gguf": GGUF.name}))


V0_EVAL = eval_cmd("v0", f"{BASELINES}:clickables_policy", "smollm2", *MODEL_EVAL)
STL_EVAL = eval_cmd("stl", f"{BASELINES}:clickables_policy", f"stl:smollm2+lora={GGUF}", *MODEL_EVAL)


def stage_v0() -> None:
    run(V0_EVAL)


def stage_stl() -> None:
    run(STL_EVAL)


def stage_evals() -> None:
    """V0 and STL side by side: two `stl eval` processes (each its own llama.cpp server, 2 threads)."""
    procs = []
    for cmd in (V0_EVAL, STL_EVAL):
        log_command(cmd)
        print("+", shlex.join(cmd), flush=True)
        procs.append(subprocess.Popen(cmd, cwd=REPO))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"eval exit codes {codes}")


def finished(name: str) -> int:
    """Tasks with a result line in a run's JSONL (model runs use concurrency 1, so they are a prefix of the list)."""
    path = RUNS / f"{name}.jsonl"
    if not path.exists():
        return 0
    return sum(json.loads(line).get("record") == "task" for line in path.read_text().splitlines() if line.strip())


def stage_report() -> None:
    """Paired report over the first N test tasks that every run finished (V0 = baseline), plus the full rule run."""
    names = [n for n in ("rule", "random", "v0", "stl") if finished(n)]
    n_tasks = min(finished(n) for n in names)
    DOCS.mkdir(parents=True, exist_ok=True)
    others = [str(RUNS / f"{n}.jsonl") for n in names if n != "v0"]
    cmd = [*STL, "report", *others, "--baseline", str(RUNS / "v0.jsonl"), "--n-tasks", str(n_tasks)]
    cmd += ["--plots", str(DOCS)]
    log_command(cmd)
    report = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    js = subprocess.run([*cmd[:-2], "--json"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    n_v0 = finished("v0")
    v0_cmd = [*STL, "report", *others[:2], "--baseline", str(RUNS / "v0.jsonl"), "--n-tasks", str(n_v0)]
    log_command(v0_cmd)
    v0_report = subprocess.run(v0_cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    full_cmd = [*STL, "report", str(RUNS / "rule_full.jsonl")]
    log_command(full_cmd)
    full = subprocess.run(full_cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    (DOCS / "report.md").write_text(
        f"# All runs, first {n_tasks} test goals\n\n{report}\n\n# Without STL, first {n_v0} test goals\n\n"
        f"{v0_report}\n\n# Rule baseline, test goals 0-499\n\n{full}"
    )
    (DOCS / "report.json").write_text(js)
    keep = [f"{n}.jsonl" for n in [*names, "rule_full"]] + ["commands.log", "measure.json", "export.json"]
    for name in [*keep, "collect.jsonl", "collect.jsonl.done", "collect.log"]:
        if (RUNS / name).exists():
            shutil.copy(RUNS / name, DOCS / name)
    exported = json.loads((RUNS / "export.json").read_text())["adapter"] if (RUNS / "export.json").exists() else ""
    from langgraph_stl.training.sft import SUMMARY_FILE, training_dir

    for src in (training_dir(ADAPTER) / SUMMARY_FILE, REPO / exported / "trainer_state.json"):
        if exported and src.exists():
            shutil.copy(src, DOCS / src.name)
    print(report)
    print(v0_report)
    print(full)


def _tasks(name: str) -> dict[str, dict[str, Any]]:
    path = RUNS / f"{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return {r["task_id"]: r for r in rows if r.get("record") == "task"}


def stage_analyse() -> None:
    """What the value models chose, from the trajectories (first rollout): option clicks, the product bought
    against the rule baseline's (BM25's first result), values of the chosen states, and per-goal wins vs V0.
    Written to docs/results/webshop/analysis.md."""
    import statistics

    runs = {name: _tasks(name) for name in ("rule", "random", "v0", "stl")}
    common = sorted(set.intersection(*(set(t) for t in runs.values() if t)), key=lambda t: int(t.split("_")[1]))
    rule_product = {t: _bought(runs["rule"][t]) for t in common}
    lines = [
        f"# Trajectory analysis, the {len(common)} test goals every run finished (first rollout of each task)",
        "",
        "| run | goals | mean steps | rollouts with an option click | bought the rule's product | bought nothing "
        "| value of chosen states: mean (min–max) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, tasks in runs.items():
        if not tasks:
            continue
        first = [tasks[t]["rollouts"][0] for t in common if tasks[t].get("rollouts")]
        options = sum(any(_is_option(a) for a in r["trajectory"]) for r in first)
        same = sum(_bought_rollout(r) == rule_product[t] for t, r in zip(common, first, strict=False))
        nothing = sum(_bought_rollout(r) is None for r in first)
        values = [v for r in first for v in (r.get("values") or []) if v is not None and v >= 0]
        band = f"{statistics.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})" if values else "–"
        steps = statistics.mean(len(r["trajectory"]) for r in first) if first else 0
        lines.append(f"| {name} | {len(first)} | {steps:.1f} | {options} | {same} | {nothing} | {band} |")
    if runs["v0"] and runs["stl"]:
        diff = [runs["stl"][t]["true_reward"] - runs["v0"][t]["true_reward"] for t in common]
        better, worse = sum(d > 1e-9 for d in diff), sum(d < -1e-9 for d in diff)
        lines += ["", f"STL V1 vs V0 per goal: {better} better, {worse} worse, {len(diff) - better - worse} equal."]
    text = "\n".join(lines) + "\n"
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "analysis.md").write_text(text)
    print(text)


def _is_option(action: str) -> bool:
    """An option click: not a search, a product (ASIN), Buy Now or a navigation button."""
    from langgraph_stl.search.prompts import webshop_rule_value

    target = action.removeprefix("click[").removesuffix("]")
    return (
        action.startswith("click[")
        and target != "Buy Now"
        and not (len(target) == 10 and target.isalnum() and target.isupper())
        and webshop_rule_value(action, ()) is None
    )


def _bought_rollout(rollout: dict[str, Any]) -> str | None:
    """The product clicked last before Buy Now, or None when the rollout never bought."""
    trajectory = rollout["trajectory"]
    if "click[Buy Now]" not in trajectory:
        return None
    products = [a for a in trajectory if len(a) == 17 and a.startswith("click[B")]
    return products[-1] if products else None


def _bought(task: dict[str, Any]) -> str | None:
    return _bought_rollout(task["rollouts"][0]) if task.get("rollouts") else None


STAGES = {
    "measure": stage_measure,
    "rule": stage_rule,
    "rule_full": stage_rule_full,
    "random": stage_random,
    "collect": stage_collect,
    "train": stage_train,
    "v0": stage_v0,
    "stl": stage_stl,
    "export": stage_export,
    "evals": stage_evals,
    "report": stage_report,
    "analyse": stage_analyse,
}

ALL = ["rule", "rule_full", "random", "collect", "train", "evals", "report"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="+", choices=[*STAGES, "all"])
    args = parser.parse_args()
    os.environ.setdefault("STL_DATA_DIR", str(REPO.parent.parent / "shared" / "data"))
    RUNS.mkdir(parents=True, exist_ok=True)
    names = ALL if "all" in args.stages else args.stages
    for name in names:
        start = time.time()
        print(f"== {name} ({time.strftime('%H:%M:%S', time.gmtime())} UTC, load {os.getloadavg()[0]:.1f})", flush=True)
        STAGES[name]()
        print(f"== {name} done in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
