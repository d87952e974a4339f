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


def test_sync_graph_invoke_with_the_embedded_model() -> None:
    """``graph.invoke`` drives the search through the models' sync paths with the real server: the LLM policy and
    a generating value model (``batch``), then a logits readout (on a private loop); tokens counted per call."""
    from langgraph_stl.envs.game24 import Game24Env
    from langgraph_stl.models.usage import TokenUsageCallback
    from langgraph_stl.search import EnumeratePolicy, create_search_graph

    policy, value = _models()
    ctx = SearchContext(width=3, root_width=3, depth=1, n_rollouts=1, n_value_samples=2, expand_retries=2)
    usage = TokenUsageCallback()
    result = (
        create_search_graph(Game24Env(), policy, value)
        .compile()
        .invoke({"task_id": "900"}, {"callbacks": [usage]}, context=ctx)["result"]
    )
    assert result["policy_calls"] >= 1
    assert usage.as_dict()["smollm2"]["calls"] == result["policy_calls"] + result["value_calls"]
    value.mode = "logits"
    usage = TokenUsageCallback()
    graph = create_search_graph(Game24Env(), EnumeratePolicy(), value).compile()
    result = graph.invoke({"task_id": "900"}, {"callbacks": [usage]}, context=ctx)["result"]
    assert len(result["value_estimates"]) == 3 and all(0 <= v <= 1 for v in result["value_estimates"].values())
    assert usage.as_dict()["smollm2"]["calls"] == 1  # one readout for the three siblings
