"""WebShop URL formats: building them as the original Flask app does, and parsing them safely.

The original app puts Python reprs in its paths (``str(list)`` of keywords, ``str(dict)`` of options) and reads them
back with ``ast.literal_eval``. Here they are read by a small parser that accepts only a list of strings or a dict of
strings to strings, so nothing in a URL is ever evaluated. Clients encode these segments in many ways (Werkzeug
leaves ``'``, ``,`` and ``:`` unencoded, browsers and ``requests`` encode more, form encoders write ``+`` for a
space); all of them decode to the same value.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

MAX_SEGMENT = 4096
"""Longest keywords/options segment accepted (a search query or an options dict is far shorter)."""
MAX_SESSION_ID = 128
"""Longest session id accepted (the server keeps one small record per session; ids are short names)."""
MAX_INDEX_DIGITS = 9
"""Most digits of a page number or ``fixed_<i>`` index: far above any real one, far below ``int()``'s limit."""

# Werkzeug 2.1's url_for leaves these unencoded; "/" is encoded too so that a value containing it stays one segment.
_SAFE = "-._~$!'()*+,;:"


class UrlValueError(ValueError):
    """A URL segment is not a valid keywords list, options dict or page number; the message says why."""


def quote_segment(value: str) -> str:
    """Percent-encode one path segment the way the original app's ``url_for`` does (plus ``/``)."""
    return quote(value, safe=_SAFE)


def keywords_segment(keywords: list[str] | str) -> str:
    """The keywords path segment: ``str(list)`` for a list (as ``url_for`` writes it), else the string itself."""
    return quote_segment(str(keywords) if isinstance(keywords, list) else keywords)


def options_segment(options: dict[str, str]) -> str:
    """The options path segment: ``str(dict)``, as ``url_for`` writes it."""
    return quote_segment(str(options))


def search_results_path(session: str, keywords: list[str] | str, page: int | str) -> str:
    return f"/search_results/{quote_segment(session)}/{keywords_segment(keywords)}/{quote_segment(str(page))}"


def item_page_path(session: str, asin: str, keywords: list[str] | str, page: int | str, options: dict[str, str]) -> str:
    return (
        f"/item_page/{quote_segment(session)}/{quote_segment(asin)}/{keywords_segment(keywords)}/"
        f"{quote_segment(str(page))}/{options_segment(options)}"
    )


def item_sub_page_path(
    session: str, asin: str, keywords: list[str] | str, page: int | str, sub_page: str, options: dict[str, str]
) -> str:
    return (
        f"/item_sub_page/{quote_segment(session)}/{quote_segment(asin)}/{keywords_segment(keywords)}/"
        f"{quote_segment(str(page))}/{quote_segment(sub_page)}/{options_segment(options)}"
    )


def done_path(session: str, asin: str, options: dict[str, str]) -> str:
    return f"/done/{quote_segment(session)}/{quote_segment(asin)}/{options_segment(options)}"


def index_path(session: str) -> str:
    return f"/{quote_segment(session)}"


# ----------------------------------------------------------------------------------------------------------------
# Parsing

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")|(?P<punct>[\[\]{}:,]))""",
    re.DOTALL,
)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f"}
_SIMPLE_ESCAPES["v"] = "\v"
_SIMPLE_ESCAPES["0"] = "\0"


def _unescape(body: str) -> str:
    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if len(esc) > 1:
            code = int(esc[1:], 16)
            if code > 0x10FFFF:
                raise UrlValueError(f"invalid escape \\{esc}")
            return chr(code)
        return _SIMPLE_ESCAPES.get(esc, "\\" + esc)  # Python keeps unknown escapes as written

    return _ESCAPE.sub(repl, body)


def _tokens(text: str) -> list[tuple[str, str]]:
    """Split a Python list/dict-of-strings literal into ("str", value) and ("punct", char) tokens."""
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise UrlValueError(f"unexpected {text[pos : pos + 20]!r} at position {pos}")
        if m.group("str") is not None:
            out.append(("str", _unescape(m.group("str")[1:-1])))
        else:
            out.append(("punct", m.group("punct")))
        pos = m.end()
    return out


def _parse_sequence(tokens: list[tuple[str, str]], open_: str, close: str, pair: bool) -> list[tuple[str, ...]]:
    if not tokens or tokens[0] != ("punct", open_) or tokens[-1] != ("punct", close):
        raise UrlValueError(f"expected {open_}...{close}")
    body = tokens[1:-1]
    items: list[tuple[str, ...]] = []
    i = 0
    while i < len(body):
        kind, value = body[i]
        if kind != "str":
            raise UrlValueError(f"expected a quoted string, got {value!r}")
        if pair:
            if i + 2 >= len(body) or body[i + 1] != ("punct", ":") or body[i + 2][0] != "str":
                raise UrlValueError("expected 'name': 'value'")
            items.append((value, body[i + 2][1]))
            i += 3
        else:
            items.append((value,))
            i += 1
        if i < len(body):
            if body[i] != ("punct", ","):
                raise UrlValueError(f"expected ',' got {body[i][1]!r}")
            i += 1
    return items


def _decode(segment: str) -> str:
    if len(segment) > MAX_SEGMENT:
        raise UrlValueError(f"segment longer than {MAX_SEGMENT} characters")
    return segment


def parse_keywords(segment: str) -> list[str]:
    """Keywords from a decoded URL segment, as the original's ``convert_web_app_string_to_var('keywords', ...)``.

    A segment starting with ``[`` must be a list of strings (``+`` is read as a space if the literal only parses
    that way, for form-encoded clients); anything else is a single keyword string.
    """
    text = _decode(segment).strip()
    if not text.startswith("["):
        return [segment]
    try:
        items = _parse_sequence(_tokens(text), "[", "]", pair=False)
    except UrlValueError as err:
        if "+" not in text:
            raise UrlValueError(f"malformed keywords {segment!r}: {err}") from None
        try:
            items = _parse_sequence(_tokens(text.replace("+", " ")), "[", "]", pair=False)
        except UrlValueError:
            raise UrlValueError(f"malformed keywords {segment!r}: {err}") from None
    if not items:
        raise UrlValueError("the keywords list is empty")
    return [item[0] for item in items]


def parse_options(segment: str) -> dict[str, str]:
    """Options from a decoded URL segment: a ``str(dict)`` (or JSON object) mapping option names to values."""
    text = _decode(segment).strip()
    try:
        items = _parse_sequence(_tokens(text), "{", "}", pair=True)
    except UrlValueError as err:
        if "+" not in text:
            raise UrlValueError(f"malformed options {segment!r}: {err}") from None
        try:
            items = _parse_sequence(_tokens(text.replace("+", " ")), "{", "}", pair=True)
        except UrlValueError:
            raise UrlValueError(f"malformed options {segment!r}: {err}") from None
    return {name: value for name, value in items}


def parse_index(text: str) -> int | None:
    """``text`` as a non-negative integer of ASCII digits (at most :data:`MAX_INDEX_DIGITS`), else None.

    ``str.isdigit()`` alone accepts ``'²'`` and 5000-digit strings, on which ``int()`` raises.
    """
    if 0 < len(text) <= MAX_INDEX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


def parse_page(segment: str) -> int:
    """A results page number: a positive integer."""
    page = parse_index(segment.strip())
    if page is None or page < 1:
        shown = segment if len(segment) <= 40 else segment[:40] + "..."
        raise UrlValueError(f"page must be a positive integer of at most {MAX_INDEX_DIGITS} digits, got {shown!r}")
    return page


def split_path(raw_path: bytes | str) -> list[str]:
    """Decode a raw request path into segments; ``%2F`` inside a segment stays inside it."""
    text = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    parts = text.strip("/").split("/") if text.strip("/") else []
    try:
        return [unquote(part, errors="strict") for part in parts]
    except UnicodeDecodeError as err:
        raise UrlValueError(f"path is not valid UTF-8: {err}") from None
