"""The real embedded model (SmolLM2-135M on llama.cpp) as policy and value model, tiny budgets."""

from __future__ import annotations

from typing import Any

import pytest

from langgraph_stl.search import LLMPolicy, SearchContext, ValueModel, run_search

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _models() -> tuple[LLMPolicy, ValueModel]:
    from langgraph_stl.models import load_chat_model

    # Short generations keep the test to a few minutes on a loaded 2-core machine.
    return LLMPolicy(load_chat_model("smollm2", max_tokens=64)), ValueModel(load_chat_model("smollm2", max_tokens=48))


def _check(result: dict[str, Any]) -> None:
    assert result["error"] is None, result["error"]
    assert result["tokens"]["smollm2"]["input_tokens"] > 0
    assert result["tokens"]["smollm2"]["calls"] == result["policy_calls"] + result["value_calls"]
    assert 0.0 <= result["reward"] <= 1.0
    assert result["true_reward"]["n"] == 1


def test_game24_greedy_with_the_embedded_model() -> None:
    from langgraph_stl.envs.game24 import Game24Env

    policy, value = _models()
    ctx = SearchContext(width=3, root_width=3, depth=1, n_rollouts=1, n_value_samples=1, expand_retries=2)
    result = run_search(Game24Env(), policy, value, "900", context=ctx)
    _check(result)
    assert result["value_calls"] == result["states_expanded"]


def test_webshop_greedy_with_the_embedded_model_over_http() -> None:
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

    policy, value = _models()
    ctx = SearchContext(
        width=2, root_width=3, depth=2, n_rollouts=1, n_value_samples=1, expand_retries=1, max_retries=0
    )
    with WebShopHttpEnv() as env:
        result = run_search(env, policy, value, "fixed_0", context=ctx)
    _check(result)
    # A 135M model does not always write a usable search[...] (then the rollout ends at the root); whatever it
    # proposed went through the real shop: a valid query leads to a results page, anything else is counted.
    assert result["policy_calls"] >= 3
    if result["trajectory"]:
        assert result["trajectory"][0].startswith("search[") and result["states_expanded"] >= 1
    else:
        assert result["invalid_proposals"] >= 3
