"""The value model composed into a prebuilt LangGraph agent as a tool, and as a Runnable."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool

from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.search import ValueModel
from langgraph_stl.search.composition import as_value_tool, value_runnable
from tests.fakes import ScriptedChatModel, ToolCallingFake, by_keyword, fixed, game24_oracle, score


def _prebuilt_agent(model: Any, tools: list[Any]) -> Any:
    try:
        from langchain.agents import create_agent  # type: ignore[import-not-found]

        return create_agent(model, tools)
    except ImportError:
        from langgraph.prebuilt import create_react_agent

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return create_react_agent(model, tools)


async def test_react_agent_uses_game24_tools_and_the_value_tool_to_solve_a_puzzle() -> None:
    env = Game24Env()
    session: dict[str, Any] = {"state": env.reset("900"), "path": []}
    root_obs = env.observation(session["state"])

    @tool
    def legal_moves() -> list[str]:
        """All legal next moves from the current numbers."""
        return [m.split(" (left")[0] for m in env.legal_actions(session["state"])]

    @tool
    def move(step: str) -> str:
        """Combine two numbers, e.g. '4 + 5 = 9'. Returns the new state."""
        result = env.step(session["state"], step)
        if not result.valid:
            return result.message
        session["state"] = result.state
        session["path"].append((step, env.observation(result.state)))
        return env.observation(result.state)

    value = ValueModel(ScriptedChatModel(responder=game24_oracle))
    score_tool = as_value_tool(value, env, lambda: (root_obs, list(session["path"]), session["state"]))

    def script(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        n = len(messages)
        if isinstance(last, ToolMessage) and last.name == "legal_moves":
            moves = json.loads(last.content) if isinstance(last.content, str) else last.content
            return AIMessage("", tool_calls=[{"name": "score_actions", "args": {"actions": moves}, "id": f"s{n}"}])
        if isinstance(last, ToolMessage) and last.name == "score_actions":
            best = json.loads(str(last.content))[0]["action"]
            return AIMessage("", tool_calls=[{"name": "move", "args": {"step": best}, "id": f"m{n}"}])
        if isinstance(last, ToolMessage) and last.name == "move" and "Answer:" in str(last.content):
            return AIMessage(str(last.content).split("Answer: ")[1])
        return AIMessage("", tool_calls=[{"name": "legal_moves", "args": {}, "id": f"l{n}"}])

    model = ToolCallingFake(script=script)
    agent = _prebuilt_agent(model, [legal_moves, move, score_tool])
    out = await agent.ainvoke({"messages": [("user", "Solve 4 5 6 10")]}, {"recursion_limit": 50})
    assert set(model.tool_names) == {"legal_moves", "move", "score_actions"}
    assert env.is_terminal(session["state"]) and env.true_reward(session["state"]) == 1.0
    assert out["messages"][-1].content.endswith("= 24")
    scored = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.name == "score_actions"]
    assert len(scored) == 3
    first = json.loads(str(scored[0].content))
    assert first[0]["value"] == 1.0 and first[-1]["value"] <= first[0]["value"]


async def test_value_tool_reports_invalid_actions_and_runnable_batches_states() -> None:
    env = Game24Env()
    state = env.reset("900")
    value = ValueModel(ScriptedChatModel(responder=fixed(score(6))))
    tool_ = as_value_tool(value, env, lambda: (env.observation(state), [], state))
    out = json.loads(await tool_.ainvoke({"actions": ["4 + 5 = 9", "4 * 13 = 52"]}))
    assert out[0] == {"action": "4 + 5 = 9", "value": 0.6, "terminal": False, "rationale": "Reflection: looks fine."}
    assert out[1]["action"] == "4 * 13 = 52" and "13 is not among" in out[1]["invalid"]
    runnable = value_runnable(value, "game24")
    states = [{"trajectory": "t", "action": a, "observation": "o"} for a in ("x", "y")]
    assert await runnable.ainvoke(states) == [{"value": 0.6, "rationale": "Reflection: looks fine."}] * 2


def test_value_runnable_sync_path() -> None:
    value = ValueModel(ScriptedChatModel(responder=fixed(score(4))))
    assert value_runnable(value, "game24").invoke([{"trajectory": "t", "action": "a", "observation": "o"}]) == [
        {"value": 0.4, "rationale": "Reflection: looks fine."}
    ]


@pytest.mark.slow
@pytest.mark.browser
async def test_react_agent_shops_with_the_webshop_tools_and_follows_the_value_tool() -> None:
    """A prebuilt agent drives real Chromium through ``WebShopToolkit`` and lets the value tool pick the product.

    The agent's script clicks whatever ``score_actions`` ranks first; the value model scores the goal's product 8
    and every other candidate 3, and the target is not the first search result, so only following the tool's
    ranking leads to the right purchase (reward 1.0 on the done page).
    """
    from langgraph_stl.envs.webshop.browser_env import WebShopBrowserEnv
    from langgraph_stl.envs.webshop.server import start_server
    from langgraph_stl.envs.webshop.tools import WebShopToolkit
    from tests._webshop_fixtures import shared_browser, target_of, webshop_site

    site = webshop_site("synthetic", True)
    goal = site.goals[7]  # its query lists the target 5th of the 5 results shown; its options reach reward 1.0
    asin, options = target_of(site, 7)
    browser = shared_browser()
    with start_server(site) as server:
        toolkit = WebShopToolkit(server.url, "fixed_7", browser=browser)
        sandbox = WebShopBrowserEnv(server.url, browser=browser)
        try:
            instruction = await toolkit.aobservation()
            assert goal["instruction_text"] in instruction
            value_model = ScriptedChatModel(responder=by_keyword([(f"click[{asin}]", score(8))], score(3)))
            score_tool = as_value_tool(ValueModel(value_model), sandbox, toolkit.session)
            candidates: list[str] = []

            def script(messages: list[BaseMessage]) -> AIMessage:
                """The agent's policy: search, ask the value tool about every result, click its favourite, then
                pick the goal's options and buy."""
                last, n = messages[-1], len(messages)

                def call(name: str, **args: Any) -> AIMessage:
                    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"{name}-{n}"}])

                if not isinstance(last, ToolMessage):
                    return call("search", query=goal["query"])
                page = str(last.content)
                if last.name == "search":
                    candidates.extend(f"click[{a}]" for a in re.findall(r"^\[(B[0-9A-Z]{9})\] ?$", page, re.M))
                    return call("score_actions", actions=candidates)
                if last.name == "score_actions":
                    best = json.loads(page)[0]["action"]
                    return call("click", element=best.removeprefix("click[").removesuffix("]"))
                if page.startswith("Your score"):
                    return AIMessage(f"Bought it. {page}")
                chosen = [m.content for m in messages if isinstance(m, ToolMessage) and m.name == "click"]
                for option in options.values():
                    if f"You have clicked {option}." not in chosen:
                        return call("click", element=option)
                return call("click", element="Buy Now")

            agent = _prebuilt_agent(ToolCallingFake(script=script), [*toolkit.get_tools(), score_tool])
            out = await agent.ainvoke({"messages": [("user", goal["instruction_text"])]}, {"recursion_limit": 30})
        finally:
            sandbox.close()
            toolkit.close()

    assert len(candidates) >= 3 and candidates[0] != f"click[{asin}]", "the target must not win by position alone"
    scored = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.name == "score_actions"]
    ranking = json.loads(str(scored[0].content))
    assert {r["action"] for r in ranking} == set(candidates)  # every candidate was stepped in the sandbox
    assert ranking[0] == {**ranking[0], "action": f"click[{asin}]", "value": 0.8, "terminal": False}
    assert {r["value"] for r in ranking[1:]} == {0.3}
    assert value_model.calls == len(candidates)
    assert all(f"search[{goal['query']}]" in p for p in value_model.prompts)  # the agent's path reached the value model
    clicks = [m for m in out["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    assert [c.tool_calls[0]["args"] for c in clicks if c.tool_calls[0]["name"] == "click"] == [
        {"element": asin},
        *({"element": v} for v in options.values()),
        {"element": "Buy Now"},
    ]
    assert toolkit.state is not None and toolkit.state["kind"] == "done" and toolkit.state["asin"] == asin
    assert toolkit.reward == 1.0 and out["messages"][-1].content == "Bought it. Your score (min 0.0, max 1.0): 1.0"
    assert [a for a, _ in toolkit.path] == [
        f"search[{goal['query']}]",
        f"click[{asin}]",
        *(f"click[{v}]" for v in options.values()),
        "click[Buy Now]",
    ]
