"""Policies: where candidate actions come from.

:class:`LLMPolicy` follows the reference per environment. WebShop: 2·width sampled ``search[...]`` queries at the
root (2-shot Rationale/Action prompt, stop "Observation"); later, up to ``width`` distinct clickables chosen one
call at a time with "Possible Next Actions" / "Actions Not Allowed" lists (3 retries per pick, then a seeded random
pick), plus ``click[Buy Now]`` whenever the page has it. Game of 24: a ToT "propose" prompt whose step lines are
parsed and checked against the legal moves. :class:`EnumeratePolicy` proposes legal actions programmatically.

Policies only propose; the search steps each action in the environment and drops (and counts) the invalid ones.
The built-in policies are written once as generators of their I/O (:mod:`.twins`), so they run in sync and async
graphs alike.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig

from langgraph_stl.envs.base import Environment
from langgraph_stl.search import prompts as P
from langgraph_stl.search.calls import CallStyle, ChatModelLike, Generate, role_config
from langgraph_stl.search.twins import AsyncOnly, Steps, Twin, adrive, drive

BUY_NOW = "click[Buy Now]"


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """What a policy sees: the state, its trajectory, how many proposals, and whether only terminal ones count."""

    env_name: str
    state: dict[str, Any]
    observation: str
    root_observation: str
    instruction: str
    path: tuple[tuple[str, str], ...]
    depth: int
    n: int
    last_step: bool = False
    seed: int = 0
    max_retries: int = 3
    """Re-asks after an unusable reply (WebShop: per clickable pick, as the reference), not transport retries."""

    @property
    def rng(self) -> random.Random:
        """A generator seeded by the run seed and the path, so a node's proposals never depend on run order."""
        return random.Random(f"{self.seed}|" + "|".join(a for a, _ in self.path))


@dataclass(slots=True)
class Proposals:
    """Distinct proposed actions in order, plus unusable proposals dropped and model calls made."""

    actions: list[str] = field(default_factory=list)
    dropped: int = 0
    calls: int = 0

    def add(self, action: str) -> bool:
        """Append ``action`` unless already present; returns whether it was new."""
        if action in self.actions:
            return False
        self.actions.append(action)
        return True


class Policy(Protocol):
    """Anything that proposes next actions for a state. Subclass :class:`SteppedPolicy` to run in sync graphs
    without a private event loop; a plain async ``propose`` also works everywhere."""

    async def propose(
        self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None
    ) -> Proposals: ...


class SteppedPolicy(ABC):
    """A policy written once as :meth:`steps` (a generator yielding its I/O, see :mod:`.twins`), with both an
    async :meth:`propose` and a sync :meth:`propose_sync`."""

    @abstractmethod
    def steps(self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None) -> Steps[Proposals]:
        """Propose actions for ``inp``, yielding environment and model calls."""

    async def propose(self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None) -> Proposals:
        return await adrive(self.steps(env, inp, config=config))

    def propose_sync(self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None) -> Proposals:
        return drive(self.steps(env, inp, config=config))


def proposal_steps(
    policy: Policy, env: Environment, inp: PolicyInput, config: RunnableConfig | None
) -> Steps[Proposals]:
    """A policy's proposals as steps: its own for a :class:`SteppedPolicy`, else its async ``propose`` (run on a
    private loop by the sync driver)."""
    if isinstance(policy, SteppedPolicy):
        return (yield from policy.steps(env, inp, config=config))
    proposals: Proposals = yield AsyncOnly(lambda: policy.propose(env, inp, config=config))
    return proposals


def legal_actions(env: Environment, state: dict[str, Any]) -> Twin[list[str] | None]:
    """The call that lists ``state``'s legal actions."""
    return Twin(env.legal_actions, env.alegal_actions, state)


_ASIN = re.compile(r"[A-Z0-9]{10}")


def webshop_clickables(actions: list[str] | None, observation: str) -> list[str]:
    """The page's clickables as actions, without pure page numbers, and product links only where the observation
    shows them (the reference's `extract_actions` reads the observation: a results page links 10 products, the
    LATS rendering shows 5). Other clickables stay: after an option click the observation is just "You have
    clicked X." while the item page's options remain clickable."""
    out = []
    for action in actions or []:
        match = re.fullmatch(r"click\[(.*)\]", action, flags=re.DOTALL)
        if not match or match.group(1).strip().isdigit():
            continue
        if _ASIN.fullmatch(match.group(1)) and f"[{match.group(1)}]" not in observation:
            continue
        out.append(action)
    return out


class EnumeratePolicy(SteppedPolicy):
    """Legal actions in the environment's order, optionally shuffled (seeded per node) and capped at ``n``.

    WebShop's search page has no finite action set; there the instruction itself is the one query. On its other
    pages ``Buy Now`` comes first and the navigation buttons (which the value rules score −1) last, so the cap
    drops navigation, never the purchase.
    """

    def __init__(self, *, shuffle: bool = False, cap: bool = True) -> None:
        self.shuffle = shuffle
        self.cap = cap

    def steps(self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None) -> Steps[Proposals]:
        legal = yield legal_actions(env, inp.state)
        kind = P.env_kind(inp.env_name)
        if kind == "webshop":
            legal = webshop_clickables(legal, inp.observation)
            if not legal:
                return Proposals([f"search[{P.webshop_instruction(inp.instruction)}]"])
            if inp.last_step:
                legal = [a for a in legal if a == BUY_NOW]
        if legal is None:
            raise ValueError(f"EnumeratePolicy needs legal actions, but {inp.env_name} has an open action space here")
        actions = list(legal)
        if self.shuffle:
            inp.rng.shuffle(actions)
        if kind == "webshop":  # stable: the page's (or the shuffled) order within each group
            actions.sort(key=lambda a: 0 if a == BUY_NOW else 2 if P.webshop_rule_value(a, ()) is not None else 1)
        return Proposals(actions[: inp.n] if self.cap else actions)


class LLMPolicy(SteppedPolicy):
    """A chat model (any chat-model Runnable) proposing actions with the per-environment prompts of
    :mod:`langgraph_stl.search.prompts`. Its calls are named and tagged ``stl:policy`` plus the environment."""

    def __init__(self, model: ChatModelLike, *, call_style: CallStyle = "auto", max_concurrency: int = 16) -> None:
        self.model = model
        self.call_style: CallStyle = call_style
        self.max_concurrency = max_concurrency

    def _generate(
        self, prompts: list[str], inp: PolicyInput, config: RunnableConfig | None, stop: list[str] | None = None
    ) -> Generate:
        return Generate(
            self.model,
            prompts,
            role_config(config, "policy", inp.env_name),
            stop=stop,
            call_style=self.call_style,
            max_concurrency=self.max_concurrency,
        )

    def steps(self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None) -> Steps[Proposals]:
        kind = P.env_kind(inp.env_name)
        legal = yield legal_actions(env, inp.state)
        if kind == "webshop":
            clickables = webshop_clickables(legal, inp.observation)
            if not clickables:
                return (yield from self._webshop_search(inp, config))
            return (yield from self._webshop_select(clickables, inp, config))
        if kind == "game24":
            prompt = P.GAME24_PROPOSE_PROMPT.format(numbers=P.game24_numbers(inp.observation))
            (text,) = yield self._generate([prompt], inp, config)
            # No legality filter: the environment accepts either operand order and checks each step itself.
            return _filter(P.parse_game24_steps(text), None, inp.n, calls=1)
        legal_note = f"Legal actions: {', '.join(legal)}\n" if legal else ""
        trajectory = P.format_trajectory(inp.root_observation, inp.path)
        prompt = P.GENERIC_PROPOSE_PROMPT.format(n=inp.n, legal=legal_note, trajectory=trajectory)
        (text,) = yield self._generate([prompt], inp, config)
        return _filter(P.parse_action_lines(text), legal, inp.n, calls=1)

    def _webshop_search(self, inp: PolicyInput, config: RunnableConfig | None) -> Steps[Proposals]:
        """n sampled queries in parallel; duplicates collapse (the reference's root expansion)."""
        prompt = P.WEBSHOP_SEARCH_PROMPT.format(instruction=P.webshop_instruction(inp.instruction))
        texts = yield self._generate([prompt] * inp.n, inp, config, stop=["Observation"])
        out = Proposals(calls=len(texts))
        for text in texts:
            queries = re.findall(r"search\[[^\]\n]*[^\]\s][^\]\n]*\]", text.split("Observation")[0])
            if queries:
                out.add(queries[-1])
            else:
                out.dropped += 1
        return out

    def _webshop_select(
        self, clickables: list[str], inp: PolicyInput, config: RunnableConfig | None
    ) -> Steps[Proposals]:
        """Up to n distinct clickables: all of them when few, else one model pick at a time; plus Buy Now."""
        out = Proposals()
        if inp.last_step:
            if BUY_NOW in clickables:
                out.add(BUY_NOW)
            return out
        if len(clickables) <= inp.n:
            out.actions.extend(clickables)
        else:
            trajectory = P.format_trajectory(inp.root_observation, inp.path[:-1]).strip()
            rng = inp.rng
            for _ in range(inp.n):
                choice = None
                for _attempt in range(1 + inp.max_retries):
                    prompt = P.WEBSHOP_SELECT_PROMPT.format(
                        instruction=P.webshop_instruction(inp.instruction),
                        trajectory=trajectory,
                        observation=inp.observation.strip(),
                        possible=", ".join(clickables),
                        not_allowed=", ".join(out.actions) or "none",
                    )
                    (text,) = yield self._generate([prompt], inp, config)
                    out.calls += 1
                    picked = _match_action(
                        P.parse_action_lines(text) or re.findall(r"click\[[^\]\n]+\]", text), clickables
                    )
                    if picked is not None and picked not in out.actions:
                        choice = picked
                        break
                    out.dropped += 1
                if choice is None:
                    remaining = [a for a in clickables if a not in out.actions]
                    if not remaining:
                        break
                    choice = rng.choice(remaining)
                out.add(choice)
        if BUY_NOW in clickables:
            out.add(BUY_NOW)
        return out


def _match_action(candidates: list[str], allowed: list[str]) -> str | None:
    """The last candidate that names an allowed action (exact, then case-insensitive)."""
    lower = {a.lower(): a for a in allowed}
    for candidate in reversed(candidates):
        if candidate in allowed:
            return candidate
        if candidate.lower() in lower:
            return lower[candidate.lower()]
    return None


def _filter(candidates: list[str], legal: list[str] | None, n: int, *, calls: int) -> Proposals:
    """Keep the first ``n`` distinct candidates that are legal (when legality is known); count the rest dropped."""
    out = Proposals(calls=calls)
    legal_set = set(legal) if legal is not None else None
    for action in candidates:
        if legal_set is not None and action not in legal_set:
            out.dropped += 1
        elif len(out.actions) < n:
            out.add(action)
    return out
