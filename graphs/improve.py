"""LangGraph Studio: the STL improvement loop as a graph (baseline → [collect → train → export → evaluate] × K).

Every node is one idempotent step of :class:`langgraph_stl.training.improve.StlRun`, so a run interrupted in Studio
resumes from RUN_DIR/manifest.json when started again with the same context. Training runs in a child process
(``python -m langgraph_stl.training.sft``), which keeps torch out of the ``langgraph dev`` server. Nodes are sync
functions: the server runs them in worker threads, where blocking file and model work is allowed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from langgraph_stl.training.improve import ImproveConfig, StlRun, summary_rows


@dataclass
class ImproveContext:
    """Run settings (Studio's context panel). Defaults: a small Game-of-24 run with the embedded model."""

    env: str = "game24"
    out: str = "runs/studio-improve"
    iterations: int = 1
    policy: str = "enumerate:shuffle"
    value: str = "smollm2"
    base: str = "smollm2"
    train_tasks: str = "0-3"
    eval_tasks: str = "900-903"
    beam: int = 1
    explore: int = 1
    width: int = 3
    depth: int = 3
    value_samples: int = 1
    algorithm: str = "greedy"
    max_steps: int = 4
    batch_size: int = 4
    max_length: int = 1024
    serve: str = "local"
    """'local', or 'vllm' to hot-load each V_k into the vLLM server at vllm_url (docs/BYOM.md)."""
    vllm_url: str = ""
    per_depth: bool = False
    """One value model per depth (the reference's layout) instead of one for all depths."""
    sft: dict[str, Any] = field(default_factory=dict)
    """SFTConfig fields over the project's training defaults (they reach the training child process as JSON)."""
    peft: dict[str, Any] = field(default_factory=dict)
    """LoraConfig fields over the project's defaults."""

    def to_config(self) -> ImproveConfig:
        from langgraph_stl.cli.improve import parse_tasks

        return ImproveConfig(
            env=self.env,
            out=self.out,
            iterations=self.iterations,
            policy=self.policy,
            value=self.value,
            base=self.base,
            train_tasks=parse_tasks(self.train_tasks),
            eval_tasks=parse_tasks(self.eval_tasks),
            beam=self.beam,
            explore=self.explore,
            width=self.width,
            depth=self.depth,
            value_samples=self.value_samples,
            algorithm=self.algorithm,
            train={"max_steps": self.max_steps, "batch_size": self.batch_size, "max_length": self.max_length},
            serve=self.serve,  # type: ignore[arg-type]  # validated by ImproveConfig
            vllm_url=self.vllm_url or None,
            per_depth=self.per_depth,
            sft=self.sft,
            peft=self.peft,
        )


class ImproveState(TypedDict, total=False):
    k: int
    summary: list[dict[str, Any]]
    manifest: str


def _run(runtime: Runtime[ImproveContext]) -> StlRun:
    return StlRun(runtime.context.to_config())


def _report(run: StlRun, **extra: Any) -> ImproveState:
    return {"summary": summary_rows(run.manifest), "manifest": str(run.manifest.path), **extra}  # type: ignore[typeddict-item]


def baseline(state: ImproveState, runtime: Runtime[ImproveContext]) -> ImproveState:
    with _run(runtime) as run:
        asyncio.run(run.baseline())
        return _report(run, k=1)


def collect(state: ImproveState, runtime: Runtime[ImproveContext]) -> ImproveState:
    with _run(runtime) as run:
        asyncio.run(run.collect(state["k"]))
        return _report(run)


def train(state: ImproveState, runtime: Runtime[ImproveContext]) -> ImproveState:
    with _run(runtime) as run:
        run.train(state["k"], subprocess=True)
        return _report(run)


def export(state: ImproveState, runtime: Runtime[ImproveContext]) -> ImproveState:
    with _run(runtime) as run:
        run.export(state["k"])
        run.serve(state["k"])  # with serve='vllm': V_k hot-loaded into the vLLM server
        return _report(run)


def evaluate(state: ImproveState, runtime: Runtime[ImproveContext]) -> ImproveState:
    with _run(runtime) as run:
        asyncio.run(run.evaluate(state["k"]))
        return _report(run, k=state["k"] + 1)


def _next(state: ImproveState, runtime: Runtime[ImproveContext]) -> str:
    return "collect" if state["k"] <= runtime.context.iterations else END


builder: StateGraph[ImproveState, ImproveContext, ImproveState, ImproveState] = StateGraph(
    ImproveState, context_schema=ImproveContext
)
builder.add_node("baseline", baseline)
builder.add_node("collect", collect)
builder.add_node("train", train)
builder.add_node("export", export)
builder.add_node("evaluate", evaluate)
builder.add_edge(START, "baseline")
builder.add_conditional_edges("baseline", _next, ["collect", END])
builder.add_edge("collect", "train")
builder.add_edge("train", "export")
builder.add_edge("export", "evaluate")
builder.add_conditional_edges("evaluate", _next, ["collect", END])
graph = builder.compile()
