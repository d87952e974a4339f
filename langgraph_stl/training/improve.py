"""STL iterations: collect with V_{k-1} → train V_k → (convert for llama.cpp) → evaluate V_k, K times.

Everything lives in one run folder::

    RUN_DIR/manifest.json          steps done, model registry, metrics (rewritten atomically after every step)
    RUN_DIR/eval_0.jsonl           per-task results with V_0 (the baseline; `stl eval` format, `stl report` reads it)
    RUN_DIR/iter_<k>/data.jsonl    lookahead examples labelled by V_{k-1} (+ data.jsonl.done: finished tasks)
    RUN_DIR/iter_<k>/model/        the LoRA adapter V_k, portable (with per_depth: model/depth_<d>/, one per depth)
    RUN_DIR/iter_<k>/model_training/   its checkpoints, resolved configs and training summary
    RUN_DIR/iter_<k>/model.gguf    V_k as a GGUF LoRA for llama.cpp (embedded base only; model_depth<d>.gguf)
                                   (or, with serve="vllm", V_k is hot-loaded into a running vLLM server instead)
    RUN_DIR/iter_<k>/eval.jsonl    per-task results with V_k (`stl eval` format)

A step is marked done in the manifest only after its outputs are complete, and each step resumes by itself
(collection skips finished tasks, training restarts from its last checkpoint, evaluation skips evaluated tasks), so
a crash or kill anywhere loses at most the work in flight. V_k is always retrained from the base model on the
data V_{k-1} labelled (the reference's scheme), and V_k for k > 0 is prompted in the fine-tuned STL format. With
``per_depth`` V_k is one adapter per depth, and a state after d actions is valued by the depth-d one (the reference's
serving); the manifest's model entry lists them under ``depths``.
Collection and evaluation go through the shared driver (``langgraph_stl.execution``), so ``execution`` runs them
locally or on a Ray cluster; it is not part of the run's identity, so a run may resume under another executor.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langgraph_stl.durable import decode_utf8, exclusive
from langgraph_stl.envs import make_env
from langgraph_stl.envs.base import Environment, task_data_change
from langgraph_stl.execution import Execution, WorkSpec, make_executor
from langgraph_stl.search.context import SearchContext
from langgraph_stl.search.specs import per_depth_spec
from langgraph_stl.training.collect import CollectConfig, collect_tasks, stats_dict
from langgraph_stl.training.config import TrainConfig
from langgraph_stl.training.dataset import file_digest

if TYPE_CHECKING:
    from langgraph_stl.evaluation.results import TaskRecord

MANIFEST = "manifest.json"
EMBEDDED_BASES = ("smollm2", "hf:smollm2")

ProgressHook = Callable[[str, dict[str, Any]], None]
"""(step name, event) — collection/evaluation events for progress displays."""


class RunConfigMismatchError(ValueError):
    """RUN_DIR holds a run made with different settings; resuming it would mix two experiments."""


@dataclass(slots=True)
class ImproveConfig:
    """One STL run. ``value`` is V_0 (base prompts); ``base`` is what every V_k is trained from."""

    env: str
    out: str
    iterations: int = 1
    policy: str = "smollm2"
    value: str = "smollm2"
    base: str = "smollm2"
    train_tasks: list[str] = field(default_factory=list)
    eval_tasks: list[str] = field(default_factory=list)
    beam: int = 3
    explore: int = 1
    width: int = 5
    breadth: int = 5
    depth: int = 4
    value_samples: int = 5
    value_mode: str = "generate"
    """'generate' (sampled rationale + score, the reference) or 'logits' (expected score from one forward pass;
    targets then carry no rationale: a cheap mode for models that rarely write a parseable score)."""
    temperature: float = 1.0
    seed: int = 0
    algorithm: str = "greedy"
    n_rollouts: int = 1
    baseline: bool = True
    gguf: bool = True
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig overrides (epochs, max_steps, batch_size, learning_rate, loss, max_length, ...)."""
    execution: Execution = field(default_factory=lambda: Execution(concurrency=1, progress=False))
    """Where collection and evaluation tasks run (local or Ray), attempts and timeouts; not part of the identity."""
    serve: Literal["local", "vllm"] = "local"
    """How V_k is served: 'local' (GGUF on llama.cpp for the embedded base, else transformers) or 'vllm' (its
    adapter hot-loaded into the vLLM server at ``vllm_url``, which must read the run folder at the same path)."""
    vllm_url: str | None = None
    per_depth: bool = False
    """Train one value model per depth, as the reference did, and value each state with its depth's model."""
    sft: dict[str, Any] = field(default_factory=dict)
    """SFTConfig fields over the project's defaults (what ``--sft-config FILE`` holds); JSON, so it crosses to the
    training child process and into the manifest."""
    peft: dict[str, Any] = field(default_factory=dict)
    """LoraConfig fields over the project's defaults (what ``--lora-config FILE`` holds)."""

    def __post_init__(self) -> None:
        if self.serve not in ("local", "vllm"):
            raise ValueError(f"serve must be 'local' or 'vllm', got {self.serve!r}")
        if (self.serve == "vllm") != bool(self.vllm_url):
            raise ValueError("serve='vllm' and a vllm_url go together (--serve vllm --vllm-url http://HOST:PORT)")
        if self.serve == "vllm" and self.per_depth:
            raise ValueError("per-depth value models are served locally; --serve vllm loads one adapter per iteration")
        if self.value_mode not in ("generate", "logits"):
            raise ValueError(f"value_mode must be 'generate' or 'logits', got {self.value_mode!r}")
        if self.iterations < 1:
            raise ValueError("iterations must be >= 1")
        if not self.train_tasks:
            raise ValueError("no training tasks")
        owned = ("data", "out", "base", "per_depth")
        bad = set(self.train) - {f for f in TrainConfig.__dataclass_fields__ if f not in owned}
        if bad:
            raise ValueError(f"unknown training option(s) {sorted(bad)}")
        if self.gguf and self.base in EMBEDDED_BASES:
            from langgraph_stl.training.gguf_lora import config_problems

            problems = config_problems(self.peft)
            if problems:  # before any collection, not after an hour of it
                raise ValueError(
                    f"the LoRA config cannot be served by llama.cpp ({'; '.join(problems)}); change it or use --no-gguf"
                )

    def search_context(self) -> SearchContext:
        return SearchContext(
            width=self.width,
            breadth=self.breadth,
            depth=self.depth,
            n_value_samples=self.value_samples,
            temperature=self.temperature,
            seed=self.seed,
            n_rollouts=self.n_rollouts,
            value_mode=self.value_mode,
        )

    def identity(self) -> dict[str, Any]:
        """Settings that define the experiment: a resumed run must match them (iterations may grow)."""
        d = asdict(self)
        for key in ("iterations", "out", "execution", "serve", "vllm_url"):
            d.pop(key)
        return d


# ---------------------------------------------------------------------------------------------------------------
# Manifest


def _default(name: str) -> Any:
    """An ImproveConfig field's default: a setting added later reads as its default in an older manifest."""
    f = ImproveConfig.__dataclass_fields__[name]
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _load_manifest(path: Path) -> dict[str, Any]:
    """A manifest's content; ValueError naming the file (and line) when it is not one."""
    try:
        data = json.loads(decode_utf8(path.read_bytes(), path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("config", "steps", "models")):
        raise ValueError(f"{path}: not a manifest of `stl improve` (no config, steps and models)")
    return data


class Manifest:
    """RUN_DIR/manifest.json: step completion and the model registry, persisted atomically on every change."""

    def __init__(self, run_dir: Path, config: ImproveConfig) -> None:
        self.path = run_dir / MANIFEST
        if self.path.is_file():
            try:
                self.data: dict[str, Any] = _load_manifest(self.path)
            except ValueError as exc:
                raise RunConfigMismatchError(f"{exc}; choose another --out") from None
            stored, mine = self.data["config"], config.identity()
            diff = sorted(k for k in mine if stored.get(k, _default(k)) != mine[k])
            if diff:
                raise RunConfigMismatchError(
                    f"{run_dir} was started with different settings ({', '.join(diff)}); "
                    "resume it with the same options or use a new --out"
                )
        else:
            self.data = {"version": 1, "created": time.time(), "config": config.identity(), "steps": {}, "models": {}}
            self.save()

    @classmethod
    def read(cls, run_dir: str | Path) -> Manifest:
        """An existing run's manifest for reading (viewers, reports): no configuration to check it against."""
        path = Path(run_dir) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir}: no {MANIFEST}, so not an `stl improve` run folder")
        manifest = cls.__new__(cls)
        manifest.path, manifest.data = path, _load_manifest(path)
        return manifest

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(self.data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def check_task_data(self, current: dict[str, str]) -> None:
        """Record the environment's task data on first use; refuse a resume over other task data."""
        recorded = self.data.get("task_data")
        if recorded is None and not self.data["steps"]:
            self.data["task_data"] = current
            self.save()
            return
        change = task_data_change(recorded, current)
        if change:
            raise RunConfigMismatchError(
                f"{self.path.parent} cannot be resumed: {change}; restore that data or use a new --out"
            )

    def done(self, step: str) -> bool:
        return bool(self.data["steps"].get(step, {}).get("done"))

    def mark(self, step: str, **info: Any) -> None:
        self.data["steps"][step] = {"done": True, "at": time.time(), **info}
        self.save()

    def register(self, index: int, **entry: Any) -> None:
        """Add or update model V_index's registry entry (its ``k`` field is set here)."""
        self.data["models"].setdefault(str(index), {}).update(entry, k=index)
        self.save()

    def model(self, k: int) -> dict[str, Any]:
        entry: dict[str, Any] = self.data["models"][str(k)]
        return entry


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


def _selected(task: TaskRecord) -> float:
    """True reward of the rollout the value model ranks highest (what a deployed agent returns)."""
    best = max(task.rollouts, key=lambda r: -1.0 if r.value is None else r.value, default=None)
    return best.true_reward if best is not None and task.error is None else 0.0


async def _evaluate(
    env: Environment | None,
    config: ImproveConfig,
    value_spec: str,
    results_path: Path,
    hook: ProgressHook | None,
    step: str,
) -> dict[str, Any]:
    """Search every eval task with ``value_spec`` through the driver; results resume like ``stl eval``'s."""
    from langgraph_stl.evaluation.results import load_results
    from langgraph_stl.evaluation.run import run_eval

    context = asdict(config.search_context())
    options = {"policy": config.policy, "value": value_spec, "algorithm": config.algorithm, "context": context}
    work = WorkSpec("search", config.env, options=options)
    ex = config.execution
    start = time.perf_counter()
    await run_eval(
        config.eval_tasks,
        make_executor(work, ex, env=env),
        results_path,
        config={"env": config.env, **options},
        max_attempts=ex.max_attempts,
        task_timeout_s=ex.task_timeout_s,
        progress=ex.progress,
        on_result=None if hook is None else lambda r: hook(step, {"event": "task_done", "task": r.task_id}),
        on_skip=None if hook is None else lambda task: hook(step, {"event": "task_skipped", "task": task}),
    )
    tasks = load_results(results_path).tasks
    rows = [tasks[t] for t in config.eval_tasks if t in tasks]
    n = len(rows)
    return {
        "label": f"{config.algorithm} success rate on {n} {config.env} tasks",
        "tasks": n,
        "success_rate": sum(_selected(r) >= 1.0 for r in rows) / n if n else 0.0,
        "mean_reward": sum(_selected(r) for r in rows) / n if n else 0.0,
        "pass_at_n": sum(r.error is None and r.true_reward >= 1.0 for r in rows) / n if n else 0.0,
        "errors": sum(1 for r in rows if r.error),
        "value_calls": sum(r.value_calls or 0 for r in rows),
        "states_expanded": sum(r.states_expanded or 0 for r in rows),
        "seconds_this_run": time.perf_counter() - start,
    }


# ---------------------------------------------------------------------------------------------------------------
# The loop


def _bind(hook: ProgressHook | None, step: str) -> Callable[[dict[str, Any]], None] | None:
    """The progress hook with its step name filled in."""
    if hook is None:
        return None
    return lambda event: hook(step, event)


def value_spec_of(entry: dict[str, Any]) -> str:
    """The search value spec of a registered model: base prompts for V_0, STL format (fast GGUF if any) after; for
    per-depth models, a ``depths:`` spec routing each state to its depth's model."""
    if entry["k"] == 0:
        return str(entry["spec"])
    if "depths" in entry:
        return per_depth_spec({int(d): value_spec_of({"k": entry["k"], **m}) for d, m in entry["depths"].items()})
    return "stl:" + str(entry.get("spec_fast") or entry["spec_hf"])


_RUN_DIR_SCAFFOLD = {".lock", ".lock.owner", MANIFEST + ".tmp"}
"""What a run folder may hold before its manifest exists (a run killed while starting)."""


def _recognise_run_dir(run_dir: Path) -> None:
    """Refuse a path that exists but is not a run folder, before anything is created in it."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunConfigMismatchError(f"{run_dir} is a file, not an `stl improve` run folder; choose another --out")
    if not (run_dir / MANIFEST).is_file() and {p.name for p in run_dir.iterdir()} - _RUN_DIR_SCAFFOLD:
        raise RunConfigMismatchError(
            f"{run_dir} is not an `stl improve` run folder (it holds files but no {MANIFEST}); choose another --out"
        )


class StlRun:
    """One run folder's steps. Each step is idempotent: it returns at once when the manifest marks it done.

    The CLI loop (:func:`run_improve`) and the Studio graph (``graphs/improve.py``) both drive these methods. The
    folder is locked from construction to :meth:`close` (use it as a context manager): a second run on it gets
    :class:`~langgraph_stl.durable.OutputLockedError`.
    """

    def __init__(self, config: ImproveConfig, *, hook: ProgressHook | None = None) -> None:
        from langgraph_stl.training.sft import resolve_base

        self.config = config
        self.hook = hook
        self.run_dir = Path(config.out).expanduser().resolve()
        self.base = resolve_base(config.base)  # fail on a bad base before any collection
        _recognise_run_dir(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._held = ExitStack()
        self._held.enter_context(exclusive(self.run_dir, folder=True))
        try:
            self.manifest = Manifest(self.run_dir, config)
            self.manifest.register(0, spec=config.value, base=None, adapter=None)
        except BaseException:
            self._held.close()
            raise
        self._env: Environment | None = None

    def __enter__(self) -> StlRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def env(self) -> Environment:
        """The environment, built on first use; its task data must be what the run started with."""
        if self._env is None:
            env = make_env(self.config.env)
            try:
                self.manifest.check_task_data(env.task_data())
            except BaseException:
                env.close()
                raise
            self._env = env
        return self._env

    @property
    def local_env(self) -> Environment | None:
        """The environment for the local executor (Ray workers build their own); built either way, because it
        checks that the run's task data did not change."""
        env = self.env
        return env if self.config.execution.executor == "local" else None

    def close(self) -> None:
        """Release the environment and the folder's lock. Idempotent."""
        try:
            if self._env is not None:
                self._env.close()
                self._env = None
        finally:
            self._held.close()

    def iter_dir(self, k: int) -> Path:
        return self.run_dir / f"iter_{k}"

    async def baseline(self) -> None:
        """Evaluate V_0 (skipped without eval tasks or with ``baseline=False``)."""
        step = "iter0.eval"
        if not self.config.baseline or not self.config.eval_tasks or self.manifest.done(step):
            return
        metrics = await _evaluate(
            self.local_env, self.config, self.config.value, self.run_dir / "eval_0.jsonl", self.hook, step
        )
        self.manifest.register(0, metrics=metrics)
        self.manifest.mark(step, metrics=metrics)

    async def collect(self, k: int) -> None:
        """Lookahead data for V_k, labelled by V_{k-1}."""
        step = f"iter{k}.collect"
        if self.manifest.done(step):
            return
        cfg = self.config
        prev_spec = value_spec_of(self.manifest.model(k - 1))
        collect_config = CollectConfig(
            beam=cfg.beam,
            explore=cfg.explore,
            search=cfg.search_context(),
            iteration=k - 1,
            policy_name=cfg.policy,
            value_name=prev_spec,
        )
        data = self.iter_dir(k) / "data.jsonl"
        options = {"policy": cfg.policy, "value": prev_spec, "collect": collect_config.to_json()}
        work = WorkSpec("collect", cfg.env, options=options)
        stats = await collect_tasks(
            cfg.train_tasks,
            make_executor(work, cfg.execution, env=self.local_env),
            data,
            execution=cfg.execution,
            on_event=_bind(self.hook, step),
        )
        self.manifest.mark(step, stats=stats_dict(stats), data=str(data))

    def train_config(self, k: int) -> TrainConfig:
        data = self.iter_dir(k) / "data.jsonl"
        out = self.iter_dir(k) / "model"
        overrides = {"data": [str(data)], "out": str(out), "base": self.base.spec, "per_depth": self.config.per_depth}
        return TrainConfig(**{**self.config.train, **overrides})

    def train(self, k: int, *, subprocess: bool = False) -> None:
        """Train V_k from the base (in a child process with ``subprocess``: keeps torch out of a server process).

        In process, the trainer's steps reach the progress hook as ``train_step`` events (no second progress bar).
        """
        step = f"iter{k}.train"
        if self.manifest.done(step):
            return
        tc = self.train_config(k)
        if subprocess:
            summaries = _train_in_subprocess(tc, self.config.sft, self.config.peft)
        else:
            from langgraph_stl.training.sft import train

            callbacks = [_step_events(self.hook, step)] if self.hook else []
            trained = train(
                tc,
                sft_config=self.config.sft,
                peft_config=self.config.peft,
                callbacks=callbacks,
                progress=not callbacks,
            )
            summaries = [asdict(s) for s in trained]
        data = Path(tc.data[0])
        entry: dict[str, Any] = {"base": self.base.name, "data": str(data), "data_sha256": file_digest([data])}
        if self.config.per_depth:
            entry["depths"] = {
                str(s["depth"]): {"adapter": s["adapter_dir"], "spec_hf": f"hf:{s['adapter_dir']}", "train": s}
                for s in summaries
            }
            entry["adapter"] = tc.out
            entry["train"] = _mean_summary(summaries)
        else:
            entry.update(adapter=tc.out, spec_hf=f"hf:{tc.out}", train=summaries[0])
        self.manifest.register(k, **entry)
        self.manifest.mark(step, summary=entry["train"])

    def export(self, k: int) -> None:
        """Convert V_k to a GGUF LoRA so that llama.cpp serves it (embedded base only)."""
        step = f"iter{k}.export"
        if self.manifest.done(step):
            return
        if not (self.config.gguf and self.config.base in EMBEDDED_BASES):
            self.manifest.mark(step, skipped="GGUF export needs the embedded base (smollm2) and gguf=True")
            return
        from langgraph_stl.training.gguf_lora import convert_adapter

        entry = self.manifest.model(k)
        if "depths" in entry:
            depths = entry["depths"]
            for d, m in depths.items():
                gguf = self.iter_dir(k) / f"model_depth{d}.gguf"
                convert_adapter(m["adapter"], gguf)
                m.update(gguf=str(gguf), spec_fast=f"smollm2+lora={gguf}")
            self.manifest.register(k, depths=depths)
            self.manifest.mark(step, gguf={d: m["gguf"] for d, m in depths.items()})
            return
        gguf = self.iter_dir(k) / "model.gguf"
        convert_adapter(self.iter_dir(k) / "model", gguf)
        self.manifest.register(k, gguf=str(gguf), spec_fast=f"smollm2+lora={gguf}")
        self.manifest.mark(step, gguf=str(gguf))

    def serve(self, k: int) -> None:
        """With serve='vllm': hot-load V_k's adapter into the vLLM server and unload V_{k-1}'s.

        Runs on every pass (one request each way), so a resumed run finds V_k loaded even after a server restart.
        """
        if self.config.serve != "vllm" or self.config.vllm_url is None:
            return
        from langgraph_stl.models.vllm import VLLMLoraClient, adapter_name

        client = VLLMLoraClient(self.config.vllm_url)
        name = adapter_name(self.run_dir.name, k)
        previous = adapter_name(self.run_dir.name, k - 1) if k > 1 else None
        spec = client.swap(name, self.manifest.model(k)["adapter"], previous=previous)
        self.manifest.register(k, spec_fast=spec, served=name)
        self.manifest.mark(f"iter{k}.serve", adapter=name, url=client.base_url)

    async def evaluate(self, k: int) -> None:
        """Search the eval tasks with V_k (STL prompt format)."""
        step = f"iter{k}.eval"
        if not self.config.eval_tasks or self.manifest.done(step):
            return
        spec = value_spec_of(self.manifest.model(k))
        metrics = await _evaluate(self.local_env, self.config, spec, self.iter_dir(k) / "eval.jsonl", self.hook, step)
        self.manifest.register(k, metrics=metrics)
        self.manifest.mark(step, metrics=metrics)


def _step_events(hook: ProgressHook, step: str) -> Any:
    """A TrainerCallback that reports each optimizer step to ``hook`` (``train_step`` events with the total)."""
    from transformers import TrainerCallback

    class _Steps(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            hook(step, {"event": "train_step", "step": state.global_step, "total": state.max_steps})

    return _Steps()


def _mean_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The registry's ``train`` entry of per-depth models: total steps, losses averaged over the depths."""

    def mean(key: str) -> float | None:
        values = [s[key] for s in summaries if s.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {
        "steps": sum(s["steps"] for s in summaries),
        "loss_first": mean("loss_first"),
        "loss_last": mean("loss_last"),
        "depths": [s["depth"] for s in summaries],
    }


def _train_in_subprocess(tc: TrainConfig, sft: dict[str, Any], peft: dict[str, Any]) -> list[dict[str, Any]]:
    """Run ``stl train`` for ``tc`` in a child process (the configs travel as dicts) and read back its summaries."""
    import subprocess
    import sys

    from langgraph_stl.lifeline import child_env
    from langgraph_stl.training.sft import read_summaries, training_dir, write_request

    request = write_request(training_dir(Path(tc.out)) / "request.json", tc, sft, peft)
    cmd = [sys.executable, "-m", "langgraph_stl.training.sft", str(request)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if proc.returncode != 0:
        raise RuntimeError(f"training failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return [asdict(s) for s in read_summaries(tc.out)]


def run_improve(
    config: ImproveConfig,
    *,
    hook: ProgressHook | None = None,
    on_iteration: Callable[[Manifest], None] | None = None,
) -> Manifest:
    """Run (or resume) ``config.iterations`` STL iterations; returns the final manifest."""
    return asyncio.run(arun_improve(config, hook=hook, on_iteration=on_iteration))


async def arun_improve(
    config: ImproveConfig,
    *,
    hook: ProgressHook | None = None,
    on_iteration: Callable[[Manifest], None] | None = None,
) -> Manifest:
    """Async :func:`run_improve`: baseline, then collect → train → export → evaluate per iteration."""
    with StlRun(config, hook=hook) as run:
        await run.baseline()
        for k in range(1, config.iterations + 1):
            await run.collect(k)
            await asyncio.to_thread(run.train, k)
            run.export(k)
            run.serve(k)
            await run.evaluate(k)
            if on_iteration is not None:
                on_iteration(run.manifest)
    return run.manifest


def summary_rows(manifest: Manifest) -> list[dict[str, Any]]:
    """One row per registered model for the per-iteration table."""
    rows = []
    for key in sorted(manifest.data["models"], key=int):
        m = manifest.data["models"][key]
        train = m.get("train") or {}
        collect = manifest.data["steps"].get(f"iter{key}.collect", {}).get("stats", {})
        metrics = m.get("metrics") or {}
        rows.append(
            {
                "k": int(key),
                "value model": value_spec_of(m) if "spec" in m or "spec_hf" in m else "-",
                "examples": collect.get("examples", 0) + collect.get("terminal_examples", 0) if collect else None,
                "train steps": train.get("steps"),
                "loss": (train.get("loss_first"), train.get("loss_last")),
                "metric": metrics.get("label"),
                "success": metrics.get("success_rate"),
                "pass@n": metrics.get("pass_at_n"),
            }
        )
    return rows
