"""The LangChain toolkit: a whole purchase through the tools in Chromium, and navigation locked to the shop."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from langgraph_stl.envs.webshop.browser_env import BrowserRunner
from langgraph_stl.envs.webshop.server import RunningServer, WebShopSite, start_server
from langgraph_stl.envs.webshop.tools import WebShopToolkit
from tests._webshop_fixtures import shared_browser, target_of, webshop_site

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def site() -> WebShopSite:
    return webshop_site("synthetic", True)


@pytest.fixture(scope="module")
def server(site: WebShopSite) -> Iterator[RunningServer]:
    with start_server(site) as running:
        yield running


def runner() -> BrowserRunner:
    return shared_browser()


async def test_purchase_through_the_tools(server: RunningServer, site: WebShopSite) -> None:
    toolkit = WebShopToolkit(server.url, "fixed_6", browser=runner())
    try:
        tools = {tool.name: tool for tool in toolkit.get_tools()}
        assert set(tools) == {"search", "click"}
        assert set(tools["search"].args) == {"query"} and set(tools["click"].args) == {"element"}
        asin, options = target_of(site, 6)
        assert site.goals[6]["instruction_text"] in await toolkit.aobservation()
        # the first call goes through a LangGraph graph's ToolNode, as an agent's tool call would
        from langchain_core.messages import AIMessage
        from langgraph.graph import END, START, MessagesState, StateGraph
        from langgraph.prebuilt import ToolNode

        graph = StateGraph(MessagesState)
        graph.add_node("tools", ToolNode(list(tools.values())))
        graph.add_edge(START, "tools")
        graph.add_edge("tools", END)
        call = {"name": "search", "args": {"query": site.by_asin[asin]["Title"]}, "id": "call-1", "type": "tool_call"}
        out = await graph.compile().ainvoke({"messages": [AIMessage("", tool_calls=[call])]})
        results = out["messages"][-1].content
        assert out["messages"][-1].tool_call_id == "call-1" and f"\n[{asin}] " in results
        item = await tools["click"].ainvoke({"element": asin})
        assert "[Buy Now]" in item
        for value in options.values():
            assert await tools["click"].ainvoke({"element": value}) == f"You have clicked {value}."
        assert toolkit.state is not None and toolkit.state["options"] == options
        done = await tools["click"].ainvoke({"element": "Buy Now"})
        assert done == "Your score (min 0.0, max 1.0): 1.0"
        assert toolkit.reward == 1.0
    finally:
        toolkit.close()


def test_invalid_tool_calls_explain_themselves(server: RunningServer) -> None:
    toolkit = WebShopToolkit(server.url, "fixed_2", browser=runner())
    try:
        search, click = toolkit.get_tools()
        answer = click.invoke({"element": "Buy Now"})  # the sync path works too
        assert answer.startswith("Invalid action: there is no 'Buy Now' to click")
        assert "[Search]" in answer  # the current page comes along
        search.invoke({"query": "tea"})
        assert search.invoke({"query": "coffee"}).startswith("Invalid action: search is only possible")
    finally:
        toolkit.close()


@pytest.fixture()
def rogue_shop() -> Iterator[str]:
    """A loopback 'shop' whose search form posts to another origin (a second loopback port)."""
    elsewhere = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    target = f"http://127.0.0.1:{elsewhere.server_address[1]}/steal"
    page = (
        "<html><body><div id='instruction-text'><h4>Instruction: <br>buy</h4></div>"
        f"<form method='post' action='{target}'><input id='search_input' name='search_query'>"
        "<button class='btn btn-success' type='submit'>Search</button></form></body></html>"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    shop = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (shop, elsewhere)]
    for thread in threads:
        thread.start()
    yield f"http://127.0.0.1:{shop.server_address[1]}"
    for s in (shop, elsewhere):
        s.shutdown()
        s.server_close()


async def test_navigation_off_origin_is_refused(rogue_shop: str) -> None:
    toolkit = WebShopToolkit(rogue_shop, "s1", browser=runner(), timeout_ms=5000)
    try:
        (search, _click) = toolkit.get_tools()
        answer = await search.ainvoke({"query": "anything"})
        assert answer.startswith("Refused: search[anything] would leave " + rogue_shop)
        assert "/steal" in answer
        assert toolkit.state is not None and toolkit.state["url"].startswith(rogue_shop)
        assert "[Search]" in await toolkit.aobservation()
    finally:
        toolkit.close()
