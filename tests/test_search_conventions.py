"""LangChain/LangGraph conventions of the search: any chat-model Runnable as policy or value model, run names and
tags per role, value tokens kept out of ``stream_mode="messages"``, clear context errors, sync tools inside a running
event loop, and the one LangGraph internal the graph relies on."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import ConfigurableField

from langgraph_stl.models.usage import TokenUsageCallback
from langgraph_stl.search import EnumeratePolicy, LLMPolicy, SearchContext, ValueModel, arun_search, create_search_graph
from langgraph_stl.search.composition import as_value_tool, value_runnable
from langgraph_stl.search.twins import twin
from tests.fakes import ScriptedChatModel, TreeEnv, fixed, path_value_responder

VALUES = {"/a": 8, "/b": 4, "/c": 2, "/a/a": 3, "/a/b": 9, "/a/c": 1, "/a/b/stop!": 10}
CTX = SearchContext(n_rollouts=1, n_value_samples=2, depth=3, width=3)


def _valuer(name: str = "val", **kw: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responder=path_value_responder(VALUES), name_=name, **kw)


def _policy_model(name: str = "pol", **kw: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responder=fixed("Action: a\nAction: b\nAction: stop"), name_=name, **kw)


async def test_wrapped_chat_models_work_as_policy_and_value_and_their_tokens_are_counted() -> None:
    """``with_retry`` (a flaky policy), ``with_fallbacks`` (a dead value model), ``bind``: same search, same tokens
    as the bare models'."""
    reference = await arun_search(TreeEnv(), LLMPolicy(_policy_model()), ValueModel(_valuer()), "t0", context=CTX)
    flaky = _policy_model(fail_first=1)
    dead = _valuer("dead", fail_first=10**6, fail_with=TypeError)
    result = await arun_search(
        TreeEnv(),
        LLMPolicy(flaky.with_retry(stop_after_attempt=2, wait_exponential_jitter=False)),
        ValueModel(dead.with_fallbacks([_valuer().bind(stop=["never"])])),
        "t0",
        context=CTX,
    )
    assert result["error"] is None
    assert result["trajectory"] == reference["trajectory"] == ["a", "b", "stop"]
    assert result["value_estimates"] == reference["value_estimates"]
    assert flaky.calls == reference["policy_calls"] + 1  # the one injected failure was retried by with_retry
    assert result["tokens"]["pol"] == reference["tokens"]["pol"]
    assert result["tokens"]["val"] == reference["tokens"]["val"]
    assert "dead" not in result["tokens"]  # its calls failed before producing tokens


def test_configurable_alternatives_follow_the_graph_config() -> None:
    """The model is called with the graph's config, so ``configurable`` picks the alternative (sync graph)."""
    low = ScriptedChatModel(responder=fixed("Thus the correctness score is 1"), name_="low")
    value_model = _valuer().configurable_alternatives(ConfigurableField(id="value_model"), default_key="path", low=low)
    graph = create_search_graph(TreeEnv(), EnumeratePolicy(cap=False), ValueModel(value_model)).compile()
    default = graph.invoke({"task_id": "t0"}, context=CTX)["result"]
    chosen = graph.invoke({"task_id": "t0"}, {"configurable": {"value_model": "low"}}, context=CTX)["result"]
    assert default["trajectory"] == ["a", "b", "stop"]
    assert set(chosen["value_estimates"].values()) == {0.1, -1.0}  # the alternative's scores (-1: no verdict marks)
    assert low.calls == chosen["value_calls"] > 0


class _Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs: list[tuple[str, list[str]]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: Any, *, run_id: UUID, tags: list[str] | None = None, **kw: Any
    ) -> None:
        self.runs.append((str(kw.get("name")), list(tags or [])))


async def test_model_calls_are_named_and_tagged_and_value_tokens_stay_out_of_the_messages_stream() -> None:
    runs = _Runs()
    graph = create_search_graph(TreeEnv(), LLMPolicy(_policy_model()), ValueModel(_valuer())).compile()
    messages = [
        chunk
        async for chunk in graph.astream({"task_id": "t0"}, {"callbacks": [runs]}, context=CTX, stream_mode="messages")
    ]
    names = {name for name, _ in runs.runs}
    assert names == {"stl:policy", "stl:value"}
    for name, tags in runs.runs:
        assert {name, "tree"} <= set(tags)
        assert ("nostream" in tags) == (name == "stl:value")
    assert messages, "the policy's messages are streamed"
    for message, metadata in messages:
        assert "Action:" in message.content and "correctness score" not in message.content
        assert "stl:policy" in metadata["tags"]
    streaming = create_search_graph(
        TreeEnv(), LLMPolicy(_policy_model()), ValueModel(_valuer(), stream_tokens=True)
    ).compile()
    both = [m async for m, _ in streaming.astream({"task_id": "t0"}, context=CTX, stream_mode="messages")]
    assert any("correctness score" in m.content for m in both)


def test_an_unknown_context_key_is_a_clear_error() -> None:
    graph = create_search_graph(TreeEnv(), EnumeratePolicy(), ValueModel(_valuer())).compile()
    with pytest.raises(ValueError, match=r"unknown search context keys \['widht'\]; known: .*'width'"):
        graph.invoke({"task_id": "t0"}, context={"widht": 3})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown search context keys"):
        SearchContext(bogus=1)  # type: ignore[call-arg]
    assert graph.invoke({"task_id": "t0"}, context={"width": 2, "depth": 2, "n_rollouts": 1})["result"]["trajectory"]


async def test_sync_tool_and_runnable_calls_work_inside_a_running_event_loop() -> None:
    """A notebook cell runs in an event loop; the value tool's and the value Runnable's sync paths must not need
    one of their own."""
    env = TreeEnv()
    root = env.reset("t0")
    value = ValueModel(_valuer())
    tool = as_value_tool(value, env, lambda: (env.observation(root), [], root))
    scored = json.loads(tool.invoke({"actions": ["b", "a", "zz"]}))
    assert [s["action"] for s in scored] == ["a", "b", "zz"]
    assert scored[-1]["invalid"]
    assert json.loads(await tool.ainvoke({"actions": ["b", "a", "zz"]})) == scored
    runnable = value_runnable(value, "tree")
    states = [{"trajectory": "at /", "action": "a", "observation": "at /a"}]
    assert runnable.invoke(states) == await runnable.ainvoke(states)
    assert runnable.invoke(states)[0]["value"] == pytest.approx(0.8)


def test_twin_nodes_use_langgraphs_runnable_callable() -> None:
    """The one LangGraph internal the graph imports: fails here, loudly, if an upgrade moves or changes it."""

    def f(x: int) -> int:
        return x + 1

    async def af(x: int) -> int:
        return x + 2

    node = twin(f, af)
    assert node.invoke(1) == 2
    import asyncio

    assert asyncio.run(node.ainvoke(1)) == 3


def test_token_usage_callback_sees_wrapped_models_in_sync_runs() -> None:
    usage = TokenUsageCallback()
    policy = LLMPolicy(_policy_model().with_retry())
    graph = create_search_graph(TreeEnv(), policy, ValueModel(_valuer().with_retry())).compile()
    result = graph.invoke({"task_id": "t0"}, {"callbacks": [usage]}, context=CTX)["result"]
    counted = usage.as_dict()
    assert counted["pol"]["calls"] == result["policy_calls"]
    assert counted["val"]["calls"] == result["value_calls"]


async def test_an_async_only_policy_runs_in_a_sync_graph_invoked_inside_a_running_loop() -> None:
    """A user's policy with just ``async def propose`` (no steps): ``graph.invoke`` from a notebook cell (a running
    loop on this thread) runs it on a private loop in a worker thread; same result as ``ainvoke``."""
    from langgraph_stl.search import PolicyInput, Proposals

    class AsyncOnlyPolicy:
        async def propose(self, env: Any, inp: PolicyInput, *, config: Any = None) -> Proposals:
            return Proposals(list(await env.alegal_actions(inp.state) or []))

    graph = create_search_graph(TreeEnv(), AsyncOnlyPolicy(), ValueModel(_valuer())).compile()
    synced = graph.invoke({"task_id": "t0"}, context=CTX)["result"]
    assert synced == (await graph.ainvoke({"task_id": "t0"}, context=CTX))["result"]
    assert synced["trajectory"] == ["a", "b", "stop"]
