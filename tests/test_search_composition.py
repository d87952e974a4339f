"""The value model composed into a prebuilt LangGraph agent as a tool, and as a Runnable."""

from __future__ import annotations

import json
import warnings
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool

from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.search import ValueModel
from langgraph_stl.search.composition import as_value_tool, value_runnable
from tests.fakes import ScriptedChatModel, ToolCallingFake, fixed, game24_oracle, score


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
