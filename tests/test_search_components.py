"""Policies (WebShop and Game-of-24 prompts, enumeration), value-model dispatch and rules, lookahead targets."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.search import (
    EnumeratePolicy,
    LLMPolicy,
    PolicyInput,
    SearchContext,
    ValueItem,
    ValueModel,
    lookahead,
)
from langgraph_stl.search import prompts as P
from langgraph_stl.search.calls import Generate
from tests.fakes import FakeShopEnv, ScriptedChatModel, TreeEnv, fixed, path_value_responder, score, stl_score


def _inp(env: Any, state: dict[str, Any], n: int, path: tuple[tuple[str, str], ...] = (), **kw: Any) -> PolicyInput:
    root = env.reset("900" if env.name == "game24" else "t0")
    return PolicyInput(
        env_name=env.name,
        state=state,
        observation=env.observation(state),
        root_observation=env.observation(root),
        instruction=env.instruction(root),
        path=path,
        depth=len(path),
        n=n,
        **kw,
    )


async def test_webshop_root_samples_queries_with_stop_and_collapses_duplicates() -> None:
    replies = [
        "The item is blue shoes.\nAction: search[blue shoes]",
        "Rationale: cheap shoes.\nSearched Action: search[blue shoes under 20]\nObservation: ...",
        "I do not know.",
        "Action: search[blue shoes]",
    ]
    model = ScriptedChatModel(responder=lambda p, k: replies[k])
    env = FakeShopEnv()
    state = env.reset("t0")
    out = await LLMPolicy(model).propose(env, _inp(env, state, 4))
    assert out.actions == ["search[blue shoes]", "search[blue shoes under 20]"]
    assert out.dropped == 1 and out.calls == 4
    assert "Instruction: i want blue shoes under 20 dollars\nRationale:" in model.prompts[0]


async def test_webshop_selection_lists_possible_and_not_allowed_then_adds_buy_now() -> None:
    env = FakeShopEnv()
    results = env.step(env.reset("t0"), "search[shoes]").state

    def respond(prompt: str, k: int) -> str:
        query = prompt.rsplit("Possible Next Actions: ", 1)[1]
        possible = query.split("\n")[0].split(", ")
        not_allowed = query.split("Actions Not Allowed: ", 1)[1].split("\n")[0].split(", ")
        if k == 0:
            return "Action: click[Not On Page]"  # first try of each prompt is unusable: a retry follows
        return "Action: " + next(a for a in possible[2:] if a not in not_allowed)

    model = ScriptedChatModel(responder=respond)
    path = (("search[shoes]", env.observation(results)),)
    out = await LLMPolicy(model).propose(env, _inp(env, results, 3, path))
    assert out.actions == ["click[B001]", "click[B002]", "click[B003]"]
    assert out.calls == 6 and out.dropped == 3
    last = model.prompts[-1].rsplit("Instruction:", 1)[1]
    assert "Actions Not Allowed: click[B001], click[B002]" in last
    assert "Possible Next Actions: click[Back to Search], click[Next >], click[B001]" in last

    item = env.step(results, "click[B002]").state
    few = await LLMPolicy(ScriptedChatModel(responder=fixed("x"))).propose(env, _inp(env, item, 5, path))
    assert few.actions == env.legal_actions(item) and few.calls == 0  # <= n clickables: all of them, no call
    many = await LLMPolicy(ScriptedChatModel(responder=fixed("nothing useful"))).propose(
        env, _inp(env, item, 2, path, max_retries=1)
    )
    assert len(many.actions) == 3 and many.actions[-1] == "click[Buy Now]"  # 2 seeded fallback picks + Buy Now
    last_step = await LLMPolicy(ScriptedChatModel(responder=fixed("x"))).propose(
        env, _inp(env, item, 5, path, last_step=True)
    )
    assert last_step.actions == ["click[Buy Now]"]


async def test_sync_and_async_proposals_are_identical_on_every_prompt_path() -> None:
    """WebShop root queries, WebShop selection with re-asks, Game of 24 and the generic prompt: ``propose_sync``
    (the sync graph's path) and ``propose`` drive the same steps."""
    shop, g24, tree = FakeShopEnv(), Game24Env(), TreeEnv()
    results = shop.step(shop.reset("t0"), "search[shoes]").state
    path = (("search[shoes]", shop.observation(results)),)

    def respond(prompt: str, k: int) -> str:
        if "Possible next steps" in prompt:
            return "4 + 5 = 9 (left: 6 9 10)\n10 - 6 = 4 (left: 4 4 5)"
        if "Possible Next Actions" in prompt:
            return "Action: click[B003]" if k % 2 else "Action: click[nothing]"
        return "Action: search[blue shoes]\nAction: a\nAction: b"

    cases = [
        (shop, _inp(shop, shop.reset("t0"), 3)),
        (shop, _inp(shop, results, 2, path)),
        (g24, _inp(g24, g24.reset("900"), 5)),
        (tree, _inp(tree, tree.reset("t0"), 2)),
    ]
    for env, inp in cases:
        async_out = await LLMPolicy(ScriptedChatModel(responder=respond)).propose(env, inp)
        sync_out = LLMPolicy(ScriptedChatModel(responder=respond)).propose_sync(env, inp)
        assert sync_out == async_out and async_out.actions, env.name


async def test_enumerate_policy_webshop_and_game24() -> None:
    env = FakeShopEnv()
    root = env.reset("t0")
    assert (await EnumeratePolicy().propose(env, _inp(env, root, 3))).actions == [
        "search[i want blue shoes under 20 dollars]"
    ]
    results = env.step(root, "search[i want blue shoes under 20 dollars]").state
    listed = (await EnumeratePolicy().propose(env, _inp(env, results, 2))).actions
    assert listed == [f"click[{p}]" for p in env.PRODUCTS[:2]]  # navigation buttons go last, so the cap drops them
    item = env.step(results, listed[0]).state
    assert (await EnumeratePolicy().propose(env, _inp(env, item, 3))).actions == [
        "click[Buy Now]",
        "click[red]",
        "click[blue]",
    ]
    g = Game24Env()
    s = g.reset("900")
    legal = g.legal_actions(s)
    first = await EnumeratePolicy().propose(g, _inp(g, s, 4))
    assert first.actions == legal[:4]
    a = await EnumeratePolicy(shuffle=True).propose(g, _inp(g, s, 4, seed=1))
    b = await EnumeratePolicy(shuffle=True).propose(g, _inp(g, s, 4, seed=1))
    c = await EnumeratePolicy(shuffle=True).propose(g, _inp(g, s, 4, seed=2))
    assert a.actions == b.actions != c.actions and set(a.actions) <= set(legal)


async def test_game24_llm_policy_parses_steps_and_env_drops_invalid() -> None:
    from langgraph_stl.search.steps import expand_state

    g = Game24Env()
    s = g.reset("900")  # 4 5 6 10
    text = "4 + 5 = 9 (left: 6 9 10)\n10 - 6 = 4 (left: 4 4 5)\n4 * 13 = 52 (left: 5 6 10 52)\n5 + 4 = 9\nhello"
    model = ScriptedChatModel(responder=fixed(text))
    expansion = await expand_state(g, LLMPolicy(model), _inp(g, s, 5))
    assert [c.action for c in expansion.children] == ["4 + 5 = 9", "10 - 6 = 4", "5 + 4 = 9"]
    assert expansion.invalid == 1  # 13 is not among the numbers
    assert "Input: 4 5 6 10\nPossible next steps:\n" in model.prompts[0]


async def test_value_rules_cost_no_call_and_siblings_share_a_prefix() -> None:
    model = ScriptedChatModel(responder=fixed(score(8)))
    vm = ValueModel(model)
    traj = P.format_trajectory("WebShop \nInstruction:  \nshoes \n[Search] ", [("search[shoes]", "\n[B001] ")])
    items = [
        ValueItem(traj, "click[Next >]", "page 2", previous_actions=("search[shoes]",)),
        ValueItem(traj, "click[B001]", "\n[Buy Now] ", previous_actions=("search[shoes]",)),
        ValueItem(traj, "search[shoes]", "same", previous_actions=("search[shoes]",)),
        ValueItem(traj, "click[Buy Now]", "done", terminal=True, previous_actions=("search[shoes]",)),
    ]
    out = await vm.aevaluate("webshop", items, n_samples=2)
    assert [e.value for e in out[:3]] == [-1.0, 0.8, -1.0]
    assert out[0].rule and out[2].rule and not out[1].rule
    assert out[3].value == -1.0 and out[3].failures == 2  # terminal judge needs [SUCCESS]/[FAILURE] marks
    assert model.calls == 4  # two samples for each of the two model-valued items
    prompts = [vm.prompt("webshop", it) for it in items]
    common = len(prompts[0]) - len(prompts[0].split("Current Action:")[-1])
    assert prompts[1][:common] == prompts[0][:common] and common > 1000  # task, examples and trajectory first


async def test_value_mean_of_valid_samples_and_median_rationale() -> None:
    replies = [
        "A. Thus the correctness score is 2",
        "B. Thus the correctness score is 8",
        "junk",
        "C. Thus the correctness score is 6",
    ]
    vm = ValueModel(ScriptedChatModel(responder=lambda p, k: replies[k]))
    (est,) = await vm.aevaluate("tree", [ValueItem("at /", "a", "at /a")], n_samples=4)
    assert est.value == pytest.approx((0.2 + 0.8 + 0.6) / 3)
    assert est.failures == 1 and est.samples == [0.2, 0.8, None, 0.6]
    assert est.rationale == "C."  # the median-scored sample (0.6)
    stl = ValueModel(ScriptedChatModel(responder=fixed(stl_score(5.2))), style="stl")
    (s,) = await stl.aevaluate("webshop", [ValueItem("t", "click[B001]", "obs")], n_samples=1)
    assert s.value == pytest.approx(0.52)
    assert stl.prompt("webshop", ValueItem("t", "a", "o")) == P.stl_prompt("t", "a", "o")
    assert stl.prompt("webshop", ValueItem("t", "a", "o", terminal=True)) == P.terminal_prompt("t", "a")


async def test_logits_mode_reads_the_expected_score_and_asks_about_10_only_when_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import math

    import langgraph_stl.models.logprobs as lp
    from langgraph_stl.models.usage import TokenUsageCallback

    calls: list[tuple[int, str]] = []
    scripted = {"ACT-A": {"8": math.log(0.5), "4": math.log(0.5)}, "ACT-B": {"Hmm": 0.0}, "ACT-C": {"1": 0.0}}

    def one_step(model: Any, prompts: list[list[BaseMessage]], prefix: str, top_k: int) -> list[Any]:
        """Stands in for the batched forward pass: (distribution, prompt tokens) per prompt."""
        calls.append((len(prompts), prefix))
        if prefix.endswith("1"):
            return [({"0": 0.0}, 101)] * len(prompts)
        return [(next(d for a, d in scripted.items() if a in str(p[0].content)), 100) for p in prompts]

    monkeypatch.setattr(lp, "_is_hf", lambda model, top_k: True)
    monkeypatch.setattr(lp, "_hf_logprobs", one_step)
    vm = ValueModel(ScriptedChatModel(responder=fixed("")), mode="logits")
    cb = TokenUsageCallback()
    items = [ValueItem("t", action, "o") for action in scripted]
    out = await vm.aevaluate("tree", items, n_samples=5, config={"callbacks": [cb]})
    assert [e.value for e in out] == [pytest.approx(0.6), -1.0, 1.0]  # ACT-C: "1" then "0" = 10
    assert calls == [(3, "Thus the correctness score is "), (1, "Thus the correctness score is 1")]
    # logits reads are counted like a model call: 3 prompts of 100 tokens + one of 101, one distribution per read
    assert list(cb.as_dict().values()) == [{"input_tokens": 401, "output_tokens": 4, "calls": 1}]


async def test_generate_batches_local_models_in_one_call_on_both_paths() -> None:
    class Batching(ScriptedChatModel):
        stl_batched: bool = True
        batch_calls: int = 0

        def batch(self, inputs: list[Any], config: Any = None, **kw: Any) -> list[Any]:  # type: ignore[override]
            self.batch_calls += 1
            return super().batch(inputs, config, **kw)

    model = Batching(responder=lambda p, k: p.upper())
    call = Generate(model, ["a", "b", "c"], {})
    assert await call.arun() == ["A", "B", "C"]
    assert call.run() == ["A", "B", "C"]
    assert model.batch_calls == 2


async def test_lookahead_target_from_the_best_real_successor_without_ground_truth() -> None:
    env = TreeEnv(forbid_true_reward=True)
    values = {"/a/a": 3, "/a/b": 9, "/a/c": 1, "/a/stop!": 4}
    vm = ValueModel(ScriptedChatModel(responder=path_value_responder(values)))
    root = env.reset("t0")
    s1 = env.step(root, "a").state
    target = await lookahead(
        env,
        EnumeratePolicy(),
        vm,
        s1,
        root_observation=env.observation(root),
        path=[("a", env.observation(s1))],
        context=SearchContext(n_value_samples=2),
    )
    assert target is not None
    assert (target.best_action, target.successor_observation, target.value) == ("b", "at /a/b", pytest.approx(0.9))
    assert target.rationale == "Reflection: looks fine."
    assert target.prompt == P.stl_prompt("at /", "a", "at /a")
    assert target.target == P.stl_target("b", "at /a/b", "Reflection: looks fine.", 0.9)
    assert sorted(target.candidates) == sorted([("a", 0.3), ("b", 0.9), ("c", 0.1), ("stop", 0.0)])
    assert env.true_reward_calls == 0

    # a terminal best successor is written as "Terminal State", valued by the terminal judge (no discount)
    judge = {"/a/stop!": 10, "/a/a": 2, "/a/b": 2, "/a/c": 2}
    vm2 = ValueModel(ScriptedChatModel(responder=path_value_responder(judge)))
    t2 = await lookahead(
        env, EnumeratePolicy(), vm2, s1, root_observation="at /", path=[("a", "at /a")], context=SearchContext()
    )
    assert t2 is not None and (t2.best_action, t2.successor_observation, t2.value) == ("stop", "Terminal State", 1.0)
    assert t2.terminal and "Observation of Best Successor State: Terminal State\n" in t2.target

    with pytest.raises(ValueError, match="path must not be empty"):
        await lookahead(env, EnumeratePolicy(), vm, root, root_observation="at /", path=[])
    done = env.step(env.step(env.step(root, "a").state, "b").state, "c").state
    assert await lookahead(env, EnumeratePolicy(), vm, done, root_observation="at /", path=[("c", "x")]) is None


async def test_webshop_greedy_on_the_fake_shop_forces_buy_now_and_scores_only_at_the_end() -> None:
    from langgraph_stl.search import arun_search

    def value(prompt: str, k: int) -> str:
        tail = prompt.split("Current Action:")[-1]
        if "Terminal State" in tail:
            ok = "[[blue]]" in prompt.rsplit("Observation:", 1)[0][-400:] or "click[blue]" in prompt
            return f"1. color blue [{'SUCCESS' if ok else 'FAILURE'}]\n2. shoes [SUCCESS]"
        if "click[B002]" in tail:
            return score(8)
        if "click[blue]" in tail:
            return score(9)
        return score(4)

    env = FakeShopEnv()
    started = time.perf_counter()
    result = await arun_search(
        env,
        EnumeratePolicy(),
        ValueModel(ScriptedChatModel(responder=value)),
        "t0",
        context=SearchContext(n_rollouts=2, n_value_samples=1, depth=4, width=7),
    )
    assert result["error"] is None
    assert result["trajectory"][1:] == ["click[B002]", "click[blue]", "click[Buy Now]"]
    assert result["reward"] == 1.0 and result["true_reward"]["pass_at_n"] == 1.0
    assert time.perf_counter() - started < 5
    # special buttons were valued −1 by rule
    assert any(v == -1.0 for v in result["value_estimates"].values())
    assert re.match(r"search\[", result["trajectory"][0])


@pytest.mark.slow
async def test_greedy_on_the_real_http_shop_ends_with_a_forced_purchase() -> None:
    """Enumerated clickables on the embedded WebShop server; the last step may only buy (forced Buy Now)."""
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
    from langgraph_stl.search import arun_search

    value = ValueModel(
        ScriptedChatModel(responder=lambda p, k: "1. item [SUCCESS]" if "Terminal State" in p[-40:] else score(5))
    )
    with WebShopHttpEnv() as env:
        result = await arun_search(
            env, EnumeratePolicy(), value, "fixed_0", context=SearchContext(n_rollouts=1, n_value_samples=1, depth=3)
        )
    assert result["error"] is None
    trajectory = result["trajectory"]
    assert trajectory[0].startswith("search[") and trajectory[-1] == "click[Buy Now]" and len(trajectory) == 3
    assert trajectory[1].startswith("click[B")  # special buttons are valued −1 by rule, products win
    assert result["terminal"] and 0.0 <= result["reward"] <= 1.0
