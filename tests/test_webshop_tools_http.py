"""The HTTP WebShop toolkit: the browser toolkit's tools without a browser, a purchase through an agent's ToolNode,
invalid calls explained, sync calls inside a running event loop, and the value tool on its session."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
from langgraph_stl.envs.webshop.server import RunningServer, WebShopSite, start_server
from langgraph_stl.envs.webshop.tools import WebShopHttpToolkit, WebShopToolkit
from langgraph_stl.search import ValueModel
from langgraph_stl.search.composition import as_value_tool
from tests._webshop_fixtures import target_of, webshop_site
from tests.fakes import ScriptedChatModel, by_keyword, score


@pytest.fixture(scope="module")
def site() -> WebShopSite:
    return webshop_site("synthetic", True)


@pytest.fixture(scope="module")
def server(site: WebShopSite) -> Iterator[RunningServer]:
    with start_server(site) as running:
        yield running


def test_same_tools_as_the_browser_toolkit(server: RunningServer) -> None:
    http = WebShopHttpToolkit(server.url, "fixed_0")
    browser = WebShopToolkit(server.url, "fixed_0")  # starts no browser until a tool runs
    try:

        def spec(tools: list[object]) -> list[tuple[object, ...]]:
            return [(t.name, t.description, t.args) for t in tools]  # type: ignore[attr-defined]

        assert spec(http.get_tools()) == spec(browser.get_tools())
    finally:
        browser.close()
        http.close()


async def test_purchase_through_an_agents_tool_node(server: RunningServer, site: WebShopSite) -> None:
    toolkit = WebShopHttpToolkit(server.url, "fixed_6")
    try:
        tools = {tool.name: tool for tool in toolkit.get_tools()}
        asin, options = target_of(site, 6)
        assert site.goals[6]["instruction_text"] in await toolkit.aobservation()
        graph = StateGraph(MessagesState)
        graph.add_node("tools", ToolNode(list(tools.values())))
        graph.add_edge(START, "tools")
        graph.add_edge("tools", END)
        call = {"name": "search", "args": {"query": site.by_asin[asin]["Title"]}, "id": "call-1", "type": "tool_call"}
        out = await graph.compile().ainvoke({"messages": [AIMessage("", tool_calls=[call])]})
        assert out["messages"][-1].tool_call_id == "call-1" and f"\n[{asin}] " in out["messages"][-1].content
        assert "[Buy Now]" in await tools["click"].ainvoke({"element": asin})
        for value in options.values():
            assert await tools["click"].ainvoke({"element": value}) == f"You have clicked {value}."
        assert await tools["click"].ainvoke({"element": "Buy Now"}) == "Your score (min 0.0, max 1.0): 1.0"
        assert toolkit.reward == 1.0
        assert toolkit.path[0][0].startswith("search[")
    finally:
        toolkit.close()


async def test_sync_calls_inside_a_running_loop_and_invalid_calls_explain_themselves(server: RunningServer) -> None:
    """A notebook cell runs in an event loop: the sync tools still work there."""
    toolkit = WebShopHttpToolkit(server.url, "fixed_2")
    try:
        search, click = toolkit.get_tools()
        answer = click.invoke({"element": "Buy Now"})
        assert answer.startswith("Invalid action: there is no 'Buy Now' to click")
        assert "[Search]" in answer  # the current page comes along
        assert "[Next >]" in search.invoke({"query": "tea"})
        assert search.invoke({"query": "coffee"}).startswith("Invalid action: search is only possible")
        assert len(toolkit.path) == 1
    finally:
        toolkit.close()


async def test_the_value_tool_scores_actions_from_the_session(server: RunningServer, site: WebShopSite) -> None:
    env = WebShopHttpEnv(server.url)
    toolkit = WebShopHttpToolkit(session_id="fixed_6", env=env)
    asin, _ = target_of(site, 6)
    value = ValueModel(ScriptedChatModel(responder=by_keyword([(asin, score(9))], score(2))))
    tool = as_value_tool(value, env, toolkit.session)
    try:
        toolkit.act(f"search[{site.by_asin[asin]['Title']}]")
        scored = json.loads(tool.invoke({"actions": ["click[Back to Search]", f"click[{asin}]"]}))
        assert scored[0]["action"] == f"click[{asin}]" and scored[0]["value"] == pytest.approx(0.9)
        assert json.loads(await tool.ainvoke({"actions": [f"click[{asin}]"]}))[0]["value"] == pytest.approx(0.9)
    finally:
        toolkit.close()
        env.close()
