"""The search as a LangGraph state machine: ``init → (expand ⇉ evaluate ⇉) select → ... → finalize``.

Each round, ``select`` (or ``init``) fans out one ``expand`` task per node to expand with ``Send``; each ``expand``
hands its children to its own ``evaluate`` task (``Command(goto=Send(...))``), which values the siblings together;
``select`` joins the round and applies the algorithm:

* ``greedy``: the reference's greedy best-first search, ``n_rollouts`` independent rollouts from the root (their
  expansions run in parallel), argmax child per step (ties: first after a seeded shuffle, non-terminal first).
* ``bfs``: Tree-of-Thoughts beam: all beam nodes expanded, the best ``breadth`` children kept.
* ``mcts``: UCT (LATS-like): select by UCT, expand, value the children, back up the best child value; ``budget``
  expansions.

The tree is a flat dict of JSON nodes (``state.nodes``), so any checkpointer stores it and a run resumes after an
interrupt. Every expansion and value estimate is streamed as a custom event. Ground-truth rewards are never read
here: :func:`langgraph_stl.search.run.run_search` adds them for display after the search.

Every node runs synchronously (``invoke``/``stream``) and asynchronously (``ainvoke``/``astream``): the model- and
environment-calling nodes drive one piece of logic with either driver (:mod:`.twins`). They carry a LangGraph
``RetryPolicy`` for transient failures; a failure that persists raises, so a checkpointed thread can be resumed.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar, cast

from langgraph.config import get_config, get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, Send

from langgraph_stl.envs.base import Environment
from langgraph_stl.search.calls import MODEL_RETRY
from langgraph_stl.search.context import SearchContext
from langgraph_stl.search.outline import tree_outline
from langgraph_stl.search.policy import Policy, PolicyInput
from langgraph_stl.search.specs import make_policy, make_value
from langgraph_stl.search.state import (
    EvaluateTask,
    ExpandTask,
    NodeDict,
    RolloutDict,
    SearchInput,
    SearchOutput,
    SearchState,
)
from langgraph_stl.search.steps import default_force_terminal, evaluation_steps, expansion_steps, select_best
from langgraph_stl.search.twins import Steps, Twin, adrive, drive, twin
from langgraph_stl.search.value import ValueModel

T = TypeVar("T")

Algorithm = Literal["greedy", "bfs", "mcts"]
ALGORITHMS: tuple[Algorithm, ...] = ("greedy", "bfs", "mcts")
_ROLLOUT_SEED_STRIDE = 1009
DEFAULT_SPEC = "smollm2"
"""Model spec for a policy/value model that neither the factory nor the context provides."""


def _ctx(runtime: Runtime[SearchContext]) -> SearchContext:
    return SearchContext.from_any(cast(Any, runtime.context))


def path_to(nodes: dict[str, NodeDict], node_id: str) -> list[tuple[str, str]]:
    """``(action, observation)`` pairs from the root to ``node_id`` (the root itself has none)."""
    steps: list[tuple[str, str]] = []
    node = nodes[node_id]
    while node["parent"] is not None:
        steps.append((cast(str, node["action"]), node["observation"]))
        node = nodes[node["parent"]]
    return steps[::-1]


def _new_node(
    node_id: str, parent: str | None, rollout: int, depth: int, action: str | None, obs: str, state: Any, terminal: bool
) -> NodeDict:
    return NodeDict(
        id=node_id,
        parent=parent,
        rollout=rollout,
        depth=depth,
        action=action,
        observation=obs,
        env_state=state,
        terminal=terminal,
        expanded=False,
        children=[],
        value=None,
        value_samples=[],
        rationale="",
        visits=0,
        value_sum=0.0,
    )


def _value(node: NodeDict) -> float:
    return node["value"] if node["value"] is not None else -math.inf


def _expandable(node: NodeDict, ctx: SearchContext) -> bool:
    return not node["terminal"] and not node["expanded"] and node["depth"] < ctx.depth


EnvFactory = Callable[[], Environment]


class _Components:
    """The environment (or a factory, called once on first use: Studio modules must import fast), and the policy
    and value model given to the factory, or built per run from the context's specs (default: the embedded
    ``smollm2``). On the async path construction runs in a worker thread: it may start servers or read files,
    which must not block the event loop (``langgraph dev`` rejects blocking calls in async nodes)."""

    def __init__(self, env: Environment | EnvFactory, policy: Policy | None, value: ValueModel | None) -> None:
        self._env, self.policy, self.value = env, policy, value
        self._lock = threading.Lock()

    def _build_env(self) -> Environment:
        with self._lock:
            if not isinstance(self._env, Environment):
                self._env = self._env()
            return self._env

    async def _abuild_env(self) -> Environment:
        if isinstance(self._env, Environment):
            return self._env
        return await asyncio.to_thread(self._build_env)

    def environment(self) -> Twin[Environment]:
        return Twin(self._build_env, self._abuild_env)

    def _build_models(self, ctx: SearchContext) -> tuple[Policy, ValueModel]:
        policy = self.policy
        if policy is None:
            policy = make_policy(ctx.policy or DEFAULT_SPEC, temperature=ctx.temperature)
        value = self.value
        if value is None:
            value = make_value(ctx.value or DEFAULT_SPEC, temperature=ctx.temperature, mode=cast(Any, ctx.value_mode))
        return policy, value

    async def _abuild_models(self, ctx: SearchContext) -> tuple[Policy, ValueModel]:
        if self.policy is not None and self.value is not None:
            return self.policy, self.value
        return await asyncio.to_thread(self._build_models, ctx)

    def models(self, ctx: SearchContext) -> Twin[tuple[Policy, ValueModel]]:
        return Twin(self._build_models, self._abuild_models, ctx)


NodeSteps = Callable[[Any, Runtime[SearchContext]], Steps[Any]]


def _node(steps: NodeSteps) -> Any:
    """A graph node with sync and async twins that drive the same ``steps`` (see :mod:`.twins`)."""

    def run(state: Any, runtime: Runtime[SearchContext]) -> Any:
        return drive(steps(state, runtime))

    async def arun(state: Any, runtime: Runtime[SearchContext]) -> Any:
        return await adrive(steps(state, runtime))

    return twin(run, arun, name=steps.__name__)


def _pure_node(func: Callable[[Any, Runtime[SearchContext]], dict[str, Any]]) -> Any:
    """A node for a pure, fast function: its async path calls it inline, where a plain function node would cost a
    worker-thread hop per round (measured: docs/BENCHMARKS.md, search (b))."""

    async def arun(state: Any, runtime: Runtime[SearchContext]) -> dict[str, Any]:
        return func(state, runtime)

    return twin(func, arun)


def create_search_graph(
    env: Environment | EnvFactory,
    policy: Policy | None = None,
    value: ValueModel | None = None,
    *,
    algorithm: Algorithm | None = "greedy",
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = MODEL_RETRY,
) -> StateGraph[SearchState, SearchContext, SearchInput, SearchOutput]:
    """An uncompiled search graph over ``env`` (or a zero-argument factory of it); compile it with any checkpointer.

    Input ``{"task_id": ...}``; knobs in ``context=SearchContext(...)`` (or a dict over HTTP). ``policy``/``value``
    may be None, then they are built from ``context.policy``/``context.value`` specs at run time; ``algorithm=None``
    reads ``context.algorithm``. The output's ``result`` is the JSON-native summary described in docs/SEARCH.md;
    the full tree stays in the graph state. Runs with ``invoke``/``stream`` as well as ``ainvoke``/``astream``.

    ``retry_policy`` goes to the nodes that call models or the environment (``init``, ``expand``, ``evaluate``):
    by default :data:`~langgraph_stl.search.calls.MODEL_RETRY`, which retries only transient failures. A failure
    that outlasts it raises out of the graph; with a checkpointer, ``invoke(None, config)`` on the same thread
    resumes from the failed step once the cause is fixed (finished sibling steps are not redone).
    """
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    parts = _Components(env, policy, value)

    def algo(ctx: SearchContext) -> str:
        return algorithm if algorithm is not None else ctx.algorithm

    def init(state: SearchInput, runtime: Runtime[SearchContext]) -> Steps[dict[str, Any]]:
        ctx = _ctx(runtime)
        env = yield parts.environment()
        yield parts.models(ctx)  # fail early and clearly on bad specs
        root_state = yield Twin(env.reset, env.areset, state["task_id"])
        obs = yield Twin(env.observation, env.aobservation, root_state)
        instruction = yield Twin(env.instruction, _in_thread(env.instruction), root_state)
        terminal = env.is_terminal(root_state)
        n_roots = ctx.n_rollouts if algo(ctx) == "greedy" else 1
        nodes = {f"r{i}": _new_node(f"r{i}", None, i, 0, None, obs, root_state, terminal) for i in range(n_roots)}
        update: dict[str, Any] = {"nodes": nodes, "instruction": instruction, "iteration": 0}
        if algo(ctx) == "greedy":
            update["rollouts"] = [RolloutDict(index=i, current=f"r{i}", done=terminal) for i in range(n_roots)]
        else:
            update["frontier"] = ["r0"]
        get_stream_writer()({"type": "start", "task_id": state["task_id"], "algorithm": algo(ctx), "roots": n_roots})
        return update

    def expand(task: ExpandTask, runtime: Runtime[SearchContext]) -> Steps[Command[Any]]:
        config = get_config()
        ctx = _ctx(runtime)
        env = yield parts.environment()
        pol, _ = yield parts.models(ctx)
        node = task["node"]
        depth = node["depth"]
        inp = PolicyInput(
            env_name=env.name,
            state=node["env_state"],
            observation=node["observation"],
            root_observation=task["root_observation"],
            instruction=task["instruction"],
            path=tuple((a, o) for a, o in task["path"]),
            depth=depth,
            n=ctx.effective_root_width if depth == 0 else ctx.width,
            last_step=depth + 1 >= ctx.depth,
            seed=ctx.seed + _ROLLOUT_SEED_STRIDE * node["rollout"],
            max_retries=ctx.max_retries,
        )
        force = ctx.force_terminal if ctx.force_terminal is not None else default_force_terminal(env.name)
        expansion = yield from expansion_steps(
            env, pol, inp, force_terminal=force, retries=ctx.expand_retries, config=config
        )
        children = [
            _new_node(
                f"{node['id']}.{i}",
                node["id"],
                node["rollout"],
                depth + 1,
                c.action,
                c.observation,
                c.state,
                c.terminal,
            )
            for i, c in enumerate(expansion.children)
        ]
        nodes: dict[str, Any] = {c["id"]: c for c in children}
        nodes[node["id"]] = {"expanded": True, "children": [c["id"] for c in children]}
        # Streamed only after the fallible calls, so a retried attempt never emits twice.
        get_stream_writer()(
            {
                "type": "expanded",
                "node": node["id"],
                "depth": depth,
                "children": [c["action"] for c in children],
                "invalid": expansion.invalid,
            }
        )
        stats = {
            "states_expanded": len(children),
            "expansions": 1,
            "policy_calls": expansion.policy_calls,
            "invalid_proposals": expansion.invalid,
        }
        eval_task = EvaluateTask(
            parent=node, children=children, path=task["path"], root_observation=task["root_observation"]
        )
        return Command(update={"nodes": nodes, "stats": stats}, goto=Send("evaluate", eval_task))

    def evaluate(task: EvaluateTask, runtime: Runtime[SearchContext]) -> Steps[dict[str, Any]]:
        config = get_config()
        children = task["children"]
        if not children:
            return {}
        ctx = _ctx(runtime)
        env = yield parts.environment()
        _, val = yield parts.models(ctx)
        estimates = yield from evaluation_steps(
            env.name,
            val,
            task["root_observation"],
            task["path"],
            [(cast(str, c["action"]), c["observation"], c["terminal"]) for c in children],
            n_samples=ctx.n_value_samples,
            config=config,
        )
        writer = get_stream_writer()
        nodes: dict[str, Any] = {}
        for child, est in zip(children, estimates, strict=True):
            nodes[child["id"]] = {
                "value": est.value,
                "value_samples": est.samples,
                "rationale": est.rationale,
                "visits": 1,
                "value_sum": est.value,
            }
            writer(
                {
                    "type": "value",
                    "node": child["id"],
                    "parent": task["parent"]["id"],
                    "action": child["action"],
                    "value": est.value,
                    "terminal": child["terminal"],
                }
            )
        stats = {
            "value_calls": sum(len(e.samples) for e in estimates if not e.rule),
            "value_parse_failures": sum(e.failures for e in estimates),
        }
        return {"nodes": nodes, "stats": stats}

    def route(state: SearchState, runtime: Runtime[SearchContext]) -> list[Send] | str:
        ctx = _ctx(runtime)
        nodes = state["nodes"]
        if algo(ctx) == "greedy":
            targets = [r["current"] for r in state.get("rollouts", []) if not r["done"]]
        else:
            targets = list(state.get("frontier", []))
        targets = [t for t in targets if _expandable(nodes[t], ctx)]
        if not targets:
            return "finalize"
        root_obs = nodes["r0"]["observation"]
        return [
            Send(
                "expand",
                ExpandTask(
                    node=nodes[t],
                    path=path_to(nodes, t),
                    root_observation=root_obs,
                    instruction=state.get("instruction", root_obs),
                ),
            )
            for t in targets
        ]

    def select(state: SearchState, runtime: Runtime[SearchContext]) -> dict[str, Any]:
        ctx = _ctx(runtime)
        if algo(ctx) == "greedy":
            return _select_greedy(state, ctx)
        if algo(ctx) == "bfs":
            return _select_bfs(state, ctx)
        return _select_mcts(state, ctx)

    def finalize(state: SearchState, runtime: Runtime[SearchContext]) -> dict[str, Any]:
        ctx = _ctx(runtime)
        result = summarize(state, ctx, algo(ctx))
        get_stream_writer()({"type": "done", "trajectory": result["trajectory"], "value": result["value"]})
        return {"result": result}

    builder = StateGraph(
        SearchState, context_schema=SearchContext, input_schema=SearchInput, output_schema=SearchOutput
    )
    builder.add_node("init", _node(init), retry_policy=retry_policy)
    builder.add_node(
        "expand", _node(expand), input_schema=ExpandTask, destinations=("evaluate",), retry_policy=retry_policy
    )
    builder.add_node("evaluate", _node(evaluate), input_schema=EvaluateTask, retry_policy=retry_policy)
    builder.add_node("select", _pure_node(select))
    builder.add_node("finalize", _pure_node(finalize))
    builder.add_edge(START, "init")
    builder.add_conditional_edges("init", route, ["expand", "finalize"])
    builder.add_edge("evaluate", "select")
    builder.add_conditional_edges("select", route, ["expand", "finalize"])
    builder.add_edge("finalize", END)
    return builder


def _in_thread(func: Callable[[Any], T]) -> Callable[[Any], Awaitable[T]]:
    """``func`` as a coroutine function that runs it in a worker thread (it may block on I/O)."""

    async def call(arg: Any) -> T:
        return await asyncio.to_thread(func, arg)

    return call


# --------------------------------------------------------------------------------------------------------------
# Selection rules (pure functions of the state, so a resumed run repeats them exactly)


def _select_greedy(state: SearchState, ctx: SearchContext) -> dict[str, Any]:
    nodes = state["nodes"]
    rollouts: list[RolloutDict] = []
    for r in state.get("rollouts", []):
        r = RolloutDict(index=r["index"], current=r["current"], done=r["done"])
        node = nodes[r["current"]]
        if not r["done"] and node["expanded"]:
            kids = [nodes[c] for c in node["children"]]
            if not kids:
                r["done"] = True
            else:
                rng = random.Random(f"{ctx.seed}|select|{node['id']}")
                best = kids[select_best([_value(k) for k in kids], [k["terminal"] for k in kids], rng)]
                r["current"] = best["id"]
                r["done"] = best["terminal"] or best["depth"] >= ctx.depth
        rollouts.append(r)
    return {"rollouts": rollouts, "iteration": state.get("iteration", 0) + 1}


def _select_bfs(state: SearchState, ctx: SearchContext) -> dict[str, Any]:
    nodes = state["nodes"]
    frontier = state.get("frontier", [])
    pool = [c for f in frontier if nodes[f]["expanded"] for c in nodes[f]["children"]]
    pool += [f for f in frontier if not nodes[f]["expanded"]]  # terminal or depth-capped nodes stay in the beam
    iteration = state.get("iteration", 0)
    random.Random(f"{ctx.seed}|bfs|{iteration}").shuffle(pool)
    pool.sort(key=lambda n: (-_value(nodes[n]), nodes[n]["terminal"]))
    return {"frontier": pool[: ctx.breadth], "iteration": iteration + 1}


def _uct(node: NodeDict, parent_visits: int, c: float) -> float:
    visits = max(node["visits"], 1)
    return node["value_sum"] / visits + c * math.sqrt(math.log(max(parent_visits, 1)) / visits)


def _select_mcts(state: SearchState, ctx: SearchContext) -> dict[str, Any]:
    nodes = dict(state["nodes"])
    updates: dict[str, dict[str, Any]] = {}

    def view(node_id: str) -> NodeDict:
        return cast(NodeDict, {**nodes[node_id], **updates.get(node_id, {})})

    def backup(node_id: str, v: float) -> None:
        current: str | None = node_id
        while current is not None:
            node = view(current)
            updates[current] = {
                **updates.get(current, {}),
                "visits": node["visits"] + 1,
                "value_sum": node["value_sum"] + v,
            }
            current = node["parent"]

    leaf = state.get("frontier", ["r0"])[0]
    kids = [nodes[c] for c in nodes[leaf]["children"]]
    backup(leaf, max((_value(k) for k in kids), default=nodes[leaf]["value"] or 0.0))
    iteration = state.get("iteration", 0) + 1
    frontier: list[str] = []
    simulations = 0
    # Re-select until an expandable leaf turns up; dead ends and terminal leaves are visited (backed up) instead.
    while iteration < ctx.budget and simulations <= ctx.budget:
        current = "r0"
        while view(current)["expanded"] and view(current)["children"]:
            parent_visits = view(current)["visits"]
            children = list(view(current)["children"])
            random.Random(f"{ctx.seed}|uct|{current}|{parent_visits}").shuffle(children)
            current = max(children, key=lambda c: _uct(view(c), parent_visits, ctx.c_uct))
        if _expandable(view(current), ctx):
            frontier = [current]
            break
        simulations += 1
        node = view(current)
        backup(current, node["value"] if node["value"] is not None else 0.0)
        if current == "r0":
            break
    return {"nodes": updates, "frontier": frontier, "iteration": iteration}


# --------------------------------------------------------------------------------------------------------------
# Result


def _trajectory(nodes: dict[str, NodeDict], node_id: str) -> list[str]:
    return [a for a, _ in path_to(nodes, node_id)]


def _leaf_summary(nodes: dict[str, NodeDict], node_id: str) -> dict[str, Any]:
    node = nodes[node_id]
    return {
        "leaf": node_id,
        "trajectory": _trajectory(nodes, node_id),
        "values": [nodes[n]["value"] for n in _ancestry(nodes, node_id)[1:]],
        "value": node["value"],
        "terminal": node["terminal"],
        "depth": node["depth"],
    }


def _ancestry(nodes: dict[str, NodeDict], node_id: str) -> list[str]:
    chain = [node_id]
    while nodes[chain[-1]]["parent"] is not None:
        chain.append(cast(str, nodes[chain[-1]]["parent"]))
    return chain[::-1]


def _best_by_value(nodes: dict[str, NodeDict], ids: Sequence[str]) -> str:
    return max(ids, key=lambda n: _value(nodes[n]))


def summarize(state: SearchState, ctx: SearchContext, algorithm: str) -> dict[str, Any]:
    """The JSON-native result of a finished search: chosen and per-rollout trajectories, values, counters
    (``error`` is always None here: a failed search raises, and :func:`~langgraph_stl.search.run.arun_search`
    records the failure there). The chosen trajectory is the one the value model ranks best; no ground truth is
    involved."""
    nodes = state["nodes"]
    if not nodes:
        leaves: list[str] = []
    elif algorithm == "greedy":
        leaves = [r["current"] for r in state.get("rollouts", [])]
    elif algorithm == "bfs":
        leaves = list(state.get("frontier", [])) or ["r0"]
    else:
        terminal = sorted(
            (n for n, node in nodes.items() if node["terminal"] and node["value"] is not None),
            key=lambda n: -_value(nodes[n]),
        )
        leaves = terminal[: ctx.n_rollouts] or [_most_visited_leaf(nodes)]
    chosen = _best_by_value(nodes, leaves) if leaves else None
    stats = state.get("stats", {})
    result: dict[str, Any] = {
        "task_id": state["task_id"],
        "algorithm": algorithm,
        "trajectory": _trajectory(nodes, chosen) if chosen else [],
        "leaf": chosen,
        "value": nodes[chosen]["value"] if chosen else None,
        "terminal": nodes[chosen]["terminal"] if chosen else False,
        "rollouts": [_leaf_summary(nodes, leaf) for leaf in leaves],
        "value_estimates": {n: node["value"] for n, node in nodes.items() if node["value"] is not None},
        "states_expanded": stats.get("states_expanded", 0),
        "expansions": stats.get("expansions", 0),
        "policy_calls": stats.get("policy_calls", 0),
        "value_calls": stats.get("value_calls", 0),
        "invalid_proposals": stats.get("invalid_proposals", 0),
        "value_parse_failures": stats.get("value_parse_failures", 0),
        "error": None,
        "tree_summary": tree_outline(nodes, leaves, chosen),
    }
    return result


def _most_visited_leaf(nodes: dict[str, NodeDict]) -> str:
    current = "r0"
    while nodes[current]["children"]:
        current = max(nodes[current]["children"], key=lambda c: (nodes[c]["visits"], _value(nodes[c])))
    return current
