"""WebShopHttpEnv: episodes end to end over a real loopback server, invalid actions, splits, JSON states."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from langgraph_stl.envs.base import InvalidTaskError
from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv, task_ids_for
from langgraph_stl.envs.webshop.server import RunningServer, WebShopSite, start_server
from langgraph_stl.envs.webshop.text import parse_page, webshop_text
from tests._webshop_fixtures import target_of, webshop_site


@pytest.fixture(scope="module")
def site() -> WebShopSite:
    return webshop_site("synthetic", True)


@pytest.fixture(scope="module")
def server(site: WebShopSite) -> Iterator[RunningServer]:
    with start_server(site) as running:
        yield running


@pytest.fixture(scope="module")
def env(server: RunningServer, site: WebShopSite) -> Iterator[WebShopHttpEnv]:
    with WebShopHttpEnv(server.url, num_goals=len(site.goals)) as e:
        yield e


def solve(env: WebShopHttpEnv, site: WebShopSite, goal_index: int) -> list[dict]:
    """Play the winning episode of a synthetic goal; returns every state."""
    asin, options = target_of(site, goal_index)
    states = [env.reset(f"fixed_{goal_index}")]
    actions = [f"search[{site.by_asin[asin]['Title']}]", f"click[{asin}]"]
    actions += [f"click[{value}]" for value in options.values()] + ["click[Buy Now]"]
    for action in actions:
        result = env.step(states[-1], action)
        assert result.valid, result.message
        states.append(result.state)
    return states


def test_reset_shows_the_search_page(env: WebShopHttpEnv, site: WebShopSite) -> None:
    state = env.reset("fixed_6")
    instruction = site.goals[6]["instruction_text"]
    assert env.observation(state) == f"\nWebShop \nInstruction:  \n{instruction} \n[Search] "
    assert env.instruction(state) == instruction
    assert env.legal_actions(state) is None  # free-text search
    assert not env.is_terminal(state) and env.true_reward(state) == 0.0
    assert env.reset("6") == state  # a bare goal index means fixed_<i>


@pytest.mark.parametrize("goal_index", [0, 1, 6])
def test_winning_episode_gets_reward_one(env: WebShopHttpEnv, site: WebShopSite, goal_index: int) -> None:
    states = solve(env, site, goal_index)
    asin, options = target_of(site, goal_index)
    results, item = states[1], states[2]
    assert results["kind"] == "results" and f"click[{asin}]" in env.legal_actions(results)
    assert item["kind"] == "item" and item["asin"] == asin
    for state, value in zip(states[3:-1], options.values(), strict=True):
        assert env.observation(state) == f"You have clicked {value}."
        assert state["options"][item["option_types"][value]] == value
    done = states[-1]
    assert env.is_terminal(done) and env.legal_actions(done) == []
    assert env.true_reward(done) == 1.0
    assert env.observation(done) == "Your score (min 0.0, max 1.0): 1.0"
    assert env.instruction(done) == site.goals[goal_index]["instruction_text"]  # kept although the page has none
    assert done["history"][-1] == "click[Buy Now]"


def test_navigation_buttons(env: WebShopHttpEnv) -> None:
    state = env.step(env.reset("fixed_2"), "search[men's shorts]").state
    assert env.legal_actions(state)[:2] == ["click[Back to Search]", "click[Next >]"]
    page2 = env.step(state, "click[Next >]").state
    assert page2["page"] == 2 and "\nPage 2 (Total results:" in env.observation(page2)
    assert env.step(page2, "click[< Prev]").state["page"] == 1
    item = env.step(page2, f"click[{page2['products'][0]}]").state
    assert item["page"] == 2 and item["kind"] == "item"
    sub = env.step(item, "click[features]").state  # clicks are case-insensitive, like WebShop's text env
    assert sub["kind"] == "sub" and sub["subpage"] == "Features"
    assert env.step(sub, "click[< Prev]").state["kind"] == "item"
    back = env.step(item, "click[< Prev]").state
    assert back["kind"] == "results" and back["page"] == 2 and back["options"] == {}
    home = env.step(item, "click[Back to Search]").state
    assert home["kind"] == "search" and home["query"] is None


def test_policies_offer_only_the_products_the_observation_shows(env: WebShopHttpEnv) -> None:
    from langgraph_stl.search.policy import webshop_clickables

    state = env.step(env.reset("fixed_2"), "search[men's shorts]").state
    legal = env.legal_actions(state)
    shown = webshop_clickables(legal, env.observation(state))
    assert len(state["products"]) == 10 and len(legal or []) == 12  # the page links 10 products ...
    assert shown == ["click[Back to Search]", "click[Next >]"] + [f"click[{a}]" for a in state["products"][:5]]
    item = env.step(state, shown[2]).state  # ... the LATS observation shows 5
    options = [a for a in webshop_clickables(env.legal_actions(item), env.observation(item)) if a.islower()]
    assert options
    clicked = env.step(item, options[0]).state
    assert env.observation(clicked).startswith("You have clicked")  # the item page's clickables stay
    assert webshop_clickables(env.legal_actions(clicked), env.observation(clicked)) == webshop_clickables(
        env.legal_actions(item), env.observation(item)
    )


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("buy it", "is not search[<query>] or click[<element>]"),
        ("click[]", "is not search"),
        ("click[Nonexistent]", "there is no 'Nonexistent' to click"),
        ("click[Search]", "there is no 'Search' to click"),
        ("search[again]", "search is only possible on the search page"),
    ],
)
def test_invalid_actions_leave_the_state_unchanged(env: WebShopHttpEnv, action: str, message: str) -> None:
    state = env.step(env.reset("fixed_2"), "search[tea]").state
    before = json.dumps(state, sort_keys=True)
    result = env.step(state, action)
    assert not result.valid and result.message.startswith("Invalid action") and message in result.message
    assert result.state == state and json.dumps(state, sort_keys=True) == before


def test_actions_after_buying_are_invalid(env: WebShopHttpEnv, site: WebShopSite) -> None:
    done = solve(env, site, 1)[-1]
    result = env.step(done, "click[Back to Search]")
    assert not result.valid and "episode is over" in result.message


def test_states_are_json_and_steppable_twice(env: WebShopHttpEnv) -> None:
    state = env.step(env.reset("fixed_4"), "search[organic tea]").state
    copy = json.loads(json.dumps(state))
    first = env.step(copy, f"click[{state['products'][0]}]")
    second = env.step(state, f"click[{state['products'][0]}]")
    assert first == second and copy == state


def test_search_anywhere_option(server: RunningServer, site: WebShopSite) -> None:
    with WebShopHttpEnv(server.url, num_goals=len(site.goals), search_anywhere=True) as env:
        item = env.step(env.step(env.reset("fixed_2"), "search[tea]").state, "click[< Prev]")
        assert not item.valid  # page 1 has no "< Prev"
        results = env.step(env.reset("fixed_2"), "search[tea]").state
        again = env.step(results, "search[coffee]")
        assert again.valid and again.state["query"] == "coffee"


def test_text_observation_mode(server: RunningServer, site: WebShopSite) -> None:
    with WebShopHttpEnv(server.url, num_goals=len(site.goals), observation_mode="text") as env:
        state = env.step(env.reset("fixed_5"), "search[candle]").state
        assert env.observation(state).startswith("Instruction: [SEP] ")
        import httpx

        assert env.observation(state) == webshop_text(parse_page(httpx.get(state["url"]).text))


def test_unknown_tasks_raise(env: WebShopHttpEnv, site: WebShopSite) -> None:
    with pytest.raises(InvalidTaskError):
        env.reset(f"fixed_{len(site.goals)}")
    with pytest.raises(InvalidTaskError):
        env.reset("a/b")


def test_task_splits_follow_webshop() -> None:
    assert task_ids_for("test", 6910)[:2] == ["fixed_0", "fixed_1"] and len(task_ids_for("test", 6910)) == 500
    assert task_ids_for("dev", 6910)[0] == "fixed_500" and len(task_ids_for("dev", 6910)) == 1000
    assert task_ids_for("train", 6910)[0] == "fixed_1500" and len(task_ids_for("train", 6910)) == 5410
    assert task_ids_for("test", 13) == [f"fixed_{i}" for i in range(13)] and task_ids_for("train", 13) == []
    with pytest.raises(ValueError, match="unknown split"):
        task_ids_for("valid", 10)


def test_remote_env_needs_num_goals_for_splits(server: RunningServer) -> None:
    with WebShopHttpEnv(server.url) as env, pytest.raises(NotImplementedError, match="num_goals"):
        env.task_ids("test")


async def test_async_api(env: WebShopHttpEnv) -> None:
    state = await env.areset("fixed_7")
    result = await env.astep(state, "search[lamp]")
    assert result.valid and await env.alegal_actions(result.state) == env.legal_actions(result.state)
    assert await env.atrue_reward(result.state) == 0.0


def test_embedded_server_with_human_goals() -> None:
    with WebShopHttpEnv(goals="human") as env:
        assert env.task_ids("test") == [f"fixed_{i}" for i in range(13)]
        state = env.reset("fixed_0")
        assert env._server is not None and env.instruction(state) == env._server.site.goals[0]["instruction_text"]
        url = env.base_url
    import httpx

    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/fixed_0", timeout=2)
