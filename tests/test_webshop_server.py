"""The WebShop server: every route and page, URL encodings, bad input (always a 4xx, never a 500), safe parsing."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import httpx
import pytest
from bs4 import BeautifulSoup

from langgraph_stl.envs.webshop import get_reward, urls
from langgraph_stl.envs.webshop.server import RunningServer, WebShopSite, mturk_code, start_server
from langgraph_stl.envs.webshop.text import parse_page, webshop_text
from tests._webshop_fixtures import webshop_site


@pytest.fixture(scope="module")
def site() -> WebShopSite:
    return webshop_site("synthetic", True)


@pytest.fixture(scope="module")
def server(site: WebShopSite) -> Iterator[RunningServer]:
    with start_server(site) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, follow_redirects=False) as c:
        yield c


def soup(response: httpx.Response) -> BeautifulSoup:
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "html.parser")


def an_item_with_options(site: WebShopSite) -> dict:
    return next(p for p in site.products if len(p["options"]) >= 2)


# -- URL parsing --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keywords",
    [["silver", "wig"], ["men's", "shorts"], ['20"', "x", '20"'], ["back\\slash", 'it\'s "both"'], ["café", "✓"], [""]],
)
def test_keywords_round_trip_every_encoding(keywords: list[str]) -> None:
    literal = str(keywords)
    assert urls.parse_keywords(literal) == keywords
    for encoded in (urls.keywords_segment(keywords), quote(literal, safe=""), quote_plus(literal)):
        decoded = urls.split_path("/" + encoded)[0]
        assert urls.parse_keywords(decoded) == keywords  # "+" for a space included


@pytest.mark.parametrize("options", [{}, {"size": "x-large", "color": "navy"}, {"size": '28" x 28"'}, {"a": "it's"}])
def test_options_round_trip(options: dict[str, str]) -> None:
    assert urls.parse_options(str(options)) == options
    assert urls.parse_options(urls.split_path("/" + urls.options_segment(options))[0]) == options


def test_plain_keyword_string_is_one_keyword() -> None:
    assert urls.parse_keywords("silver wig") == ["silver wig"]
    assert urls.parse_keywords("silver+wig") == ["silver+wig"]  # the tokenizer splits on "+", like Lucene's


@pytest.mark.parametrize(
    "bad",
    ["[", "['a'", "[1]", "['a' 'b']", "[]", "[__import__('os').system('true')]", "['a'] + ['b']", "[{'a': 'b'}]"],
)
def test_malformed_keywords_are_rejected_without_evaluation(bad: str) -> None:
    with pytest.raises(urls.UrlValueError):
        urls.parse_keywords(bad)


@pytest.mark.parametrize("bad", ["{", "{'a'}", "{'a': 1}", "x", "{'a': 'b'", "{'a': print('x')}", "['a']", "{**x}"])
def test_malformed_options_are_rejected(bad: str) -> None:
    with pytest.raises(urls.UrlValueError):
        urls.parse_options(bad)


def test_url_format_matches_werkzeug() -> None:
    """Spec section 7: Werkzeug 2.1 leaves quotes, commas and colons unencoded."""
    assert urls.search_results_path("fixed_1", ["gluten", "free"], 2) == (
        "/search_results/fixed_1/%5B'gluten',%20'free'%5D/2"
    )
    assert urls.done_path("fixed_2", "B09Q5ZHRVM", {"color": "black", "size": "small"}) == (
        "/done/fixed_2/B09Q5ZHRVM/%7B'color':%20'black',%20'size':%20'small'%7D"
    )


# -- routes and pages ---------------------------------------------------------------------------------------------


def test_root_redirects_to_abc_and_random_session_gets_a_goal(client: httpx.Client, site: WebShopSite) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response.headers["location"] == "/abc"
    page = soup(client.get("/abc"))
    assert page.find(id="instruction-text").h4.get_text().startswith("Instruction:")
    assert page.find(id="search_input") is not None


def test_search_page(client: httpx.Client, site: WebShopSite) -> None:
    response = client.get("/fixed_0")
    page = soup(response)
    assert page.select_one("input#search_input[name=search_query]") is not None
    assert [b.get_text() for b in page.select(".btn")] == ["Search"]
    instruction = site.goals[0]["instruction_text"]
    assert webshop_text(parse_page(response.text)) == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    assert "googleapis" not in response.text and "cdn" not in response.text.lower()


def test_search_post_redirects_like_flask(client: httpx.Client) -> None:
    response = client.post("/fixed_0", data={"search_query": "Men's Navy Shorts"})
    assert response.status_code == 302
    assert response.headers["location"] == "/search_results/fixed_0/%5B%22men's%22,%20'navy',%20'shorts'%5D/1"
    # a POST without a query (the Back to Search button) shows the search page
    assert soup(client.post("/fixed_0")).find(id="search_input") is not None


def test_results_pages(client: httpx.Client, site: WebShopSite) -> None:
    keywords = ["men", "shorts"]
    total = len(site.top_products(keywords))
    assert 10 < total <= 50
    first = soup(client.get(urls.search_results_path("fixed_0", keywords, 1)))
    assert first.h3.get_text() == f"Page 1 (Total results: {total})"
    assert [b.get_text() for b in first.select(".btn")] == ["Back to Search", "Next >"]
    links = first.select("a.product-link")
    assert len(links) == 10
    assert (
        len(first.select("img.result-img"))
        == len(first.select(".product-title"))
        == len(first.select(".product-price"))
        == 10
    )
    asin = links[0].get_text()
    assert links[0]["href"] == urls.item_page_path("fixed_0", asin, keywords, 1, {})
    second = soup(client.get(urls.search_results_path("fixed_0", keywords, 2)))
    assert [b.get_text() for b in second.select(".btn")] == ["Back to Search", "< Prev", "Next >"]
    assert {a.get_text() for a in second.select(".product-link")}.isdisjoint(a.get_text() for a in links)
    sixth = soup(client.get(urls.search_results_path("fixed_0", keywords, 6)))
    assert sixth.select(".product-link") == [] and "Next >" in [b.get_text() for b in sixth.select(".btn")]


def test_special_search_prefixes(client: httpx.Client, site: WebShopSite) -> None:
    category = soup(client.get(urls.search_results_path("fixed_0", ["<c>", "grocery"], 1)))
    asins = [a.get_text() for a in category.select(".product-link")]
    assert asins and all(site.by_asin[a]["category"] == "grocery" for a in asins)
    assert category.h3.get_text().endswith(f"(Total results: {sum(p['category'] == 'grocery' for p in site.products)})")
    query = site.products[0]["query"]
    by_query = soup(client.get(urls.search_results_path("fixed_0", ["<q>", *query.split(" ")], 1)))
    assert all(site.by_asin[a.get_text()]["query"] == query for a in by_query.select(".product-link"))
    assert len(soup(client.get(urls.search_results_path("fixed_0", ["<r>"], 1))).select(".product-link")) == 10


def test_item_page(client: httpx.Client, site: WebShopSite) -> None:
    product = an_item_with_options(site)
    asin, keywords = product["asin"], ["dress"]
    chosen = {name: values[-1] for name, values in list(product["options"].items())[:1]}
    page = soup(client.get(urls.item_page_path("fixed_0", asin, keywords, 1, chosen)))
    assert [b.get_text() for b in page.select(".btn")] == [
        "Back to Search",
        "< Prev",
        "Description",
        "Features",
        "Reviews",
        "Attributes",
        "Buy Now",
    ]
    assert page.select_one("button.purchase").get_text() == "Buy Now"
    assert page.select_one("img#product-image")["src"] == product["MainImage"]
    assert page.h2.get_text() == product["Title"]
    assert f"Price: {product['Price']}" in page.get_text() and "Rating: N.A." in page.get_text()
    for name, values in product["options"].items():
        radios = page.select(f'input[type="radio"][name="{name}"]')
        assert [r["value"] for r in radios] == values
        for i, radio in enumerate(radios):
            assert radio["id"] == f"radio_{name}{i}"
            assert page.select_one(f'label[for="radio_{name}{i}"]').get_text() == values[i]
            expected = urls.item_page_path("fixed_0", asin, str(keywords), "1", {**chosen, name: values[i]})
            assert radio["data-url"] == expected
    prev_form = page.select(".btn")[1].find_parent("form")
    assert prev_form["action"] == urls.search_results_path("fixed_0", keywords, 1)
    buy_form = page.select_one("button.purchase").find_parent("form")
    assert buy_form["action"] == urls.done_path("fixed_0", asin, chosen)
    scripts = page.find_all("script")
    assert scripts and not any(s.get("src") for s in scripts)  # inline only: no CDN
    assert not any(link["href"].startswith("http") for link in page.find_all("link"))


def test_item_page_without_attributes_tab_still_serves_attributes(site: WebShopSite) -> None:
    no_attrs = webshop_site("synthetic", False)
    product = an_item_with_options(site)
    with start_server(no_attrs) as running, httpx.Client(base_url=running.url) as c:
        page = soup(c.get(urls.item_page_path("fixed_0", product["asin"], ["x"], 1, {})))
        assert "Attributes" not in [b.get_text() for b in page.select(".btn")]
        sub = soup(c.get(urls.item_sub_page_path("fixed_0", product["asin"], ["x"], 1, "Attributes", {})))
        assert [p.get_text() for p in sub.select("p.attribute")] == [f" {a}" for a in product["Attributes"]]


@pytest.mark.parametrize("sub_page", ["Description", "Features", "Reviews", "Attributes"])
def test_sub_pages(client: httpx.Client, site: WebShopSite, sub_page: str) -> None:
    product = next(p for p in site.products if p["Description"] and p["BulletPoints"] and p["Attributes"])
    options = {"size": "large"}
    page = soup(client.get(urls.item_sub_page_path("fixed_0", product["asin"], ["tea"], 3, sub_page, options)))
    assert [b.get_text() for b in page.select(".btn")] == ["Back to Search", "< Prev"]
    prev_form = page.select(".btn")[1].find_parent("form")
    assert prev_form["action"] == urls.item_page_path("fixed_0", product["asin"], str(["tea"]), "3", options)
    text = page.get_text()
    if sub_page == "Description":
        assert page.select_one("p.product-info").get_text() == product["Description"]
    elif sub_page == "Features":
        assert [p.get_text() for p in page.select("p.product-info")] == [f" {b}" for b in product["BulletPoints"]]
    elif sub_page == "Attributes":
        assert product["category"] in text and product["product_category"] in text
    else:
        assert page.select(".card") == []  # reviews are empty in the catalogue, as in the original


def test_done_page_shows_the_reward(client: httpx.Client, site: WebShopSite) -> None:
    goal = site.goals[6]
    product = site.by_asin[goal["asin"]]
    options = dict(goal["goal_options"])
    response = client.get(urls.done_path("fixed_6", goal["asin"], options))
    page = soup(response)
    expected = get_reward(product, goal, site.product_prices[goal["asin"]], options)
    assert expected == 1.0
    assert page.select_one("#reward pre").get_text() == str(expected)
    assert page.h1.get_text() == "Thank you for shopping with us!"
    assert mturk_code("fixed_6") in page.get_text()
    assert page.select_one("#goal-asin pre").get_text() == goal["asin"]
    assert parse_page(response.text).reward == 1.0
    assert site.sessions["fixed_6"].done and site.sessions["fixed_6"].reward == 1.0


def test_every_encoding_of_a_url_gives_the_same_page(client: httpx.Client, site: WebShopSite) -> None:
    product = an_item_with_options(site)
    name, values = next(iter(product["options"].items()))
    keywords, options = ["women's", "dress"], {name: values[0]}
    werkzeug = urls.item_page_path("fixed_0", product["asin"], keywords, 1, options)
    full = f"/item_page/fixed_0/{product['asin']}/{quote(str(keywords), safe='')}/1/{quote(str(options), safe='')}"
    plus = f"/item_page/fixed_0/{product['asin']}/{quote_plus(str(keywords))}/1/{quote_plus(str(options))}"
    pages = [client.get(path) for path in (werkzeug, full, plus)]
    assert all(p.status_code == 200 for p in pages)
    assert webshop_text(parse_page(pages[0].text)) == webshop_text(parse_page(pages[1].text))
    assert webshop_text(parse_page(pages[0].text)) == webshop_text(parse_page(pages[2].text))
    results = [
        client.get(f"/search_results/fixed_0/{seg}/1")
        for seg in (urls.keywords_segment(keywords), quote(str(keywords), safe=""), quote_plus(str(keywords)))
    ]
    assert len({webshop_text(parse_page(r.text)) for r in results}) == 1


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/search_results/nosuchsession/%5B'a'%5D/1", 404, "unknown session"),
        ("/fixed_999999", 404, "unknown session"),
        ("/fixed_x", 404, "unknown session"),
        ("/item_page/fixed_0/B000000000/%5B'a'%5D/1/%7B%7D", 404, "unknown product"),
        ("/done/fixed_0/NOPE/%7B%7D", 404, "unknown product"),
        ("/search_results/fixed_0/%5B'a'/1", 400, "malformed keywords"),
        ("/search_results/fixed_0/%5B__import__('os')%5D/1", 400, "malformed keywords"),
        ("/search_results/fixed_0/%5B%5D/1", 400, "empty"),
        ("/search_results/fixed_0/%5B'a'%5D/0", 400, "positive integer"),
        ("/search_results/fixed_0/%5B'a'%5D/abc", 400, "positive integer"),
        ("/item_page/fixed_0/B07B6DVG41/%5B'a'%5D/1/%7B'a'%7D", 400, "malformed options"),
        ("/done/fixed_0/B07B6DVG41/%7B'a':%201%7D", 400, "malformed options"),
        ("/item_sub_page/fixed_0/B07B6DVG41/%5B'a'%5D/1/Secrets/%7B%7D", 404, "unknown sub-page"),
        ("/no/such/route", 404, "no such page"),
        ("/fixed_0/%ff", 400, "UTF-8"),
    ],
)
def test_bad_input_is_a_clear_4xx(client: httpx.Client, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert message in BeautifulSoup(response.text, "html.parser").select_one("#error-message").get_text()


def test_oversized_segments_and_bodies_are_refused(client: httpx.Client) -> None:
    long_keywords = quote(str(["a" * 5000]))
    assert client.get(f"/search_results/fixed_0/{long_keywords}/1").status_code == 400
    assert client.post("/fixed_0", content=b"search_query=" + b"a" * 70000).status_code == 413


def test_embedded_server_stops_cleanly(site: WebShopSite) -> None:
    running = start_server(site)
    assert httpx.get(running.url + "/fixed_1").status_code == 200
    running.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(running.url + "/fixed_1", timeout=2)


def test_serve_cli_rejects_unknown_goal_kind() -> None:
    from typer.testing import CliRunner

    from langgraph_stl.cli import app

    result = CliRunner().invoke(app, ["webshop", "serve", "--goals", "robots"])
    assert result.exit_code != 0 and "synthetic or human" in result.output


def test_serve_cli_reports_missing_data(tmp_path: object) -> None:
    from typer.testing import CliRunner

    from langgraph_stl.cli import app

    result = CliRunner().invoke(app, ["webshop", "serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no WebShop catalogue" in result.output


@pytest.mark.slow
def test_serve_cli_serves_the_shop(data_dir: object) -> None:
    import subprocess
    import sys
    import time

    from langgraph_stl.envs.webshop.server import free_port
    from tests.conftest import REPO

    port = free_port()
    cmd = [sys.executable, "-m", "langgraph_stl", "webshop", "serve", "--port", str(port), "--goals", "human"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/fixed_0", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        human = webshop_site("human", False)
        assert human.goals[0]["instruction_text"] in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/fixed_13").status_code == 404  # 13 human goals on the 1k data
    finally:
        proc.terminate()
        proc.wait(10)
