"""Search-graph logic with scripted fakes: selection, ties, pass@n, forced terminal step, errors, streaming,
checkpointers and resume."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.search import (
    EnumeratePolicy,
    LLMPolicy,
    SearchContext,
    ValueModel,
    arun_search,
    create_search_graph,
)
from langgraph_stl.search.calls import MODEL_RETRY, is_transient
from langgraph_stl.search.steps import select_best
from tests.fakes import ScriptedChatModel, TreeEnv, fixed, game24_oracle, path_value_responder, score

VALUES = {"/a": 8, "/b": 4, "/c": 2, "/a/a": 3, "/a/b": 9, "/a/c": 1, "/a/b/stop!": 10, "/a/b/a": 5}


def _value(values: dict[str, float] | None = None, **kw: Any) -> ValueModel:
    return ValueModel(ScriptedChatModel(responder=path_value_responder(VALUES if values is None else values), **kw))


async def _run(
    graph: Any, ctx: SearchContext, config: dict[str, Any] | None = None, task: str = "t0"
) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    async for mode, chunk in graph.astream({"task_id": "t0"}, config, context=ctx, stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(chunk)
        else:
            final = chunk
    final["events"] = events
    return final


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "tokens")}


@pytest.mark.parametrize("algorithm", ["greedy", "bfs", "mcts"])
async def test_each_algorithm_finds_the_valued_path_and_never_reads_ground_truth(algorithm: str) -> None:
    env = TreeEnv(forbid_true_reward=True)
    graph = create_search_graph(env, EnumeratePolicy(), _value(), algorithm=algorithm).compile()
    ctx = SearchContext(n_rollouts=2, n_value_samples=2, depth=3, breadth=2, budget=8)
    out = await _run(graph, ctx)
    result = out["result"]
    assert result["error"] is None
    assert result["trajectory"] == ["a", "b", "stop"]
    assert result["value"] == pytest.approx(1.0)
    assert env.true_reward_calls == 0
    expanded = [e for e in out["events"] if e["type"] == "expanded"]
    valued = [e for e in out["events"] if e["type"] == "value"]
    assert len(expanded) == result["expansions"]
    assert len(valued) == len(result["value_estimates"])
    assert result["states_expanded"] == sum(len(e["children"]) for e in expanded)
    assert result["value_calls"] == 2 * len(valued)  # n_value_samples per child, rule-free env
    if algorithm == "mcts":
        assert result["expansions"] <= ctx.budget


async def test_greedy_reports_every_rollout_and_pass_at_n_with_labels() -> None:
    """All values tie, so each rollout follows its own seeded shuffle; the runner labels the three metrics."""
    env = TreeEnv(branching=3, depth=2, with_stop=False, good=("b", "c"))
    result = await arun_search(
        env,
        EnumeratePolicy(),
        _value({}),
        "t0",
        context=SearchContext(n_rollouts=4, n_value_samples=1, depth=2, seed=3),
    )
    trajectories = [tuple(r["trajectory"]) for r in result["rollouts"]]
    assert len(trajectories) == 4 and len(set(trajectories)) > 1
    rewards = [r["true_reward"] for r in result["rollouts"]]
    assert result["true_reward"]["pass_at_n"] == max(rewards)
    assert result["true_reward"]["mean"] == pytest.approx(sum(rewards) / 4)
    assert result["true_reward"]["n"] == 4
    first_best = max(range(4), key=lambda i: result["rollouts"][i]["value"])
    assert result["trajectory"] == result["rollouts"][first_best]["trajectory"]
    assert result["reward"] == result["true_reward"]["value_selected"] == rewards[first_best]
    # each rollout's choice is the reference rule: first maximum after a seeded shuffle of the root's children
    for i, rollout in enumerate(result["rollouts"]):
        rng = random.Random(f"3|select|r{i}")
        assert rollout["trajectory"][0] == "abc"[select_best([0.1, 0.1, 0.1], [False] * 3, rng)]


def test_select_best_ties_go_to_the_first_after_shuffle_non_terminal_first() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        order = list(range(4))
        random.Random(seed).shuffle(order)
        assert select_best([0.5, 0.5, 0.5, 0.5], [False] * 4, rng) == order[0]
    # a terminal child never wins a tie against a non-terminal one
    assert all(select_best([0.5, 0.5], [True, False], random.Random(s)) == 1 for s in range(20))
    assert select_best([0.1, 0.9, 0.5], [False, True, False], random.Random(0)) == 1


async def test_forced_terminal_last_step() -> None:
    """At the last allowed step only terminal children survive (WebShop's forced Buy Now)."""
    env = TreeEnv(depth=6)
    values = {"/a": 9, "/a/a": 9, "/a/stop!": 2}
    graph = create_search_graph(env, EnumeratePolicy(), _value(values), algorithm="greedy").compile()
    out = await _run(graph, SearchContext(n_rollouts=1, n_value_samples=1, depth=2, force_terminal=True))
    assert out["result"]["trajectory"] == ["a", "stop"]
    assert out["result"]["terminal"] is True
    free = await _run(graph, SearchContext(n_rollouts=1, n_value_samples=1, depth=2, force_terminal=False))
    assert free["result"]["trajectory"] == ["a", "a"]
    assert free["result"]["terminal"] is False


async def test_invalid_proposals_are_dropped_and_counted() -> None:
    policy_model = ScriptedChatModel(responder=fixed("Action: zz\nAction: a\nAction: a\nAction: fly away"), name_="pol")
    env = TreeEnv(depth=2)
    result = await arun_search(
        env, LLMPolicy(policy_model), _value(), "t0", context=SearchContext(n_rollouts=1, n_value_samples=1, depth=2)
    )
    assert result["error"] is None
    assert result["trajectory"] == ["a", "a"]
    assert result["invalid_proposals"] == 4  # two unusable proposals per expansion, two expansions
    assert result["policy_calls"] == 2
    assert set(result["tokens"]) == {"pol", "fake"}


async def test_value_parse_failures_are_counted_and_valued_minus_one() -> None:
    env = TreeEnv(depth=2, with_stop=False)
    value = ValueModel(
        ScriptedChatModel(responder=lambda p, k: "no idea" if p.endswith("at /b\nReflection:") else score(6))
    )
    result = await arun_search(
        env, EnumeratePolicy(), value, "t0", context=SearchContext(n_rollouts=1, n_value_samples=3, depth=1)
    )
    assert result["value_estimates"]["r0.1"] == -1.0
    assert result["value_parse_failures"] == 3
    assert result["trajectory"] in (["a"], ["c"])  # a tie between the two parsed children


FAST_RETRY = MODEL_RETRY._replace(initial_interval=0.0, jitter=False)


async def test_transient_model_errors_are_retried_by_the_node_then_recorded_not_raised() -> None:
    env = TreeEnv(depth=2)
    flaky = _value(fail_first=2)
    ctx = SearchContext(n_rollouts=1, depth=2)
    ok = await arun_search(env, EnumeratePolicy(), flaky, "t0", context=ctx, retry_policy=FAST_RETRY)
    assert ok["error"] is None and ok["trajectory"]
    broken = _value(fail_first=10_000)
    failed = await arun_search(env, EnumeratePolicy(), broken, "t0", context=ctx, retry_policy=FAST_RETRY)
    assert failed["error"].startswith("ConnectionError: injected failure")
    assert failed["reward"] is None
    # 4 attempts of the root's evaluate node; each attempt issues the 4 children x 5 samples together
    assert broken.model.calls == 4 * 4 * 5  # type: ignore[attr-defined]


async def test_programming_errors_are_not_retried() -> None:
    broken = _value(fail_first=10_000, fail_with=TypeError)
    ctx = SearchContext(n_rollouts=1, depth=2, n_value_samples=1)
    failed = await arun_search(TreeEnv(depth=2), EnumeratePolicy(), broken, "t0", context=ctx)
    assert failed["error"].startswith("TypeError: injected failure")
    assert broken.model.calls == 4  # one attempt: the root's four children, valued together


def test_only_transient_errors_count_as_transient() -> None:
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")

    def status(code: int) -> Exception:
        return openai.APIStatusError("x", response=httpx.Response(code, request=request), body=None)

    def wrapped(cause: Exception) -> Exception:
        try:
            raise RuntimeError("model call failed") from cause
        except RuntimeError as exc:
            return exc

    transient = [
        TimeoutError(),
        ConnectionError(),
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        openai.APITimeoutError(request=request),
        openai.APIConnectionError(request=request),
        status(429),
        status(503),
        httpx.HTTPStatusError("x", request=request, response=httpx.Response(500, request=request)),
        wrapped(ConnectionError()),
    ]
    permanent = [TypeError("bad"), ValueError("bad"), KeyError("k"), status(400), status(404), RuntimeError("x")]
    assert [is_transient(e) for e in transient] == [True] * len(transient)
    assert [is_transient(e) for e in permanent] == [False] * len(permanent)


def test_a_failed_thread_resumes_after_the_cause_is_fixed() -> None:
    """The value model fails (non-transient, so at once): the graph raises, the thread keeps its finished steps,
    and once the model works ``invoke(None, config)`` on the same thread finishes with the uninterrupted result."""
    ctx = SearchContext(n_rollouts=2, n_value_samples=1, depth=3, seed=1)
    env = TreeEnv()
    reference = (
        create_search_graph(env, EnumeratePolicy(shuffle=True), _value())
        .compile()
        .invoke({"task_id": "t0"}, context=ctx)
    )
    value = _value(fail_first=10_000, fail_with=ValueError)
    graph = create_search_graph(env, EnumeratePolicy(shuffle=True), value).compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "job"}}
    with pytest.raises(ValueError, match="injected failure"):
        graph.invoke({"task_id": "t0"}, config, context=ctx)
    assert set(graph.get_state(config).next) == {"evaluate"}  # both rollouts' first evaluations failed
    value.model.fail_first = 0  # type: ignore[attr-defined]  # the cause is fixed
    out = graph.invoke(None, config, context=ctx)
    assert out["result"] == reference["result"]
    assert out["result"]["error"] is None


def _search_result(chunks: list[Any]) -> dict[str, Any]:
    return next(c["result"] for mode, c in chunks if mode == "values" and c.get("result"))


async def test_sync_and_async_runs_of_one_search_are_identical() -> None:
    """One fake-model search (LLM policy, LLM value, two parallel rollouts) through invoke, ainvoke, stream and
    astream: the same result and the same custom events."""
    ctx = SearchContext(n_rollouts=2, n_value_samples=2, depth=3, width=2, seed=5)
    policy_model = ScriptedChatModel(responder=fixed("Action: b\nAction: a\nAction: stop"), name_="pol")

    def graph() -> Any:
        return create_search_graph(TreeEnv(), LLMPolicy(policy_model), _value()).compile()

    invoked = graph().invoke({"task_id": "t0"}, context=ctx)["result"]
    ainvoked = (await graph().ainvoke({"task_id": "t0"}, context=ctx))["result"]
    modes: Any = ["custom", "values"]
    streamed = list(graph().stream({"task_id": "t0"}, context=ctx, stream_mode=modes))
    astreamed = [c async for c in graph().astream({"task_id": "t0"}, context=ctx, stream_mode=modes)]
    assert invoked["trajectory"] and invoked["expansions"] > 2
    assert invoked == ainvoked == _search_result(streamed) == _search_result(astreamed)

    def events(chunks: list[Any]) -> list[Any]:
        return sorted((json.dumps(c, sort_keys=True) for mode, c in chunks if mode == "custom"))

    assert events(streamed) == events(astreamed)


async def test_bad_task_id_is_a_clear_error() -> None:
    result = await arun_search(TreeEnv(), EnumeratePolicy(), _value(), "nope")
    assert result["error"].startswith("InvalidTaskError: unknown task 'nope'")


async def test_siblings_are_valued_concurrently() -> None:
    """Five children x one sample at 0.2 s latency each: one round trip, not five."""
    env = TreeEnv(branching=5, depth=1, with_stop=False)
    slow = _value(latency=0.2)
    graph = create_search_graph(env, EnumeratePolicy(), slow).compile()
    loop = asyncio.get_running_loop()
    start = loop.time()
    out = await _run(graph, SearchContext(n_rollouts=1, n_value_samples=1, depth=1))
    assert len(out["result"]["value_estimates"]) == 5
    assert loop.time() - start < 0.6


@pytest.mark.parametrize("saver_kind", ["memory", "sqlite"])
@pytest.mark.parametrize("algorithm", ["greedy", "bfs", "mcts"])
async def test_interrupted_and_resumed_run_equals_uninterrupted(
    tmp_path: Path, saver_kind: str, algorithm: str
) -> None:
    ctx = SearchContext(n_rollouts=2, n_value_samples=2, depth=3, breadth=2, budget=5, seed=7)
    env = TreeEnv(forbid_true_reward=True)
    builder = create_search_graph(env, EnumeratePolicy(shuffle=True), _value(), algorithm=algorithm)
    reference = (await _run(builder.compile(), ctx))["result"]

    async def resume_until_done(make_saver: Any) -> tuple[dict[str, Any], int]:
        config = {"configurable": {"thread_id": "t"}}
        stops = 0
        async with make_saver() as saver:
            graph = builder.compile(checkpointer=saver, interrupt_after=["select"])
            await graph.ainvoke({"task_id": "t0"}, config, context=ctx)
        while True:  # a fresh graph and saver per leg, as after a process restart
            async with make_saver() as saver:
                graph = builder.compile(checkpointer=saver, interrupt_after=["select"])
                state = await graph.aget_state(config)
                if not state.next:
                    return state.values["result"], stops
                stops += 1
                await graph.ainvoke(None, config, context=ctx)

    if saver_kind == "memory":
        memory = InMemorySaver()

        class _Same:
            async def __aenter__(self) -> InMemorySaver:
                return memory

            async def __aexit__(self, *exc: object) -> None:
                return None

        result, stops = await resume_until_done(_Same)
    else:
        db = tmp_path / "ckpt.sqlite"
        result, stops = await resume_until_done(lambda: AsyncSqliteSaver.from_conn_string(str(db)))
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from checkpoints").fetchone()[0] > 3
    assert stops >= 1
    assert result == reference


async def test_run_search_resumes_a_thread_from_its_checkpoint(tmp_path: Path) -> None:
    """A run stopped mid-search (here: an interrupt after the first evaluation, in another "process") finishes
    from the saved state under ``run_search`` with the same result, without redoing finished model calls."""
    ctx = SearchContext(n_rollouts=2, n_value_samples=1, depth=3, seed=1)
    env = TreeEnv()
    db = str(tmp_path / "runs.sqlite")
    full = await arun_search(env, EnumeratePolicy(shuffle=True), _value(), "t0", context=ctx)
    config = {"configurable": {"thread_id": "job-1"}}
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        builder = create_search_graph(env, EnumeratePolicy(shuffle=True), _value())
        graph = builder.compile(checkpointer=saver, interrupt_after=["evaluate"])
        await graph.ainvoke({"task_id": "t0"}, config, context=ctx)
        assert (await graph.aget_state(config)).next == ("select",)
    value = _value()
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        resumed = await arun_search(
            env, EnumeratePolicy(shuffle=True), value, "t0", context=ctx, checkpointer=saver, thread_id="job-1"
        )
    assert _comparable(resumed) == _comparable(full)
    assert value.model.calls < full["value_calls"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("algorithm", ["bfs", "greedy"])
async def test_game24_search_with_an_oracle_value_solves_the_puzzle(algorithm: str) -> None:
    env = Game24Env()
    value = ValueModel(ScriptedChatModel(responder=game24_oracle))
    ctx = SearchContext(width=40, breadth=2, depth=3, n_rollouts=1, n_value_samples=1)
    result = await arun_search(env, EnumeratePolicy(), value, "900", algorithm=algorithm, context=ctx)  # type: ignore[arg-type]
    assert result["error"] is None
    assert len(result["trajectory"]) == 3
    assert result["reward"] == 1.0
    assert result["value"] == 1.0


async def test_mcts_backs_up_values_and_explores_by_uct() -> None:
    """After a disappointing expansion of the greedy choice, UCT turns to the runner-up (budget in expansions)."""
    values = {"/a": 6, "/b": 5, "/c": 1, "/stop!": 0, "/a/a": 0, "/a/b": 0, "/a/c": 0, "/a/stop!": 0}
    env = TreeEnv()
    graph = create_search_graph(env, EnumeratePolicy(), _value(values), algorithm="mcts").compile()
    out = await _run(graph, SearchContext(n_value_samples=1, depth=3, budget=3, c_uct=1.0))
    expanded = [e["node"] for e in out["events"] if e["type"] == "expanded"]
    assert expanded == ["r0", "r0.0", "r0.1"]  # root, a (best value), then b: Q(a) fell to 0.3 after backup
    nodes = out["nodes"]
    assert nodes["r0"]["visits"] == 3
    assert nodes["r0.0"]["visits"] == 2 and nodes["r0.0"]["value_sum"] == pytest.approx(0.6)
    assert out["result"]["expansions"] == 3


def test_run_search_calls_share_one_event_loop() -> None:
    """Clients cached across calls (langchain-openai's async pool) stay valid: every sync call uses the same loop."""
    from langgraph_stl.search import run_search

    loops: set[int] = set()

    def respond(prompt: str, k: int) -> str:
        return score(5)

    class LoopRecorder(ScriptedChatModel):
        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            loops.add(id(asyncio.get_running_loop()))
            return await super()._agenerate(messages, stop, run_manager, **kw)

    value = ValueModel(LoopRecorder(responder=respond))
    for _ in range(2):
        result = run_search(TreeEnv(), EnumeratePolicy(), value, "t0", context=SearchContext(n_rollouts=1, depth=1))
        assert result["error"] is None
    assert len(loops) == 1
