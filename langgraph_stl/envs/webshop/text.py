"""Observations of WebShop pages: pure functions from a page's HTML to what an agent sees.

Two renderings exist and both are reproduced exactly, so any WebShop server (this project's or the original Flask
app) yields the same text:

* :func:`webshop_text` is WebShop's own ``text`` observation mode (``WebAgentTextEnv``): every visible text node,
  stripped, joined by ``' [SEP] '``.
* :func:`lats_text` is the rendering of the ReAct / LATS / STL clients (``webshop_text`` in their code), which the
  STL paper's prompts and value-model training data use: buttons ``\\n[X] ``, option labels ``[x]`` (``[[x]]`` when
  selected), product links ``\\n[ASIN] `` for at most 5 products, other text ``\\n<text> `` minus the instruction.

Both are defined on BeautifulSoup's ``html.parser`` tree, whose whitespace rules (whitespace-only strings collapse to
``'\\n'`` or ``' '``) decide which nodes survive; :func:`parse_page` reproduces that tree's text nodes directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Literal

from bs4.builder._htmlparser import BeautifulSoupHTMLParser
from bs4.dammit import EntitySubstitution

PageKind = Literal["search", "results", "item", "sub", "done", "other"]

SCORE_LABEL = "Your score (min 0.0, max 1.0)"
LATS_MAX_PRODUCTS = 5
"""LATS/STL show at most this many products per results page (``prod_cnt >= 5``)."""

_IGNORED_PARENTS = frozenset({"style", "script", "head", "title", "meta", "[document]"})


@dataclass(frozen=True, slots=True)
class TextNode:
    """One visible text node: its raw string and what its parent says about it."""

    text: str
    parent: str
    product_link: bool


@dataclass(frozen=True, slots=True)
class Page:
    """A parsed WebShop page: the facts every observation and action check needs, extracted in one pass."""

    kind: PageKind
    nodes: tuple[TextNode, ...]
    buttons: tuple[str, ...]
    """Text of every ``.btn`` element in DOM order, as displayed (``Back to Search``, ``Next >``...)."""
    product_links: tuple[str, ...]
    """Text of every ``.product-link`` (the ASINs)."""
    options: tuple[tuple[str, str], ...]
    """``(name, value)`` of every radio input, in DOM order."""
    has_search_bar: bool
    instruction: str
    reward: float | None = None
    option_types: dict[str, str] = field(default_factory=dict)
    """Option value -> option name, as the LATS client records them."""

    @property
    def clickables(self) -> list[str]:
        """WebShop's ``get_available_actions()['clickables']``: lowercased buttons and links, then radio values."""
        keys: dict[str, None] = {}
        for text in (*self.buttons, *self.product_links):
            keys.setdefault(text.lower(), None)
        for _name, value in self.options:
            keys.setdefault(value, None)
        return list(keys)

    @property
    def click_targets(self) -> list[str]:
        """The clickables as displayed (original case), de-duplicated, in WebShop's order; ``Search`` excluded."""
        seen: dict[str, None] = {}
        for text in (*self.buttons, *self.product_links):
            if text.lower() != "search":
                seen.setdefault(text, None)
        for _name, value in self.options:
            seen.setdefault(value, None)
        return list(seen)


_EMPTY_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "menuitem",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
        "basefont",
        "bgsound",
        "command",
        "frame",
        "image",
        "isindex",
        "nextid",
        "spacer",
    }
)
_PRESERVE_WHITESPACE = frozenset({"pre", "textarea"})
_ASCII_SPACES = "\x20\x0a\x09\x0c\x0d"


class _Element:
    __slots__ = ("attrs", "classes", "collect", "name")

    def __init__(self, name: str, attrs: dict[str, str]) -> None:
        self.name = name
        self.attrs = attrs
        self.classes = attrs.get("class", "").split()
        self.collect: list[str] | None = None


class _Extractor(HTMLParser):
    """The text nodes and widgets of a page, exactly as BeautifulSoup's ``html.parser`` tree would give them.

    It replays bs4's tree-building rules (void elements close at once, a stray end tag is ignored, an end tag pops
    up to its most recent open match, whitespace-only strings collapse to ``'\\n'``/``' '`` outside ``pre``) without
    building the tree, which makes a step several times faster; a test checks it against bs4 on every page type.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[_Element] = []
        self.data: list[str] = []
        self.closed_empty: list[str] = []
        self.nodes: list[TextNode] = []
        self.buttons: list[_Element] = []
        self.links: list[_Element] = []
        self.radios: list[tuple[str, str]] = []
        self.has_search_bar = False
        self.instruction: _Element | None = None
        self.in_instruction = 0
        self.preserve = 0  # open <pre>/<textarea> elements
        self.collecting = 0  # open elements whose text is collected

    # -- bs4's BeautifulSoup.endData / pushTag / _popToTag ----------------------------------------------------
    def end_data(self, comment: bool = False) -> None:
        if not self.data:
            return
        text = "".join(self.data)
        self.data = []
        if not self.preserve and not text.strip(_ASCII_SPACES):
            text = "\n" if "\n" in text else " "
        if comment:
            return
        parent = self.stack[-1] if self.stack else None
        parent_name = parent.name if parent is not None else "[document]"
        if self.collecting:
            for element in self.stack:
                if element.collect is not None:
                    element.collect.append(text)
        if parent_name not in _IGNORED_PARENTS:
            self.nodes.append(TextNode(text, parent_name, parent is not None and parent.classes == ["product-link"]))

    def pop_to(self, name: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].name == name:
                for element in self.stack[i:]:
                    self._count(element, -1)
                del self.stack[i:]
                return

    def _count(self, element: _Element, delta: int) -> None:
        """Keep the open-element counters that spare ``end_data`` a walk over the stack."""
        if element.attrs.get("id") == "instruction-text":
            self.in_instruction += delta
        if element.name in _PRESERVE_WHITESPACE:
            self.preserve += delta
        if element.collect is not None:
            self.collecting += delta

    # -- bs4's BeautifulSoupHTMLParser handlers ---------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]], empty: bool = True) -> None:
        self.end_data()
        values = {key: value or "" for key, value in attrs}
        element = _Element(tag, values)
        if "btn" in element.classes or values.get("class") == "btn":
            element.collect = []
            self.buttons.append(element)
        if "product-link" in element.classes or values.get("class") == "product-link":
            element.collect = []
            self.links.append(element)
        if values.get("id") == "search_input":
            self.has_search_bar = True
        if tag == "input" and values.get("type", "").lower() == "radio":
            self.radios.append((values.get("name", ""), values.get("value", "")))
        if tag == "h4" and self.in_instruction and self.instruction is None:
            element.collect = []
            self.instruction = element
        self._count(element, +1)
        self.stack.append(element)
        if empty and tag in _EMPTY_ELEMENTS:
            self.handle_endtag(tag, check_closed=False)
            self.closed_empty.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs, empty=False)
        self.handle_endtag(tag, check_closed=False)

    def handle_endtag(self, tag: str, check_closed: bool = True) -> None:
        if check_closed and tag in self.closed_empty:
            self.closed_empty.remove(tag)
            return
        self.end_data()
        self.pop_to(tag)

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    def handle_charref(self, name: str) -> None:
        text, _replaced, extra = BeautifulSoupHTMLParser._dereference_numeric_character_reference(name)
        self.data.append(text or "")
        self.data.append(extra or "")

    def handle_entityref(self, name: str) -> None:
        character = EntitySubstitution.HTML_ENTITY_TO_CHARACTER.get(name)
        self.data.append(character if character is not None else f"&{name}")

    def handle_comment(self, data: str) -> None:
        self.end_data()
        self.data.append(data)
        self.end_data(comment=True)

    def _special(self, data: str) -> None:
        self.end_data()
        self.data.append(data)
        self.end_data()

    def handle_decl(self, decl: str) -> None:
        self._special(decl[len("DOCTYPE ") :])

    def unknown_decl(self, data: str) -> None:
        self._special(data[len("CDATA[") :] if data.upper().startswith("CDATA[") else data)

    def handle_pi(self, data: str) -> None:
        self._special(data)


def parse_page(html: str) -> Page:
    """Parse a WebShop page once; all renderings and clickables derive from the result."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    parser.end_data()
    nodes = parser.nodes
    instruction = ""
    if parser.instruction is not None and parser.instruction.collect is not None:
        instruction = re.sub(r"^Instruction:\s*", "", "".join(parser.instruction.collect).strip())
    buttons = tuple("".join(b.collect or ()) for b in parser.buttons)
    reward = _reward(nodes)
    return Page(
        kind=_kind(parser.has_search_bar, reward is not None, buttons),
        nodes=tuple(nodes),
        buttons=buttons,
        product_links=tuple("".join(a.collect or ()) for a in parser.links),
        options=tuple(parser.radios),
        has_search_bar=parser.has_search_bar,
        instruction=instruction,
        reward=reward,
        option_types=_lats_option_types(nodes),
    )


def _kind(has_search_bar: bool, has_reward: bool, buttons: tuple[str, ...]) -> PageKind:
    lowered = {b.strip().lower() for b in buttons}
    if has_search_bar:
        return "search"
    if has_reward:
        return "done"
    if "buy now" in lowered:
        return "item"
    if "next >" in lowered:
        return "results"
    if "< prev" in lowered:
        return "sub"
    return "other"


def _reward(nodes: list[TextNode]) -> float | None:
    """The score after ``Your score (min 0.0, max 1.0)``, read as ReAct/LATS do (the next text node)."""
    texts = [n.text for n in nodes]
    if SCORE_LABEL not in texts:
        return None
    idx = texts.index(SCORE_LABEL)
    try:
        return float(texts[idx + 1])
    except (IndexError, ValueError):
        return None


def _blank(text: str) -> bool:
    return text.replace("\n", "").replace("\\n", "").replace(" ", "") == ""


def _lats_option_types(nodes: list[TextNode]) -> dict[str, str]:
    option_type = ""
    types: dict[str, str] = {}
    for node in nodes:
        if node.text == "\n" or _blank(node.text):
            continue
        if node.parent == "label":
            types[node.text] = option_type
        elif node.parent != "button" and not node.product_link:
            option_type = node.text
    return types


def webshop_text(page: Page) -> str:
    """WebShop's ``text`` observation: ``' [SEP] '.join(t.strip() for t in visible_texts if t != '\\n')``."""
    return " [SEP] ".join(n.text.strip() for n in page.nodes if n.text != "\n")


def lats_text(page: Page, url: str = "") -> str:
    """The ReAct/LATS/STL observation of a page.

    ``url`` is the client-side URL of the page as LATS builds it (see :func:`lats_url`): an option label ``x`` is
    shown selected (``[[x]]``) when ``'x'`` occurs in it, exactly as in LATS. On the done page the observation is
    ``Your score (min 0.0, max 1.0): <score>``.
    """
    if page.reward is not None:
        idx = [n.text for n in page.nodes].index(SCORE_LABEL)
        return f"{SCORE_LABEL}: {page.nodes[idx + 1].text}"
    init = page.kind == "search"
    parts: list[str] = []
    others = products = since_product = 0
    for node in page.nodes:
        text = node.text
        if text == "\n" or _blank(text):
            continue
        if node.parent == "button":
            out = f"\n[{text}] "
        elif node.parent == "label":
            out = f"[[{text}]]" if f"'{text}'" in url else f"[{text}]"
        elif node.product_link:
            out = f"\n[{text}] " if products < LATS_MAX_PRODUCTS else ""
            products += 1
            since_product = 0
        else:
            out = f"\n{text} "
            if others < 2 and not init:
                out = ""  # "Instruction:" and the instruction itself
            if since_product <= 2 and products > LATS_MAX_PRODUCTS:
                out = ""  # title and price of a product past the 5th
            others += 1
        since_product += 1
        parts.append(out)
    return clean_str("".join(parts))


def clean_str(text: str) -> str:
    """LATS's ``clean_str``: decode backslash escapes left in scraped text; leave text it cannot decode unchanged."""
    try:
        return text.encode().decode("unicode-escape").encode("latin1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return text


def lats_url(
    session: str,
    kind: PageKind,
    *,
    query: str = "",
    page: int = 1,
    asin: str = "",
    options: dict[str, str] | None = None,
    subpage: str = "",
) -> str:
    """The unencoded URL path LATS/STL build for a page; only used for their ``'x' in url`` selection test."""
    opts = str(options or {})
    if kind == "results":
        return f"/search_results/{session}/{query}/{page}"
    if kind == "item":
        return f"/item_page/{session}/{asin}/{query}/{page}/{opts}"
    if kind == "sub":
        return f"/item_sub_page/{session}/{asin}/{query}/{page}/{subpage}/{opts}"
    if kind == "done":
        return f"/done/{session}/{asin}/{opts}"
    return f"/{session}"
