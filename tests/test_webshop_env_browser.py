"""WebShopBrowserEnv in headless Chromium: the same states and observations as the HTTP env on whole episodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from langgraph_stl.envs.webshop.browser_env import BrowserRunner, WebShopBrowserEnv
from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
from langgraph_stl.envs.webshop.server import RunningServer, WebShopSite, start_server
from tests._webshop_fixtures import shared_browser, target_of, webshop_site

pytestmark = [pytest.mark.slow, pytest.mark.browser]

COMPARED = ("observation", "kind", "clickables", "option_types", "options", "asin", "page", "reward", "query")


@pytest.fixture(scope="module")
def site() -> WebShopSite:
    return webshop_site("synthetic", True)


@pytest.fixture(scope="module")
def server(site: WebShopSite) -> Iterator[RunningServer]:
    with start_server(site) as running:
        yield running


@pytest.fixture(scope="module")
def envs(server: RunningServer, site: WebShopSite) -> Iterator[tuple[WebShopHttpEnv, WebShopBrowserEnv]]:
    runner = shared_browser()
    assert isinstance(runner, BrowserRunner)
    http = WebShopHttpEnv(server.url, num_goals=len(site.goals))
    browser = WebShopBrowserEnv(server.url, num_goals=len(site.goals), browser=runner, max_pages=3)
    yield http, browser
    http.close()
    browser.close()


def episodes(site: WebShopSite) -> list[tuple[int, list[str]]]:
    """A winning episode per goal with detours through every page type, and a losing one."""
    plays = []
    for index in (0, 6, 11):
        asin, options = target_of(site, index)
        actions = [f"search[{site.by_asin[asin]['Title'][:60]}]", "click[Next >]", "click[< Prev]", f"click[{asin}]"]
        actions += [f"click[{v}]" for v in options.values()]
        actions += ["click[Features]", "click[< Prev]", "click[Attributes]", "click[< Prev]", "click[Buy Now]"]
        plays.append((index, actions))
    plays.append((3, ["search[scented candle]", "click[Back to Search]", "search[desk lamp]", "click[Buy Now]"]))
    return plays


def test_http_and_browser_agree_on_whole_episodes(
    envs: tuple[WebShopHttpEnv, WebShopBrowserEnv], site: WebShopSite
) -> None:
    http, browser = envs
    for index, actions in episodes(site):
        h, b = http.reset(f"fixed_{index}"), browser.reset(f"fixed_{index}")
        assert {k: h[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
        for action in actions:
            if action == "click[Buy Now]" and h["kind"] != "item":  # the losing episode: buy whatever is first
                action = f"click[{h['products'][0]}]"
            rh, rb = http.step(h, action), browser.step(b, action)
            assert (rh.valid, rh.message) == (rb.valid, rb.message), action
            assert {k: rh.state[k] for k in COMPARED} == {k: rb.state[k] for k in COMPARED}, action
            h, b = rh.state, rb.state
    assert http.true_reward(h) == browser.true_reward(b)


def test_option_clicks_check_the_radio_in_the_rendered_page(
    envs: tuple[WebShopHttpEnv, WebShopBrowserEnv], site: WebShopSite
) -> None:
    _http, browser = envs
    asin, options = target_of(site, 6)
    state = browser.step(browser.reset("fixed_6"), f"search[{site.by_asin[asin]['Title']}]").state
    state = browser.step(state, f"click[{asin}]").state
    name, value = next(iter(options.items()))
    state = browser.step(state, f"click[{value}]").state
    assert state["options"] == {name: value}

    async def checked() -> list[str]:
        page, url = await browser._acquire(state["url"])
        try:
            assert url == state["url"]  # the page that did the click is reused
            return await page.eval_on_selector_all('input[type="radio"]:checked', "els => els.map(e => e.value)")
        finally:
            await browser._release(page, url)

    assert browser.runner.run(checked()) == [value]


async def test_parallel_branches_from_one_state(envs: tuple[WebShopHttpEnv, WebShopBrowserEnv]) -> None:
    http, browser = envs
    results = (await browser.astep(await browser.areset("fixed_2"), "search[men's shorts]")).state
    branches = [f"click[{asin}]" for asin in results["products"][:4]] + ["click[Next >]", "click[nope]"]
    stepped = await asyncio.gather(*(browser.astep(results, action) for action in branches))
    expected = [http.step(results, action) for action in branches]
    assert [r.valid for r in stepped] == [True] * 5 + [False]
    assert [r.state["observation"] for r in stepped] == [r.state["observation"] for r in expected]


def test_invalid_and_unknown(envs: tuple[WebShopHttpEnv, WebShopBrowserEnv], site: WebShopSite) -> None:
    from langgraph_stl.envs.base import InvalidTaskError

    _http, browser = envs
    state = browser.reset("fixed_1")
    result = browser.step(state, "click[Buy Now]")
    assert not result.valid and result.state == state and result.message.startswith("Invalid action")
    with pytest.raises(InvalidTaskError):
        browser.reset(f"fixed_{len(site.goals)}")
