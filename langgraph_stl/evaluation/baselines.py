"""Programmatic WebShop policies and a model-free value, for experiments that must not depend on a weak LLM policy.

* :class:`WebShopRulePolicy` is WebShop's rule baseline (Yao et al. 2022): search the instruction, click the first
  result, buy it. One proposal per step, so any value model is irrelevant to it.
* :class:`WebShopClickablesPolicy` is a deterministic stand-in for the paper's LLM policy: a few query variants of
  the instruction at the root, then the page's clickables ranked by word overlap with the instruction (the LLM's
  selection step, without sampling), capped at the width, plus ``Buy Now`` on item pages. Navigation buttons
  (Back to Search, Next >, < Prev, Description, ...) are never proposed: the reference's value rules score them −1
  anyway, so they could only waste environment steps.
* :class:`RandomValue` values every state uniformly at random (a seeded generator): the "no information" value.

Specs for ``stl eval``: ``py:langgraph_stl.evaluation.baselines:rule_policy``, ``...:clickables_policy``,
``...:random_value``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from langchain_core.runnables import RunnableConfig

from langgraph_stl.envs.base import Environment
from langgraph_stl.search import prompts as P
from langgraph_stl.search.policy import BUY_NOW, PolicyInput, Proposals, webshop_clickables
from langgraph_stl.search.value import ProgrammaticValue, ValueItem

_PRODUCT = re.compile(r"click\[([A-Z0-9]{10})\]")
_PRICE_CLAUSE = re.compile(r",?\s*and price lower than [\d.]+ dollars\s*$", flags=re.IGNORECASE)
_OPTION_CLAUSE = re.compile(r"\s+with\s+\w+:\s.*$", flags=re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"[a-z0-9]+")


def _products(clickables: Sequence[str]) -> list[str]:
    """The product clicks of a results page, in page order."""
    return [a for a in clickables if _PRODUCT.fullmatch(a)]


def query_variants(instruction: str) -> list[str]:
    """Distinct ``search[...]`` queries: the instruction, without its price clause, without its option clauses."""
    full = " ".join(instruction.split())
    no_price = _PRICE_CLAUSE.sub("", full)
    core = _OPTION_CLAUSE.sub("", no_price)
    return list(dict.fromkeys(f"search[{q}]" for q in (full, no_price, core) if q))


def _overlap(action: str, words: set[str]) -> int:
    return len(set(_WORD.findall(action.lower())) & words)


class WebShopRulePolicy:
    """Search the instruction, click the first result, buy (WebShop's rule baseline)."""

    async def propose(self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None) -> Proposals:
        clickables = webshop_clickables(await env.alegal_actions(inp.state), inp.observation)
        if not clickables:
            return Proposals([f"search[{P.webshop_instruction(inp.instruction)}]"])
        if BUY_NOW in clickables:
            return Proposals([BUY_NOW])
        return Proposals(_products(clickables)[:1])


class WebShopClickablesPolicy:
    """Deterministic query variants, then instruction-ranked clickables plus Buy Now (see module doc)."""

    async def propose(self, env: Environment, inp: PolicyInput, *, config: RunnableConfig | None = None) -> Proposals:
        clickables = webshop_clickables(await env.alegal_actions(inp.state), inp.observation)
        instruction = P.webshop_instruction(inp.instruction)
        if not clickables:
            return Proposals(query_variants(instruction)[: inp.n])
        if inp.last_step:
            return Proposals([BUY_NOW] if BUY_NOW in clickables else [])
        products = _products(clickables)
        if products:
            return Proposals(products[: inp.n])
        chosen = {a for a, _ in inp.path}
        words = set(_WORD.findall(instruction.lower()))
        options = [
            a
            for a in clickables
            if a != BUY_NOW and a not in chosen and P.webshop_rule_value(a, ()) is None and _overlap(a, words) > 0
        ]
        options.sort(key=lambda a: -_overlap(a, words))  # stable: page order among equals
        out = Proposals(options[: inp.n])
        if BUY_NOW in clickables:
            out.add(BUY_NOW)
        return out


class RandomValue(ProgrammaticValue):
    """Uniform random values from a seeded generator (no model calls): the search's no-information baseline."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__("random")
        self.rng = random.Random(seed)

    def score(self, item: ValueItem) -> float:
        return self.rng.random()


def rule_policy() -> WebShopRulePolicy:
    """``py:`` factory for :class:`WebShopRulePolicy`."""
    return WebShopRulePolicy()


def clickables_policy() -> WebShopClickablesPolicy:
    """``py:`` factory for :class:`WebShopClickablesPolicy`."""
    return WebShopClickablesPolicy()


def random_value() -> RandomValue:
    """``py:`` factory for :class:`RandomValue` (seed 0)."""
    return RandomValue()
