"""Scripted fakes shared by the test suites: chat models whose replies are functions of the prompt, a tool-calling
fake for agents, and a tiny deterministic environment.

Replies depend on the prompt (and how often that prompt was seen), never on call order, so concurrent searches
and resumed runs see the same answers.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from langgraph_stl.envs.base import Environment, InvalidTaskError, State, StepResult

Responder = Callable[[str, int], str]
"""(prompt text, how many times this prompt was answered before) -> reply."""


class ScriptedChatModel(BaseChatModel):
    """A chat model answering ``responder(prompt, k)``; optional latency and injected failures.

    ``fail_first``: the first N calls raise ``fail_with`` (default ``ConnectionError``, a transient error the
    graph's retry policy retries; a ``TypeError`` it must not). ``latency``: seconds per call (``asyncio.sleep`` on
    the async path, so concurrent calls overlap like a real server).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responder: Any
    name_: str = "fake"
    latency: float = 0.0
    fail_first: int = 0
    fail_with: Any = ConnectionError
    _seen: Counter[str] = PrivateAttr(default_factory=Counter)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _calls: int = PrivateAttr(default=0)
    _prompts: list[str] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def prompts(self) -> list[str]:
        """Every prompt answered, in arrival order."""
        return self._prompts

    def _reply(self, messages: list[BaseMessage]) -> ChatResult:
        prompt = "\n".join(str(m.content) for m in messages)
        with self._lock:
            self._calls += 1
            if self._calls <= self.fail_first:
                raise self.fail_with(f"injected failure {self._calls}")
            k = self._seen[prompt]
            self._seen[prompt] += 1
            self._prompts.append(prompt)
        text = self.responder(prompt, k)
        usage = {"input_tokens": len(prompt.split()), "output_tokens": len(text.split())}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        message = AIMessage(content=text, usage_metadata=usage, response_metadata={"model_name": self.name_})  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": self.name_})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            time.sleep(self.latency)
        return self._reply(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._reply(messages)


def fixed(text: str) -> Responder:
    """Always the same reply."""
    return lambda prompt, k: text


def by_keyword(rules: Sequence[tuple[str, str | Sequence[str]]], default: str) -> Responder:
    """First rule whose keyword occurs in the prompt's *last line block* (the child part) wins.

    A rule's reply may be a list: the k-th time the same prompt is asked it returns item ``k % len``.
    """

    def respond(prompt: str, k: int) -> str:
        tail = prompt.split("Current Action:")[-1]
        for keyword, reply in rules:
            if keyword in tail:
                return reply if isinstance(reply, str) else reply[k % len(reply)]
        return default

    return respond


def score(x: float) -> str:
    """A base-prompt value reply with score ``x`` (1–10 scale)."""
    return f"Reflection: looks fine.\nThus the correctness score is {x:g}"


def stl_score(x: float) -> str:
    """A fine-tuned-format value reply with score ``x`` (1–10 scale)."""
    return f"I will evaluate the state.\nReflection: ok.\nThus the correctness score is {x:.2f} / 10.00."


# ------------------------------------------------------------------------------------------------------------------


class TreeEnv(Environment):
    """A deterministic toy environment: from any state the actions ``a``..``<branching>`` append a letter; the
    episode ends after ``depth`` actions or with ``stop``. ``true_reward`` is 1 for the path ``good`` (a list of
    actions) and 0 otherwise, or raises when ``forbid_true_reward`` (to prove search never reads it).
    """

    def __init__(
        self,
        *,
        name: str = "tree",
        branching: int = 3,
        depth: int = 3,
        good: Sequence[str] = ("a", "b", "stop"),
        with_stop: bool = True,
        forbid_true_reward: bool = False,
    ) -> None:
        self.name = name
        self.letters = [chr(ord("a") + i) for i in range(branching)]
        self.depth = depth
        self.good = list(good)
        self.with_stop = with_stop
        self.forbid_true_reward = forbid_true_reward
        self.true_reward_calls = 0

    def reset(self, task_id: str) -> State:
        if not task_id.startswith("t"):
            raise InvalidTaskError(f"unknown task {task_id!r} (tasks look like 't0')")
        return {"task": task_id, "path": []}

    def step(self, state: State, action: str) -> StepResult:
        if self.is_terminal(state) or action not in self._actions(state):
            return StepResult(state, valid=False, message=f"invalid action {action!r}")
        return StepResult({"task": state["task"], "path": [*state["path"], action]})

    def _actions(self, state: State) -> list[str]:
        return [*self.letters, *(["stop"] if self.with_stop else [])]

    def legal_actions(self, state: State) -> list[str]:
        return [] if self.is_terminal(state) else self._actions(state)

    def observation(self, state: State) -> str:
        return f"at /{'/'.join(state['path'])}"

    def instruction(self, state: State) -> str:
        return f"Task {state['task']}: reach /{'/'.join(self.good)}"

    def is_terminal(self, state: State) -> bool:
        return len(state["path"]) >= self.depth or (bool(state["path"]) and state["path"][-1] == "stop")

    def true_reward(self, state: State) -> float:
        self.true_reward_calls += 1
        if self.forbid_true_reward:
            raise AssertionError("true_reward must not be called during search")
        return 1.0 if state["path"] == self.good else 0.0


def path_value_responder(values: dict[str, float], default: float = 1.0, *, stl: bool = False) -> Responder:
    """Value replies by the child's path: the prompt's ``Current Observation: at /a/b`` line selects the score.

    Terminal children (``Current Observation: Terminal State``) are looked up by ``path + "!"`` using the trajectory
    and current action.
    """
    fmt = stl_score if stl else score

    def respond(prompt: str, k: int) -> str:
        tail = prompt.split("Current Action:")[-1]
        action = tail.split("\n")[0].strip()
        obs = tail.split("Current Observation:")[-1].strip().split("\n")[0].strip()
        if obs == "Terminal State":
            at = [line for line in prompt.split("\n") if line.startswith("Observation: at ") or line.startswith("at /")]
            base = at[-1].split("at ", 1)[1].strip() if at else "/"
            key = (base.rstrip("/") + "/" + action) + "!"
            x = values.get(key, default)
            if stl:
                return stl_score(x)
            return f"1. Goal reached: [{'SUCCESS' if x >= 5 else 'FAILURE'}]\nThus the correctness score is {x:g}"
        key = obs.removeprefix("at ")
        return fmt(values.get(key, default))

    return respond


class FakeShopEnv(Environment):
    """A miniature WebShop with LATS-style observations: search page → 7 results (5 products, Back, Next) → item
    page with color options → Buy Now. ``true_reward`` is 1 for product ``B002`` bought in blue."""

    name = "webshop"
    PRODUCTS = ("B001", "B002", "B003", "B004", "B005")

    def __init__(self, *, forbid_true_reward: bool = False) -> None:
        self.forbid_true_reward = forbid_true_reward

    def reset(self, task_id: str) -> State:
        return {"page": "search", "asin": None, "color": None, "instruction": "i want blue shoes under 20 dollars"}

    def legal_actions(self, state: State) -> list[str] | None:
        page = state["page"]
        if page == "search":
            return None
        if page == "results":
            return ["click[Back to Search]", "click[Next >]", *(f"click[{p}]" for p in self.PRODUCTS)]
        if page == "item":
            return ["click[Back to Search]", "click[< Prev]", "click[red]", "click[blue]", "click[Buy Now]"]
        return []

    def step(self, state: State, action: str) -> StepResult:
        if state["page"] == "search" and action.startswith("search[") and action.endswith("]") and len(action) > 8:
            return StepResult({**state, "page": "results"})
        if action not in (self.legal_actions(state) or []):
            return StepResult(state, valid=False, message=f"Invalid action {action!r}")
        target = action[len("click[") : -1]
        if target in self.PRODUCTS:
            return StepResult({**state, "page": "item", "asin": target})
        if target in ("red", "blue"):
            return StepResult({**state, "color": target})
        if target == "Buy Now":
            return StepResult({**state, "page": "done"})
        if target == "Back to Search":
            return StepResult({**state, "page": "search", "asin": None, "color": None})
        return StepResult(state)  # Next >, < Prev: same page for this toy shop

    def observation(self, state: State) -> str:
        page = state["page"]
        if page == "search":
            return f"WebShop \nInstruction:  \n{state['instruction']} \n[Search] "
        if page == "results":
            items = "".join(f"\n[{p}] \nShoe {p} \n$1{i}.00 " for i, p in enumerate(self.PRODUCTS))
            return f"\n[Back to Search] \nPage 1 (Total results: 50) \n[Next >] {items}"
        if page == "item":
            picked = state["color"] or ""
            colors = "".join(f"[[{c}]]" if c == picked else f"[{c}]" for c in ("red", "blue"))
            return f"\n[Back to Search] \n[< Prev] \ncolor {colors}\nShoe {state['asin']} \n[Buy Now] "
        return "Thank you for shopping with us!"

    def instruction(self, state: State) -> str:
        return str(state["instruction"])

    def is_terminal(self, state: State) -> bool:
        return bool(state["page"] == "done")

    def true_reward(self, state: State) -> float:
        if self.forbid_true_reward:
            raise AssertionError("true_reward must not be called during search")
        return 1.0 if state["page"] == "done" and state["asin"] == "B002" and state["color"] == "blue" else 0.0


def solvable_24(numbers: list[Fraction]) -> bool:
    if len(numbers) == 1:
        return numbers[0] == 24
    for i, j in itertools.permutations(range(len(numbers)), 2):
        rest = [n for k, n in enumerate(numbers) if k not in (i, j)]
        a, b = numbers[i], numbers[j]
        options = [a + b, a - b, a * b] + ([a / b] if b else [])
        if any(solvable_24([*rest, c]) for c in options):
            return True
    return False


def game24_oracle(prompt: str, k: int) -> str:
    """A value model that knows the game: 10 when the numbers left can still make 24, else 1."""
    tail = prompt.split("Current Action:")[-1]
    if "Terminal State" in tail:
        last = tail.split("\n")[0].split("(left:")[0].strip()
        return f"1. Final number: [{'SUCCESS' if last.endswith('= 24') else 'FAILURE'}]"
    left = [line for line in tail.split("\n") if line.startswith("Left:")][-1]
    numbers = [Fraction(t) for t in left.removeprefix("Left:").split()]
    return score(10 if solvable_24(numbers) else 1)


class ToolCallingFake(BaseChatModel):
    """A tool-calling chat model whose next message is ``script(messages)`` (an ``AIMessage`` with tool calls or
    a final answer); ``bind_tools`` records the tool names and returns the model itself."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Any
    tool_names: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "tool-calling-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.tool_names = [getattr(t, "name", getattr(t, "__name__", "")) for t in tools]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.script(messages))])


def game24_oracle_model() -> ScriptedChatModel:
    """Zero-argument factory for ``py:tests.fakes:game24_oracle_model`` specs (Studio and CLI tests)."""
    return ScriptedChatModel(responder=game24_oracle, name_="oracle")
