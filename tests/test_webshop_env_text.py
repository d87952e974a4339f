"""Observations: the fast page parser against BeautifulSoup's tree, and both renderings on every page type.

The reference functions below transcribe WebShop's ``convert_html_to_text(simple=True)`` and
``get_available_actions`` (BeautifulSoup ``html.parser``), which define the ``text`` observation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup
from bs4.element import Comment

from langgraph_stl.envs.webshop import urls
from langgraph_stl.envs.webshop.server import WebShopSite, start_server
from langgraph_stl.envs.webshop.text import clean_str, lats_text, lats_url, parse_page, webshop_text
from tests._webshop_fixtures import webshop_site


def reference_text(html: str) -> str:
    def visible(element: object) -> bool:
        return element.parent.name not in {"style", "script", "head", "title", "meta", "[document]"} and not (  # type: ignore[attr-defined]
            isinstance(element, Comment)
        )

    texts = BeautifulSoup(html, "html.parser").find_all(string=True)
    return " [SEP] ".join(t.strip() for t in filter(visible, texts) if t != "\n")


def reference_clickables(html: str) -> tuple[bool, list[str]]:
    page = BeautifulSoup(html, "html.parser")
    found = {b.get_text().lower(): b for b in page.find_all(class_="btn") + page.find_all(class_="product-link")}
    for radio in page.select('input[type="radio"]'):
        found[radio.get("value")] = radio
    return page.find(id="search_input") is not None, list(found)


@pytest.fixture(scope="module")
def site() -> WebShopSite:
    return webshop_site("synthetic", True)


@pytest.fixture(scope="module")
def pages(site: WebShopSite) -> Iterator[dict[str, list[tuple[str, str]]]]:
    """(path, html) of every page type over a spread of products, fetched from a running server."""
    sid = "fixed_3"
    products = [p for p in site.products if p["options"]][:8] + [p for p in site.products if not p["options"]][:4]
    paths: dict[str, list[str]] = {"search": [f"/{sid}"], "results": [], "item": [], "sub": [], "done": []}
    for keywords in (["shorts"], ["organic", "tea"], ["hair", "shampoo", "sulfate", "free"]):
        paths["results"] += [urls.search_results_path(sid, keywords, page) for page in (1, 2, 6)]
    for p in products:
        chosen = {name: values[-1] for name, values in p["options"].items()}
        paths["item"] += [
            urls.item_page_path(sid, p["asin"], ["x"], 1, {}),
            urls.item_page_path(sid, p["asin"], ["x"], 1, chosen),
        ]
        paths["sub"] += [
            urls.item_sub_page_path(sid, p["asin"], ["x"], 1, s, chosen)
            for s in ("Description", "Features", "Reviews", "Attributes")
        ]
        paths["done"].append(urls.done_path(sid, p["asin"], chosen))
    with start_server(site) as running, httpx.Client(base_url=running.url) as client:
        yield {kind: [(path, client.get(path).text) for path in group] for kind, group in paths.items()}


@pytest.mark.parametrize("kind", ["search", "results", "item", "sub", "done"])
def test_parser_matches_beautifulsoup_on_every_page_type(pages: dict[str, list[tuple[str, str]]], kind: str) -> None:
    for _path, html in pages[kind]:
        page = parse_page(html)
        assert page.kind == kind
        assert webshop_text(page) == reference_text(html)
        assert (page.has_search_bar, page.clickables) == reference_clickables(html)


def test_parser_follows_bs4_tree_rules_on_malformed_html() -> None:
    """Stray and mismatched end tags, void elements, comments, entities and whitespace-only strings."""
    html = (
        "<html><head><title>t</title><style>x{}</style></head><body><div><h4>a<br>b</h5><p>c</p></div>\n"
        "<p><pre>  keep  </pre> tail</p><h4 id='asin'>asin<pre>B0</pre></p><span> </span><span>\n </span>"
        "<!-- hidden --><button class='btn x'><i></i>&lt; Prev</button><a class='product-link'>B01</a>"
        "<input type='radio' name='size' value='l'><label>l&amp;m &#8482; &#150; &nope;</label></img></body></html>"
    )
    page = parse_page(html)
    assert webshop_text(page) == reference_text(html)
    assert (page.has_search_bar, page.clickables) == reference_clickables(html)
    assert [n.parent for n in page.nodes if n.text.strip() == "tail"] == ["p"]


def test_clickables_follow_webshop_examples(pages: dict[str, list[tuple[str, str]]]) -> None:
    assert parse_page(pages["search"][0][1]).clickables == ["search"]
    results = parse_page(pages["results"][1][1])  # page 2
    assert results.clickables[:3] == ["back to search", "< prev", "next >"]
    assert all(c == c.lower() and c.upper() in results.product_links for c in results.clickables[3:])
    item = parse_page(pages["item"][1][1])
    assert item.clickables[:7] == [
        "back to search",
        "< prev",
        "description",
        "features",
        "reviews",
        "attributes",
        "buy now",
    ]
    assert item.clickables[7:] == [value for _name, value in item.options]


def test_lats_search_page_keeps_the_instruction(pages: dict[str, list[tuple[str, str]]], site: WebShopSite) -> None:
    text = lats_text(parse_page(pages["search"][0][1]))
    assert text == f"\nWebShop \nInstruction:  \n{site.goals[3]['instruction_text']} \n[Search] "


def test_lats_results_show_at_most_five_products(pages: dict[str, list[tuple[str, str]]], site: WebShopSite) -> None:
    _path, html = pages["results"][0]
    page = parse_page(html)
    text = lats_text(page)
    assert len(page.product_links) == 10
    assert text.startswith("\n[Back to Search] \nPage 1 (Total results: ")
    assert "Instruction" not in text
    shown = [a for a in page.product_links if f"\n[{a}] " in text]
    assert shown == list(page.product_links[:5])
    titles = [site.by_asin[a]["Title"] for a in page.product_links]
    assert all(f"\n{t} " in text for t in titles[:5])
    assert not any(f"\n{t} " in text for t in titles[5:])


def test_lats_item_page_marks_selected_options(pages: dict[str, list[tuple[str, str]]], site: WebShopSite) -> None:
    path, html = pages["item"][1]  # every option set to its last value
    fields = path.split("/")
    asin = fields[3]
    product = site.by_asin[asin]
    chosen = {name: values[-1] for name, values in product["options"].items()}
    text = lats_text(parse_page(html), lats_url("fixed_3", "item", query="x", asin=asin, options=chosen))
    for name, values in product["options"].items():
        line = name + " " + "".join(f"[{v}]" for v in values[:-1]) + f"[[{values[-1]}]]"
        assert f"\n{line}" in text
    assert text.endswith("\n[Description] \n[Features] \n[Reviews] \n[Attributes] \n[Buy Now] ")
    assert f"\n{product['Title']} \nPrice: {product['Price']} \nRating: N.A. " in text


def test_lats_done_page_is_the_score(pages: dict[str, list[tuple[str, str]]]) -> None:
    page = parse_page(pages["done"][0][1])
    assert page.reward is not None
    assert lats_text(page) == f"Your score (min 0.0, max 1.0): {page.reward}"


def test_lats_item_page_matches_the_stl_papers_recorded_observation(site: WebShopSite, data_dir: object) -> None:
    """B08T9KJJPZ is in the 1k catalogue and in the STL paper's training data (server run with --attrs)."""
    from pathlib import Path

    recorded = None
    for path in sorted(Path(str(data_dir), "stl_reference/webshop/improvement_data").glob("*.json")):
        for example in json.loads(path.read_text()):
            for turn in example:
                marker = "Action: click[B08T9KJJPZ]\nObservation: \n"
                if marker in turn["value"]:
                    recorded = turn["value"].split(marker, 1)[1].split("\n\nAction:")[0].split("\nCurrent Action:")[0]
                    break
    assert recorded is not None
    with start_server(site) as running:
        html = httpx.get(running.url + urls.item_page_path("fixed_3", "B08T9KJJPZ", "avon eye", 1, {})).text
    assert lats_text(parse_page(html), "") == "\n" + recorded


def test_clean_str_decodes_escapes_and_survives_bad_ones() -> None:
    assert clean_str("tab\\tnewline\\n") == "tab\tnewline\n"
    assert clean_str("café") == "café"
    # LATS's own clean_str raises on these (a bad escape, a non-Latin-1 result): keep them as they are
    assert clean_str("bad \\x escape") == "bad \\x escape"
    assert clean_str("caf\\u00e9") == "caf\\u00e9"
