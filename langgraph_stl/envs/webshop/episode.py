"""What the HTTP and browser environments share: the state schema, action parsing and click semantics.

A state is a JSON dict that fully describes one page of one session, so any state can be stepped again (tree search
branches from it) and checkpointed. Both environments build states with :func:`make_state` from the page's URL and
HTML, which is what makes their observations identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from langgraph_stl.envs.base import State
from langgraph_stl.envs.webshop import urls
from langgraph_stl.envs.webshop.text import Page, PageKind, lats_text, lats_url, parse_page, webshop_text

ObservationMode = Literal["lats", "text", "html"]
OBSERVATION_MODES: tuple[str, ...] = ("lats", "text", "html")
SUB_PAGE_BUTTONS = ("description", "features", "reviews", "attributes")
_ACTION = re.compile(r"^\s*(search|click)\[(.+)\]\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Action:
    """A parsed agent action: ``search`` with a query, or ``click`` on the displayed text of a clickable."""

    name: Literal["search", "click"]
    arg: str


@dataclass(frozen=True, slots=True)
class Click:
    """A resolved click: what is clicked and the path it leads to on a WebShop server."""

    target: str
    """The clickable's displayed text (``Buy Now``, an ASIN, an option value)."""
    kind: Literal["button", "product", "option"]
    path: str
    option_name: str | None = None


class InvalidAction(ValueError):
    """An action the current page does not allow; the message is what the agent is told."""


def parse_action(action: str) -> Action:
    """Parse ``search[...]`` / ``click[...]`` (WebShop's ``(.+)\\[(.+)\\]`` grammar, names case-insensitive)."""
    m = _ACTION.match(action) if isinstance(action, str) else None
    if m is None:
        raise InvalidAction(f"Invalid action: {action!r} is not search[<query>] or click[<element>]")
    name = m.group(1).lower()
    arg = m.group(2).strip()
    if not arg:
        raise InvalidAction(f"Invalid action: {action!r} has an empty argument")
    return Action("search" if name == "search" else "click", arg)


def path_state(url: str) -> dict[str, Any]:
    """Session, page kind and navigation fields encoded in a WebShop URL (unknown paths give kind ``other``)."""
    parts = urls.split_path(urlsplit(url).path)
    fields: dict[str, Any] = {"keywords": None, "page": None, "asin": None, "options": {}, "subpage": None}
    match parts:
        case [session]:
            return {"session": session, "kind": "search", **fields}
        case ["search_results", session, keywords, page]:
            return {
                "session": session,
                "kind": "results",
                **fields,
                "keywords": keywords,
                "page": urls.parse_page(page),
            }
        case ["item_page", session, asin, keywords, page, options]:
            return {
                "session": session,
                "kind": "item",
                **fields,
                "keywords": keywords,
                "page": urls.parse_page(page),
                "asin": asin,
                "options": urls.parse_options(options),
            }
        case ["item_sub_page", session, asin, keywords, page, subpage, options]:
            return {
                "session": session,
                "kind": "sub",
                **fields,
                "keywords": keywords,
                "page": urls.parse_page(page),
                "asin": asin,
                "options": urls.parse_options(options),
                "subpage": subpage,
            }
        case ["done", session, asin, options]:
            return {"session": session, "kind": "done", **fields, "asin": asin, "options": urls.parse_options(options)}
    return {"session": parts[0] if parts else "", "kind": "other", **fields}


def render(page: Page, mode: ObservationMode, *, html: str, lats_page_url: str) -> str:
    """The observation of ``page`` in ``mode``."""
    if mode == "html":
        return html
    if mode == "text":
        return webshop_text(page)
    return lats_text(page, lats_page_url)


def make_state(
    url: str,
    html: str,
    *,
    mode: ObservationMode,
    query: str | None,
    history: list[str],
    clicked_option: str | None = None,
    instruction: str = "",
) -> State:
    """The state of the page at ``url`` with content ``html``; ``query`` is the search text that led here.

    ``instruction`` is kept when the page shows none (the done page), so every state of an episode has it.
    """
    page = parse_page(html)
    fields = path_state(url)
    kind: PageKind = page.kind if page.kind != "other" else fields["kind"]
    if kind == "search":
        query = None
    lats_page_url = lats_url(
        fields["session"],
        kind,
        query=query or "",
        page=fields["page"] or 1,
        asin=fields["asin"] or "",
        options=fields["options"],
        subpage=fields["subpage"] or "",
    )
    observation = render(page, mode, html=html, lats_page_url=lats_page_url)
    if clicked_option is not None and mode == "lats":
        observation = f"You have clicked {clicked_option}."
    return {
        **fields,
        "url": url,
        "kind": kind,
        "query": query,
        "history": history,
        "observation": observation,
        "instruction": page.instruction or instruction,
        "clickables": page.click_targets,
        "products": list(page.product_links),
        "option_types": {value: name for name, value in page.options},
        "has_search_bar": page.has_search_bar,
        "reward": page.reward,
    }


def resolve_click(state: State, arg: str) -> Click:
    """Which clickable ``click[arg]`` designates on the state's page (case-insensitive) and where it leads."""
    wanted = arg.strip().lower()
    targets = {t.lower(): t for t in state["clickables"]}
    if wanted == "search" or wanted not in targets:
        shown = ", ".join(f"click[{t}]" for t in state["clickables"]) or "none"
        raise InvalidAction(f"Invalid action: there is no {arg!r} to click on this page (clickable: {shown})")
    target = targets[wanted]
    session, kind = state["session"], state["kind"]
    keywords, page, asin = state["keywords"], state["page"], state["asin"]
    options: dict[str, str] = dict(state["options"])
    option_types: dict[str, str] = state["option_types"]
    if target in option_types and kind == "item":  # a radio wins over a same-named button, as in WebShop
        name = option_types[target]
        options[name] = target
        return Click(target, "option", urls.item_page_path(session, asin, keywords, page, options), name)
    if kind == "results":  # the results page's links carry the parsed keywords list, as url_for writes them
        keywords = urls.parse_keywords(keywords)
    if target in state["products"]:
        return Click(target, "product", urls.item_page_path(session, target.upper(), keywords, page, {}))
    if wanted == "back to search":
        return Click(target, "button", urls.index_path(session))
    if wanted == "buy now" and kind == "item":
        return Click(target, "button", urls.done_path(session, asin, options))
    if wanted == "next >" and kind == "results":
        return Click(target, "button", urls.search_results_path(session, keywords, page + 1))
    if wanted == "< prev" and kind == "results":
        return Click(target, "button", urls.search_results_path(session, keywords, page - 1))
    if wanted == "< prev" and kind == "item":
        return Click(target, "button", urls.search_results_path(session, keywords, page))
    if wanted == "< prev" and kind == "sub":
        return Click(target, "button", urls.item_page_path(session, asin, keywords, page, options))
    if wanted in SUB_PAGE_BUTTONS and kind == "item":
        return Click(target, "button", urls.item_sub_page_path(session, asin, keywords, page, target, options))
    raise InvalidAction(f"Invalid action: clicking {target!r} is not supported on a {kind} page")


def check_search(state: State, query: str, *, search_anywhere: bool) -> None:
    """Raise :class:`InvalidAction` unless a search is allowed from this state."""
    if state["kind"] == "done":
        raise InvalidAction("Invalid action: the episode is over (the item was bought)")
    if not state["has_search_bar"] and not search_anywhere:
        raise InvalidAction("Invalid action: search is only possible on the search page; click[Back to Search] first")


def legal_actions(state: State) -> list[str] | None:
    """``click[...]`` for every clickable; None on a search page, whose free-text ``search[...]`` is open-ended."""
    if state["kind"] == "done":
        return []
    if state["has_search_bar"]:
        return None
    return [f"click[{t}]" for t in state["clickables"]]
