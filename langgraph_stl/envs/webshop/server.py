"""A faithful, offline WebShop web server (Starlette + Jinja2), embeddable in tests, environments and notebooks.

Routes, URL formats, page structure, element ids/classes and visible texts follow the original Flask app
(``web_agent_site/app.py``, spec sections 1.2-1.3), so clients written for it (ReAct, LATS, STL, WebShop's own text env,
Selenium/Playwright scripts) work unchanged and WebShop's ``text`` observation of every page is identical.
Differences are deliberate and only concern inputs the original crashes on: malformed keywords/options, unknown
sessions/ASINs/sub-pages or non-numeric pages answer a 4xx page with a clear message instead of a 500, URL content is
parsed by a strict literal parser instead of ``literal_eval``, option selection uses a small inline script instead of
jQuery from a CDN, and ``fixed_<i>`` sessions are recognised on every route (their goal is fixed anyway).

Hostile input is bounded: form bodies are read in chunks and refused past :data:`MAX_BODY` bytes, session ids past
:data:`~.urls.MAX_SESSION_ID` characters, the session table keeps the :data:`MAX_SESSIONS` most recently used
sessions (an evicted random session must be opened again; ``fixed_<i>`` ones come back by themselves), the server
parses HTTP with h11, whose request line and headers are capped (uvicorn's httptools parser buffers a URL of any
length), and a connection that has not sent a whole request head (or form body) within :data:`HEAD_TIMEOUT_S` is
closed, so slow-loris clients hold no connection for long. Every malformed request gets a 4xx.

Routing reads the raw request path, so a ``%2F`` inside a keyword stays in its segment.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import os
import random
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from langgraph_stl.envs.webshop import urls
from langgraph_stl.extras import require

PRODUCT_WINDOW = 10
SUB_PAGES = {"Description": "description", "Features": "bulletpoints", "Reviews": "reviews", "Attributes": "attributes"}
_SUB_TEMPLATES = {
    "Description": "description_page.html",
    "Features": "features_page.html",
    "Reviews": "review_page.html",
    "Attributes": "attributes_page.html",
}
TEMPLATE_DIR = Path(__file__).with_name("templates")
MAX_BODY = 65536
"""Largest form body accepted (a search query); larger ones are refused while streaming, never buffered whole."""
MAX_SESSIONS = 10_000
"""Sessions kept (least recently used evicted): a flood of new ids cannot grow the server's memory without bound."""
MAX_HEADER_BYTES = 16384
"""Largest request line plus headers (h11's incomplete-event cap): longer requests are refused with a 4xx."""
HEAD_TIMEOUT_S = 10.0
"""Seconds a connection may take to send a request head (after connecting or after its last response) or a body."""

Product = dict[str, Any]
Goal = dict[str, Any]
RewardFn = Callable[[Product, Goal, float, dict[str, str]], tuple[float, Any]]
"""``(product, goal, price, options) -> (reward, reward_info)``: WebShop's ``get_reward(..., verbose=True)``."""
SearchFn = Callable[[list[str]], Sequence[str]]
"""``keywords -> ASINs`` as the results page lists them (BM25 top 50 or a ``<r>``/``<a>``/``<c>``/``<q>`` mode)."""


class WebShopError(Exception):
    """A request the shop cannot answer: rendered as an error page with ``status`` (always 4xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Session:
    """Server-side state of a session: only its goal and whether it bought (navigation state lives in URLs)."""

    goal: Goal
    done: bool = False
    reward: float | None = None


@dataclass
class WebShopSite:
    """Everything the server needs: catalogue, per-run prices, shuffled goals, search and reward.

    ``products`` keeps catalogue order. ``rng`` draws the goal of a non-``fixed`` session, as the original's global
    ``random`` does (``load_site`` also gives it to the ``<r>`` random search mode).
    """

    products: list[Product]
    product_prices: Mapping[str, float]
    goals: list[Goal]
    search: SearchFn
    reward: RewardFn
    show_attrs: bool = False
    rng: random.Random = field(default_factory=random.Random)
    sessions: OrderedDict[str, Session] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    max_sessions: int = MAX_SESSIONS

    def __post_init__(self) -> None:
        self.by_asin: dict[str, Product] = {p["asin"]: p for p in self.products}
        self.weights = [float(g.get("weight", 1.0)) for g in self.goals]
        # random.choices(weights=) accumulates them on every call (O(goals)); the same draws from the sums once
        self._cum_weights = list(itertools.accumulate(self.weights))

    # -- sessions ---------------------------------------------------------------------------------------------
    def session(self, session_id: str, *, create: bool) -> Session:
        """The session's state; ``fixed_<i>`` sessions exist implicitly, others are created by the index route."""
        if len(session_id) > urls.MAX_SESSION_ID:
            raise WebShopError(400, f"session id longer than {urls.MAX_SESSION_ID} characters")
        with self.lock:
            found = self.sessions.get(session_id)
            if found is not None:
                self.sessions.move_to_end(session_id)
                return found
            if "fixed" in session_id:
                index = urls.parse_index(session_id.split("_")[-1])
                if index is None or index >= len(self.goals):
                    raise WebShopError(
                        404,
                        f"unknown session {session_id!r}: fixed sessions are fixed_0 .. fixed_{len(self.goals) - 1}",
                    )
                goal = self.goals[index]
            elif create:
                goal = self.rng.choices(self.goals, cum_weights=self._cum_weights)[0]
            else:
                raise WebShopError(404, f"unknown session {session_id!r}: open /{session_id} first")
            session = self.sessions[session_id] = Session(goal)
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
            return session

    # -- catalogue --------------------------------------------------------------------------------------------
    def product(self, asin: str) -> Product:
        product = self.by_asin.get(asin)
        if product is None:
            raise WebShopError(404, f"unknown product ASIN {asin!r}")
        return product

    def top_products(self, keywords: list[str]) -> list[Product]:
        """``get_top_n_product_from_keywords``: the products of a search, best first."""
        return [self.by_asin[a] for a in self.search(keywords) if a in self.by_asin]


def mturk_code(session_id: str) -> str:
    """The done page's code, as the original's ``generate_mturk_code``."""
    return hashlib.sha1(session_id.encode()).hexdigest()[:10].upper()


# ----------------------------------------------------------------------------------------------------------------
# The ASGI application


def create_app(site: WebShopSite) -> Any:
    """The Starlette application serving ``site``."""
    require("starlette", "jinja2", feature="the WebShop server")
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    templates = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape(default=True), auto_reload=False
    )

    def render(name: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context))

    def error_page(status: int, message: str) -> HTMLResponse:
        html = templates.get_template("error_page.html").render(status=status, message=message)
        # after a refused body the client may still be sending it: close rather than read the rest
        headers = {"connection": "close"} if status in (408, 413) else None
        return HTMLResponse(html, status_code=status, headers=headers)

    def index(session_id: str, form: dict[str, list[str]]) -> Response:
        session = site.session(session_id, create=True)
        if "search_query" in form:
            keywords = form["search_query"][0].lower().split(" ")
            return RedirectResponse(urls.search_results_path(session_id, keywords, 1), status_code=302)
        return render(
            "search_page.html",
            instruction_text=session.goal["instruction_text"],
            index_url=urls.index_path(session_id),
        )

    def search_results(session_id: str, keywords_seg: str, page_seg: str) -> Response:
        session = site.session(session_id, create=False)
        page = urls.parse_page(page_seg)
        keywords = urls.parse_keywords(keywords_seg)
        top = site.top_products(keywords)
        products = [
            {**p, "url": urls.item_page_path(session_id, p["asin"], keywords, page, {})}
            for p in top[(page - 1) * PRODUCT_WINDOW : page * PRODUCT_WINDOW]
        ]
        return render(
            "results_page.html",
            instruction_text=session.goal["instruction_text"],
            index_url=urls.index_path(session_id),
            prev_url=urls.search_results_path(session_id, keywords, page - 1),
            next_url=urls.search_results_path(session_id, keywords, page + 1),
            products=products,
            page=page,
            total=len(top),
        )

    def item_context(session_id: str, asin: str, keywords_seg: str, page_seg: str, options_seg: str) -> dict[str, Any]:
        session = site.session(session_id, create=False)
        urls.parse_page(page_seg)
        urls.parse_keywords(keywords_seg)  # validated; links carry the segment on as the original does
        options = urls.parse_options(options_seg)
        return {
            "session": session,
            "product": site.product(asin),
            "options": options,
            "instruction_text": session.goal["instruction_text"],
            "index_url": urls.index_path(session_id),
        }

    def item_page(session_id: str, asin: str, keywords_seg: str, page_seg: str, options_seg: str) -> Response:
        ctx = item_context(session_id, asin, keywords_seg, page_seg, options_seg)
        product, options = ctx["product"], ctx["options"]
        option_items = [
            (
                name,
                [
                    (value, urls.item_page_path(session_id, asin, keywords_seg, page_seg, {**options, name: value}))
                    for value in values
                ],
            )
            for name, values in product.get("options", {}).items()
        ]
        labels = [label for label in SUB_PAGES if label != "Attributes" or site.show_attrs]
        sub_pages = [
            (label, SUB_PAGES[label], urls.item_sub_page_path(session_id, asin, keywords_seg, page_seg, label, options))
            for label in labels
        ]
        return render(
            "item_page.html",
            **ctx,
            prev_url=urls.search_results_path(session_id, keywords_seg, page_seg),
            option_items=option_items,
            sub_pages=sub_pages,
            buy_url=urls.done_path(session_id, asin, options),
        )

    def item_sub_page(
        session_id: str, asin: str, keywords_seg: str, page_seg: str, sub_page: str, options_seg: str
    ) -> Response:
        if sub_page not in _SUB_TEMPLATES:
            raise WebShopError(404, f"unknown sub-page {sub_page!r}: one of {', '.join(_SUB_TEMPLATES)}")
        ctx = item_context(session_id, asin, keywords_seg, page_seg, options_seg)
        return render(
            _SUB_TEMPLATES[sub_page],
            **ctx,
            prev_url=urls.item_page_path(session_id, asin, keywords_seg, page_seg, ctx["options"]),
        )

    def done(session_id: str, asin: str, options_seg: str) -> Response:
        session = site.session(session_id, create=False)
        product = site.product(asin)
        options = urls.parse_options(options_seg)
        reward, reward_info = site.reward(product, session.goal, site.product_prices[asin], options)
        with site.lock:
            session.done, session.reward = True, reward
        return render(
            "done_page.html",
            reward=reward,
            asin=asin,
            options=options,
            reward_info=reward_info,
            query=product.get("query"),
            category=product.get("category"),
            product_category=product.get("product_category"),
            purchased_attrs=product.get("Attributes"),
            goal=session.goal,
            mturk_code=mturk_code(session_id),
        )

    def dispatch(parts: list[str], form: dict[str, list[str]]) -> Response:
        match parts:
            case []:
                return RedirectResponse("/abc", status_code=302)
            case [session_id]:
                return index(session_id, form)
            case ["search_results", session_id, keywords, page]:
                return search_results(session_id, keywords, page)
            case ["item_page", session_id, asin, keywords, page, options]:
                return item_page(session_id, asin, keywords, page, options)
            case ["item_sub_page", session_id, asin, keywords, page, sub_page, options]:
                return item_sub_page(session_id, asin, keywords, page, sub_page, options)
            case ["done", session_id, asin, options]:
                return done(session_id, asin, options)
        raise WebShopError(
            404,
            "no such page: WebShop serves /<session>, /search_results/..., /item_page/..., "
            "/item_sub_page/... and /done/...",
        )

    async def read_form(request: Request) -> dict[str, list[str]]:
        """The POSTed form, read chunk by chunk so that an oversized body is refused before it is buffered."""
        if request.method != "POST":
            return {}
        declared = urls.parse_index(request.headers.get("content-length", "0"))
        if declared is None or declared > MAX_BODY:
            raise WebShopError(413, f"request body too large (at most {MAX_BODY} bytes)")
        body = bytearray()
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise WebShopError(413, f"request body too large (at most {MAX_BODY} bytes)")
        except TimeoutError:
            raise WebShopError(408, f"the request body did not arrive within {HEAD_TIMEOUT_S:g} s") from None
        try:
            return parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise WebShopError(400, "form data is not valid UTF-8") from None

    async def endpoint(request: Request) -> Response:
        try:
            form = await read_form(request)
            parts = urls.split_path(request.scope.get("raw_path") or request.url.path.encode())
            return dispatch(parts, form)
        except urls.UrlValueError as err:
            return error_page(400, str(err))
        except WebShopError as err:
            return error_page(err.status, err.message)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])


# ----------------------------------------------------------------------------------------------------------------
# Loading and running


def load_site(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    goals: str = "synthetic",
    seed: int = 0,
    show_attrs: bool = False,
) -> WebShopSite:
    """Catalogue, goals (seeded like the original after ``random.seed(seed)``), BM25 search and reward."""
    from langgraph_stl.envs.webshop import get_reward, load_webshop
    from langgraph_stl.envs.webshop.search_engine import load_search_engine, top_asins_from_keywords

    if goals not in ("synthetic", "human"):
        raise ValueError(f"goals must be 'synthetic' or 'human', not {goals!r}")
    data = load_webshop(data_dir, goals=goals, seed=seed)  # type: ignore[arg-type]
    engine = load_search_engine(data_dir)
    rng = random.Random(seed)

    def search(keywords: list[str]) -> list[str]:
        return top_asins_from_keywords(keywords, engine, data.products, rng=rng)

    def reward(product: Product, goal: Goal, price: float, options: dict[str, str]) -> tuple[float, Any]:
        value, info = get_reward(product, goal, price, options, verbose=True)
        return float(value), info

    return WebShopSite(
        products=list(data.products),
        product_prices=data.product_prices,
        goals=list(data.goals),
        search=search,
        reward=reward,
        show_attrs=show_attrs,
        rng=rng,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A server started by :func:`start_server`; ``stop()`` shuts it down and joins its thread."""

    url: str
    site: WebShopSite
    _server: Any
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@functools.cache
def bounded_h11_protocol() -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline on each request head: uvicorn itself waits for one forever."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        head_timeout_s = HEAD_TIMEOUT_S
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_expired)

        def _head_expired(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete  # no request being served
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return BoundedH11Protocol


def uvicorn_config(site: WebShopSite, *, host: str, port: int) -> Any:
    """The ``uvicorn.Config`` every WebShop server runs with: bounded h11 (see the module doc)."""
    import uvicorn

    return uvicorn.Config(
        create_app(site),
        host=host,
        port=port,
        http=bounded_h11_protocol(),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def start_server(site: WebShopSite, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> RunningServer:
    """Serve ``site`` from a daemon thread (port 0: a free one); returns once it accepts connections."""
    import uvicorn

    port = port or free_port(host)
    server = uvicorn.Server(uvicorn_config(site, host=host, port=port))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name=f"webshop-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"WebShop server on {host}:{port} did not start")
        time.sleep(0.01)
    return RunningServer(f"http://{host}:{port}", site, server, thread)


@contextmanager
def serving(site: WebShopSite, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    """``with serving(site) as server: ...``: a background server for the duration of the block."""
    running = start_server(site, host=host, port=port)
    try:
        yield running
    finally:
        running.stop()
