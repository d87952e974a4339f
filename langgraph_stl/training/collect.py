"""STL data collection as a LangGraph graph: tree search over training tasks with V_k, one lookahead target per
visited non-terminal state, appended to a JSONL store as it is produced.

**Tree policy** (the reference's generator is not public; its data shows several nodes expanded per level, not one
greedy path, and the expanded parent was the best sibling only 50-75% of the time). Level by level:

1. the root is expanded by the policy (``root_width`` proposals) and its children valued by V_k;
2. at depth d the *frontier* is the ``beam`` best non-terminal states of the level (by V_k value, over all parents)
   plus ``explore`` further states drawn at random from the rest (seeded), so non-best nodes are expanded too;
3. each frontier state gets a lookahead (``width`` proposals, all valued by V_k): its training example is the best
   successor's action, real observation, V_k's rationale and value (no discount). When that best successor is
   terminal, a terminal example (V_k's terminal judgement, same rationale and value) is written at depth d+1, as
   in the reference data; the lookahead's candidates form the next level's pool;
4. stop after depth ``search.depth - 1`` (its successors end the episode) or when the frontier is empty.

**Ground truth is unreachable**: nothing here calls ``true_reward``; terminal labels come from V_k's terminal prompt.

**One task is one unit of work**: the graph returns a task's examples in its state and writes nothing, so a task
can run in any process (``execution.work``: ``collect`` work on a Ray worker). :class:`CollectSink` is the only
writer: the driver hands it each finished task, whose examples it appends, then the task id to ``<data>.done``.

**Resumable**: a rerun skips done tasks and, for a task whose examples were cut short by a kill before its
done-marker, does not write an example whose (task, prompt) is already in the file. The writer's lock on the
dataset covers its ``.done`` list; a task id torn by a kill is cut (never read as another id).
"""

from __future__ import annotations

import asyncio
import json
import operator
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from langgraph_stl.durable import append_line, decode_utf8, inspect_tail, repair_tail
from langgraph_stl.envs.base import Environment, State, task_data_change
from langgraph_stl.execution.driver import DriveOutcome, Executor, LocalExecutor, TaskResult, drive
from langgraph_stl.search import prompts as P
from langgraph_stl.search.calls import MODEL_RETRY
from langgraph_stl.search.context import SearchContext
from langgraph_stl.search.lookahead import LookaheadTarget, lookahead
from langgraph_stl.search.policy import Policy, PolicyInput
from langgraph_stl.search.steps import default_force_terminal, evaluate_children, expand_state
from langgraph_stl.search.value import ValueModel
from langgraph_stl.training.dataset import DatasetError, Example, ExampleWriter, read_jsonl

if TYPE_CHECKING:
    from langgraph_stl.execution.options import Execution

EventHandler = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class CollectConfig:
    """Tree policy and model settings of a collection run (see the module doc for the policy)."""

    beam: int = 3
    """Best states (by V_k value) expanded per level."""
    explore: int = 1
    """Extra states per level drawn at random from the non-best ones."""
    search: SearchContext = field(default_factory=SearchContext)
    """Proposals per expansion (``width``/``root_width``), value samples, seed, retries, and ``depth``: the most
    actions an episode takes, so states at depths 1..depth-1 get lookaheads (WebShop 5: Buy Now forced at step 5)."""
    max_concurrency: int = 4
    """Lookaheads of one level that run at once (siblings' value calls are batched inside each)."""
    iteration: int = 0
    """STL iteration k recorded in the examples' provenance (data labelled by V_k)."""
    policy_name: str = ""
    value_name: str = ""

    def __post_init__(self) -> None:
        if self.beam < 1 or self.explore < 0 or self.max_concurrency < 1 or self.search.depth < 2:
            raise ValueError("need beam >= 1, explore >= 0, max_concurrency >= 1 and search depth >= 2")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CollectConfig:
        return cls(**{**data, "search": SearchContext.from_any(data.get("search"))})

    @property
    def max_depth(self) -> int:
        """Deepest level whose states get a lookahead."""
        return self.search.depth - 1


@dataclass(slots=True)
class CollectStats:
    """Counters of a collection run; ``seconds`` covers only the tasks run now (not skipped ones)."""

    tasks: int = 0
    tasks_skipped: int = 0
    states: int = 0
    examples: int = 0
    terminal_examples: int = 0
    duplicates: int = 0
    unparsed: int = 0
    dead_ends: int = 0
    value_calls: int = 0
    policy_calls: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    """Task id -> error of its last attempt; such tasks get no done-marker, so a rerun tries them again."""

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds else 0.0

    @property
    def value_calls_per_second(self) -> float:
        return self.value_calls / self.seconds if self.seconds else 0.0

    def add(self, other: dict[str, int]) -> None:
        for key, n in other.items():
            setattr(self, key, getattr(self, key) + n)


COUNTS = (
    "states",
    "examples",
    "terminal_examples",
    "duplicates",
    "unparsed",
    "dead_ends",
    "value_calls",
    "policy_calls",
)
"""Per-task counters a collection reports (summed into :class:`CollectStats`)."""


def _add_counts(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    return {k: left.get(k, 0) + right.get(k, 0) for k in {*left, *right}}


@dataclass(frozen=True, slots=True)
class CollectedTask:
    """One task's collection result: what a worker returns and :class:`CollectSink` writes as one unit."""

    task: str
    examples: tuple[Example, ...]
    counts: dict[str, int]


class Node(TypedDict):
    state: State
    path: list[list[str]]  # [[action, observation], ...] from the root
    value: float


class CollectState(TypedDict, total=False):
    """Graph state: JSON-native, so a checkpointer can hold it."""

    tasks: list[str]
    task: str | None
    root_observation: str
    instruction: str
    frontier: list[Node]
    depth: int
    examples: Annotated[list[dict[str, Any]], operator.add]
    """Examples produced so far (as dicts), in order; nothing is written to disk by the graph."""
    counts: Annotated[dict[str, int], _add_counts]


def done_path(data_path: str | Path) -> Path:
    """Sidecar listing the tasks whose collection finished."""
    return Path(str(data_path) + ".done")


def read_done(data_path: str | Path) -> set[str]:
    """Finished tasks: whole lines only, since a line torn by a kill may be a prefix of another task's id."""
    path = done_path(data_path)
    if not path.is_file():
        return set()
    data = path.read_bytes()
    try:
        text = decode_utf8(data[: data.rfind(b"\n") + 1], path)
    except ValueError as exc:
        raise DatasetError(f"{exc}: not a list of finished tasks; fix or remove it") from None
    return {line.strip() for line in text.splitlines() if line.strip()}


def check_task_data(data_path: Path, current: dict[str, str]) -> None:
    """Record the environment's task data beside a dataset (``<data>.task_data.json``) when its collection starts;
    refuse a resume over other task data, which would mix two task sets under the same ids in one dataset."""
    path = Path(str(data_path) + ".task_data.json")
    if path.is_file():
        try:
            recorded: Any = json.loads(path.read_bytes())
        except ValueError:
            recorded = "unreadable"
        change = task_data_change(recorded, current)
    elif read_done(data_path):
        change = task_data_change(None, current)
    else:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(current), encoding="utf-8")
        tmp.replace(path)
        change = None
    if change:
        raise DatasetError(f"{data_path} cannot be resumed: {change}; restore that data or choose another --out")


def _cut_torn_done(data_path: Path) -> None:
    """Cut a task id torn by a kill (its examples are all written; the rerun finds them as duplicates)."""
    path = done_path(data_path)
    if path.is_file():
        tail = inspect_tail(path.read_bytes(), starts=(b"",), is_record=lambda _: False)  # any torn id is ours
        assert tail is not None
        repair_tail(path, tail)


def _select(pool: list[Node], beam: int, explore: int, rng: random.Random) -> list[Node]:
    """Top ``beam`` by value (ties in seeded random order) plus ``explore`` random others; distinct states only."""
    seen: set[str] = set()
    unique: list[Node] = []
    rng.shuffle(pool)
    for node in sorted(pool, key=lambda n: -n["value"]):
        key = json.dumps(node["state"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(node)
    best, rest = unique[:beam], unique[beam:]
    return best + rng.sample(rest, min(explore, len(rest)))


def create_collect_graph(
    env: Environment,
    policy: Policy,
    value: ValueModel,
    config: CollectConfig,
) -> StateGraph[CollectState, None, CollectState, CollectState]:
    """The collection graph. Input ``{"tasks": [...]}``; the output state's ``examples`` holds every example
    (as dicts, in order, without duplicate prompts per task) and ``counts`` the counters; progress is streamed as
    custom events. It writes nothing: :func:`collect_one` and :class:`CollectSink` do that for the CLI."""
    settings = config
    ctx = settings.search
    force = ctx.force_terminal if ctx.force_terminal is not None else default_force_terminal(env.name)

    def meta(task: str, depth: int) -> dict[str, Any]:
        return {
            "task": task,
            "depth": depth,
            "iteration": settings.iteration,
            "env": env.name,
            "policy_model": settings.policy_name,
            "value_model": settings.value_name or value.name,
        }

    def emit(example: Example, seen: set[tuple[str, str]], out: list[dict[str, Any]], counts: dict[str, int]) -> None:
        key = (example.task, example.prompt)
        if key in seen:
            counts["duplicates"] += 1
            return
        seen.add(key)
        out.append(asdict(example))
        counts["terminal_examples" if example.kind == "terminal" else "examples"] += 1

    async def next_task(state: CollectState, config: RunnableConfig) -> CollectState:
        stream = get_stream_writer()
        tasks = list(state.get("tasks", []))
        if not tasks:
            return {"tasks": [], "task": None, "frontier": []}
        task = tasks.pop(0)
        root = await env.areset(task)
        root_obs = await env.aobservation(root)
        instruction = env.instruction(root)
        inp = PolicyInput(
            env_name=env.name,
            state=root,
            observation=root_obs,
            root_observation=root_obs,
            instruction=instruction,
            path=(),
            depth=0,
            n=ctx.effective_root_width,
            last_step=ctx.depth <= 1,
            seed=ctx.seed,
            max_retries=ctx.max_retries,
        )
        expansion = await expand_state(env, policy, inp, force_terminal=force, config=config)
        kids = [c for c in expansion.children if not c.terminal]
        estimates = await evaluate_children(
            env.name,
            value,
            root_obs,
            [],
            [(c.action, c.observation, c.terminal) for c in kids],
            n_samples=ctx.n_value_samples,
            config=config,
        )
        pool: list[Node] = [
            {"state": c.state, "path": [[c.action, c.observation]], "value": e.value}
            for c, e in zip(kids, estimates, strict=True)
            if e.value >= 0
        ]
        calls = sum(len(e.samples) for e in estimates if not e.rule)
        start_counts = {"policy_calls": expansion.policy_calls, "value_calls": calls}
        stream({"event": "task_start", "task": task, "counts": start_counts})
        frontier = _select(pool, settings.beam, settings.explore, random.Random(f"{ctx.seed}|{task}|1"))
        return {
            "tasks": tasks,
            "task": task,
            "root_observation": root_obs,
            "instruction": instruction,
            "frontier": frontier,
            "depth": 1,
            "counts": start_counts,
        }

    async def expand_level(state: CollectState, config: RunnableConfig) -> CollectState:
        stream = get_stream_writer()
        task, depth, root_obs = state["task"], state["depth"], state["root_observation"]
        assert task is not None
        sem = asyncio.Semaphore(settings.max_concurrency)

        async def one(node: Node) -> LookaheadTarget | None:
            async with sem:
                return await lookahead(
                    env,
                    policy,
                    value,
                    node["state"],
                    root_observation=root_obs,
                    path=[(a, o) for a, o in node["path"]],
                    instruction=state["instruction"],
                    context=ctx,
                    config=config,
                )

        frontier = state["frontier"]
        targets = await asyncio.gather(*(one(n) for n in frontier))
        counts = dict.fromkeys(COUNTS, 0)
        seen = {(e["task"], e["prompt"]) for e in state.get("examples", [])}
        new: list[dict[str, Any]] = []
        pool: list[Node] = []
        for node, target in zip(frontier, targets, strict=True):
            counts["states"] += 1
            if target is None:
                counts["dead_ends"] += 1
                continue
            counts["value_calls"] += target.value_calls
            counts["policy_calls"] += target.policy_calls
            if target.value < 0:
                counts["unparsed"] += 1
            else:
                extra = {
                    "best_action": target.best_action,
                    "terminal_successor": target.terminal,
                    "candidates": [[action, v] for action, v in target.candidates],
                }
                emit(
                    Example(
                        target.prompt,
                        target.target,
                        kind="lookahead",
                        value=target.value,
                        extra=extra,
                        **meta(task, depth),
                    ),
                    seen,
                    new,
                    counts,
                )
                if target.terminal:
                    traj = P.format_trajectory(root_obs, [(a, o) for a, o in node["path"]])
                    emit(
                        Example(
                            P.terminal_prompt(traj, target.best_action),
                            P.terminal_target(target.rationale, target.value),
                            kind="terminal",
                            value=target.value,
                            **meta(task, depth + 1),
                        ),
                        seen,
                        new,
                        counts,
                    )
            if depth >= settings.max_depth:
                continue
            for action, v in target.candidates:
                if v < 0:
                    continue
                result = await env.astep(node["state"], action)
                if result.valid and not env.is_terminal(result.state):
                    obs = await env.aobservation(result.state)
                    pool.append({"state": result.state, "path": [*node["path"], [action, obs]], "value": v})
        stream({"event": "level", "task": task, "depth": depth, "counts": counts})
        rng = random.Random(f"{ctx.seed}|{task}|{depth + 1}")
        nxt = _select(pool, settings.beam, settings.explore, rng) if depth < settings.max_depth else []
        return {"frontier": nxt, "depth": depth + 1, "examples": new, "counts": counts}

    async def finish_task(state: CollectState) -> CollectState:
        task = state["task"]
        assert task is not None
        get_stream_writer()({"event": "task_done", "task": task})
        return {"task": None, "frontier": []}

    def after_start(state: CollectState) -> str:
        if state.get("task") is None:
            return END
        return "expand_level" if state.get("frontier") else "finish_task"

    def after_level(state: CollectState) -> str:
        return "expand_level" if state.get("frontier") else "finish_task"

    graph: StateGraph[CollectState, None, CollectState, CollectState] = StateGraph(CollectState)
    # Model calls fail transiently (timeouts, 429/5xx): retry the node; a level adds its examples only at its end.
    graph.add_node("next_task", next_task, retry_policy=MODEL_RETRY)
    graph.add_node("expand_level", expand_level, retry_policy=MODEL_RETRY)
    graph.add_node("finish_task", finish_task)
    graph.add_edge(START, "next_task")
    graph.add_conditional_edges("next_task", after_start, ["expand_level", "finish_task", END])
    graph.add_conditional_edges("expand_level", after_level, ["expand_level", "finish_task"])
    graph.add_edge("finish_task", "next_task")
    return graph


async def collect_one(
    env: Environment, policy: Policy, value: ValueModel, task_id: str, config: CollectConfig
) -> CollectedTask:
    """Collect one task in memory: the unit of work a worker runs and returns."""
    graph = create_collect_graph(env, policy, value, config).compile()
    final = await graph.ainvoke({"tasks": [task_id]}, {"recursion_limit": config.max_depth + 10})
    examples = tuple(Example.from_dict(e) for e in final.get("examples", []))
    return CollectedTask(task_id, examples, dict(final.get("counts", {})))


class CollectSink:
    """The only writer of a collection file: per task its examples (append + fsync each), then its done-marker.

    A task's examples are skipped when the file already holds the same (task, prompt), which is what a rerun
    after a kill between a task's examples and its marker produces.
    """

    def __init__(
        self, out_path: str | Path, *, on_event: EventHandler | None = None, task_data: dict[str, str] | None = None
    ) -> None:
        self.path = Path(out_path)
        self._task_data = task_data
        self.stats = CollectStats()
        self._on_event = on_event
        self._writer: ExampleWriter | None = None
        self._existing: set[tuple[str, str]] = set()

    def open(self) -> set[str]:
        self._writer = ExampleWriter(self.path)  # recognises and locks the dataset (and so its .done list)
        _cut_torn_done(self.path)
        if self._task_data is not None:
            try:
                check_task_data(self.path, self._task_data)
            except DatasetError:
                self._writer.close()
                raise
        self._existing = {(e.task, e.prompt) for e in read_jsonl(self.path).examples}
        return read_done(self.path)

    def write(self, result: TaskResult) -> None:
        assert self._writer is not None, "open() first"
        if not result.ok:
            self.stats.failed += 1
            self.stats.failures[result.task_id] = result.error or ""
            self._emit({"event": "task_failed", "task": result.task_id, "error": result.error})
            return
        collected: CollectedTask = result.value
        counts = dict(collected.counts)
        for example in collected.examples:
            key = (example.task, example.prompt)
            if key in self._existing:
                kind = "terminal_examples" if example.kind == "terminal" else "examples"
                counts[kind] = counts.get(kind, 0) - 1
                counts["duplicates"] = counts.get("duplicates", 0) + 1
                continue
            self._writer.write(example)
            self._existing.add(key)
        append_line(done_path(self.path), result.task_id + "\n")
        self.stats.tasks += 1
        self.stats.add(counts)
        self._emit({"event": "task_done", "task": result.task_id, "counts": counts, "attempts": result.attempts})

    def status(self) -> str:
        return f"{self.stats.examples + self.stats.terminal_examples} examples" + (
            f", [red]{self.stats.failed} failed" if self.stats.failed else ""
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def _emit(self, event: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(event)


async def collect_tasks(
    task_ids: Sequence[str],
    executor: Executor,
    out_path: str | Path,
    *,
    execution: Execution | None = None,
    on_event: EventHandler | None = None,
    task_data: dict[str, str] | None = None,
) -> CollectStats:
    """Drive ``executor`` (whose tasks return :class:`CollectedTask`) over ``task_ids`` into ``out_path``;
    ``task_data`` (the environment's :meth:`~Environment.task_data`) is checked against the dataset's record."""
    from langgraph_stl.execution.options import Execution

    opts = execution or Execution()
    sink = CollectSink(out_path, on_event=on_event, task_data=task_data)
    outcome: DriveOutcome = await drive(
        task_ids,
        executor,
        sink,
        max_attempts=opts.max_attempts,
        task_timeout_s=opts.task_timeout_s,
        progress=opts.progress,
        label="collect",
        on_skip=None if on_event is None else lambda task: on_event({"event": "task_skipped", "task": task}),
    )
    sink.stats.tasks_skipped = outcome.skipped
    sink.stats.seconds = outcome.wall_time_s
    return sink.stats


async def acollect(
    env: Environment,
    policy: Policy,
    value: ValueModel,
    task_ids: Sequence[str],
    out_path: str | Path,
    config: CollectConfig | None = None,
    *,
    on_event: EventHandler | None = None,
    execution: Execution | None = None,
) -> CollectStats:
    """Collect lookahead examples for ``task_ids`` into ``out_path`` (JSONL, appended) with live objects in this
    process; returns the counters. For other processes or a Ray cluster use :func:`collect_tasks` with a spec."""
    cfg = config or CollectConfig()

    async def run(task_id: str) -> CollectedTask:
        return await collect_one(env, policy, value, task_id, cfg)

    from langgraph_stl.execution.options import Execution

    opts = execution or Execution(concurrency=1, progress=False)
    executor = LocalExecutor(run, concurrency=opts.concurrency)
    return await collect_tasks(task_ids, executor, out_path, execution=opts, on_event=on_event)


def collect(
    env: Environment,
    policy: Policy,
    value: ValueModel,
    task_ids: Sequence[str],
    out_path: str | Path,
    config: CollectConfig | None = None,
    *,
    on_event: EventHandler | None = None,
) -> CollectStats:
    """Synchronous :func:`acollect`."""
    return asyncio.run(acollect(env, policy, value, task_ids, out_path, config, on_event=on_event))


def stats_dict(stats: CollectStats) -> dict[str, Any]:
    """Counters plus derived rates, for manifests and reports."""
    return {**asdict(stats), "states_per_s": stats.states_per_second, "value_calls_per_s": stats.value_calls_per_second}
