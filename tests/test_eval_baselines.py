"""Programmatic WebShop policies and the random value, on the embedded shop (no language model)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from langgraph_stl.evaluation.baselines import (
    RandomValue,
    WebShopClickablesPolicy,
    WebShopRulePolicy,
    query_variants,
)
from langgraph_stl.search import SearchContext, run_search
from langgraph_stl.search.policy import BUY_NOW, PolicyInput
from langgraph_stl.search.value import ValueItem

pytestmark = pytest.mark.slow

INSTRUCTION = (
    'Find me double sided, machine washable decorative pillows with printing technology with size: 28" x 28", '
    "and price lower than 30.00 dollars"
)


@pytest.fixture(scope="module")
def env() -> Iterator[object]:
    from langgraph_stl.envs.webshop import get_reward, load_webshop
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

    # the first reward may prepare the title-noun cache with spaCy (seconds): not inside a timed HTTP request
    data = load_webshop(goals="synthetic", seed=0)
    goal = data.goals[0]
    get_reward(data.products_by_asin[goal["asin"]], goal, data.product_prices[goal["asin"]], {})
    with WebShopHttpEnv() as shop:
        yield shop


def test_query_variants_drop_price_then_options() -> None:
    assert query_variants(INSTRUCTION) == [
        f"search[{INSTRUCTION}]",
        "search[" + INSTRUCTION.removesuffix(", and price lower than 30.00 dollars") + "]",
        "search[Find me double sided, machine washable decorative pillows with printing technology]",
    ]
    assert query_variants("  plain  query ") == ["search[plain query]"]


def _input(env: object, state: dict[str, object], path: tuple[tuple[str, str], ...], n: int = 5) -> PolicyInput:
    obs = env.observation(state)  # type: ignore[attr-defined]
    return PolicyInput("webshop", state, obs, "", INSTRUCTION, path, len(path), n)


def test_clickables_policy_pages(env: object) -> None:
    policy = WebShopClickablesPolicy()
    state = env.reset("fixed_0")  # type: ignore[attr-defined]
    root = asyncio.run(policy.propose(env, _input(env, state, (), n=10)))  # type: ignore[arg-type]
    assert root.actions == query_variants(INSTRUCTION)
    results = env.step(state, root.actions[0]).state  # type: ignore[attr-defined]
    products = asyncio.run(policy.propose(env, _input(env, results, ((root.actions[0], ""),), n=3)))  # type: ignore[arg-type]
    shown = env.observation(results)  # type: ignore[attr-defined]
    assert len(products.actions) == 3
    assert all(a.startswith("click[B") and a[6:-1] in shown for a in products.actions)
    item = env.step(results, products.actions[0]).state  # type: ignore[attr-defined]
    path = ((root.actions[0], ""), (products.actions[0], ""))
    options = asyncio.run(policy.propose(env, _input(env, item, path)))  # type: ignore[arg-type]
    # the goal's size ranks first; navigation buttons never appear; Buy Now is always offered
    assert options.actions[0] == 'click[28" x 28"]'
    assert options.actions[-1] == BUY_NOW
    assert not {"click[Back to Search]", "click[< Prev]", "click[Description]"} & set(options.actions)
    last = PolicyInput("webshop", item, "", "", INSTRUCTION, path, 4, 5, last_step=True)
    assert asyncio.run(policy.propose(env, last)).actions == [BUY_NOW]  # type: ignore[arg-type]


def test_rule_baseline_buys_the_first_result(env: object) -> None:
    ctx = SearchContext(n_rollouts=1, depth=5)
    result = run_search(env, WebShopRulePolicy(), RandomValue(), "fixed_0", context=ctx)  # type: ignore[arg-type]
    assert result["error"] is None
    assert result["trajectory"] == [f"search[{INSTRUCTION}]", "click[B0743JKHBV]", BUY_NOW]
    assert result["true_reward"]["pass_at_n"] == pytest.approx(0.8)
    assert result["tokens"] == {}


def test_random_value_is_seeded_and_in_range() -> None:
    items = [ValueItem("t", f"click[{i}]", "o") for i in range(5)]
    a = asyncio.run(RandomValue(3).aevaluate("webshop", items))
    b = asyncio.run(RandomValue(3).aevaluate("webshop", items))
    assert [e.value for e in a] == [e.value for e in b]
    assert all(0 <= e.value < 1 for e in a) and len({e.value for e in a}) == 5
