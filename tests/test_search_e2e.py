"""The real embedded model (SmolLM2-135M on llama.cpp) as policy and value model, tiny budgets."""

from __future__ import annotations

import pytest

from langgraph_stl.search import SearchContext, make_policy, make_value, run_search

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _check(result: dict[str, object]) -> None:
    assert result["error"] is None, result["error"]
    tokens = result["tokens"]
    assert isinstance(tokens, dict) and tokens["smollm2"]["input_tokens"] > 0  # type: ignore[index]
    assert result["policy_calls"] >= 1  # type: ignore[operator]
    assert result["reward"] in (0.0, 1.0) or 0.0 <= result["reward"] <= 1.0  # type: ignore[operator]


def test_game24_greedy_with_the_embedded_model() -> None:
    from langgraph_stl.envs.game24 import Game24Env

    ctx = SearchContext(width=3, depth=2, n_rollouts=1, n_value_samples=1, expand_retries=1)
    result = run_search(Game24Env(), make_policy("smollm2"), make_value("smollm2"), "900", context=ctx)
    _check(result)
    assert result["value_calls"] == result["states_expanded"]


def test_webshop_greedy_with_the_embedded_model_over_http() -> None:
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

    ctx = SearchContext(width=2, root_width=2, depth=2, n_rollouts=1, n_value_samples=1, expand_retries=1)
    with WebShopHttpEnv() as env:
        result = run_search(env, make_policy("smollm2"), make_value("smollm2"), "fixed_0", context=ctx)
    _check(result)
    assert result["trajectory"] and str(result["trajectory"][0]).startswith("search[")
