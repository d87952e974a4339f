"""Scripted fakes shared by the test suites: chat models whose replies are functions of the prompt, a tool-calling
fake for agents, and a tiny deterministic environment.

Replies depend on the prompt (and how often that prompt was seen), never on call order, so concurrent searches
and resumed runs see the same answers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

from langgraph_stl.envs.base import Environment, InvalidTaskError, State, StepResult

Responder = Callable[[str, int], str]
"""(prompt text, how many times this prompt was answered before) -> reply."""


class ScriptedChatModel(BaseChatModel):
    """A chat model answering ``responder(prompt, k)``; optional latency and injected failures.

    ``fail_first``: the first N calls raise ``RuntimeError`` (to test retries). ``latency``: seconds per call
    (``asyncio.sleep`` on the async path, so concurrent calls overlap like a real server).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responder: Any
    name_: str = "fake"
    latency: float = 0.0
    fail_first: int = 0
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
                raise RuntimeError(f"injected failure {self._calls}")
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
