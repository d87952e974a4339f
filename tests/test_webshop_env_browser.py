"""WebShopBrowserEnv in headless Chromium: the same states and observations as the HTTP env on whole episodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from langgraph_stl.envs.webshop.browser_env import WebShopBrowserEnv
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


def test_http_and_browser_agree_on_bad_actions(envs: tuple[WebShopHttpEnv, WebShopBrowserEnv]) -> None:
    """Bad actions included (a search the shop answers with a 400 among them): same validity, message and state."""
    http, browser = envs
    too_long = "a b " * 1100  # its keywords segment passes the server's cap: a 4xx page
    actions = [
        f"search[{too_long}]",
        "click[nope]",
        "jump[x]",
        "click[< Prev]",
        "search[desk lamp]",
        "search[again]",
        "click[< Prev]",
        "click[Next >]",
        "click[< Prev]",
        "click[Back to Search]",
        f"search[{too_long}]",
        "search[scented candle]",
    ]
    h, b = http.reset("fixed_4"), browser.reset("fixed_4")
    verdicts = []
    for action in actions:
        rh, rb = http.step(h, action), browser.step(b, action)
        assert (rh.valid, rh.message) == (rb.valid, rb.message), action
        assert {k: rh.state[k] for k in COMPARED} == {k: rb.state[k] for k in COMPARED}, action
        verdicts.append(rh.valid)
        h, b = rh.state, rb.state
    assert verdicts == [False, False, False, False, True, False, False, True, True, True, False, True]
    assert "answered 400" in http.step(http.reset("fixed_4"), f"search[{too_long}]").message


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


def test_option_click_without_the_page_script(server: RunningServer, site: WebShopSite) -> None:
    """The original's option script needs jQuery from a CDN and never runs offline: the radio's data-url is followed."""
    env = WebShopBrowserEnv(server.url, num_goals=len(site.goals), browser=shared_browser(), max_pages=1)
    try:
        asin, options = target_of(site, 6)
        state = env.step(env.reset("fixed_6"), f"search[{site.by_asin[asin]['Title']}]").state
        state = env.step(state, f"click[{asin}]").state

        async def strip_scripts() -> None:
            page, url = await env._acquire(state["url"])

            async def without_script(route: object) -> None:
                response = await route.fetch()  # type: ignore[attr-defined]
                body = (await response.text()).split("<script>")[0] + "</body></html>"
                await route.fulfill(response=response, body=body)  # type: ignore[attr-defined]

            await page.context.route("**/item_page/**", without_script)
            await page.reload(wait_until="domcontentloaded")  # the page the click happens on has no script either
            assert await page.locator('script:not([type="application/json"])').count() == 0
            await env._release(page, url)

        env.runner.run(strip_scripts())
        value = next(iter(options.values()))
        result = env.step(state, f"click[{value}]")
        assert result.valid and result.state["observation"] == f"You have clicked {value}."
        assert value in result.state["options"].values()
    finally:
        env.close()


def test_browser_search_anywhere(server: RunningServer, site: WebShopSite) -> None:
    env = WebShopBrowserEnv(server.url, num_goals=len(site.goals), browser=shared_browser(), search_anywhere=True)
    http = WebShopHttpEnv(server.url, num_goals=len(site.goals), search_anywhere=True)
    try:
        b = env.step(env.reset("fixed_2"), "search[green tea]").state
        h = http.step(http.reset("fixed_2"), "search[green tea]").state
        b2, h2 = env.step(b, "search[desk lamp]").state, http.step(h, "search[desk lamp]").state
        assert b2["query"] == "desk lamp" and {k: b2[k] for k in COMPARED} == {k: h2[k] for k in COMPARED}
    finally:
        env.close()
        http.close()
