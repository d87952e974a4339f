"""WebShop in a real browser: async Playwright driving Chromium, with real clicks on the rendered page.

One browser per environment (a run), one browser context per concurrently stepped branch. Playwright objects are
bound to the event loop that created them, so the browser lives on a private event loop in a daemon thread and every
call (sync or async, from any loop) is submitted to it; LangGraph can step branches in parallel from its own loop.
States and observations are those of :class:`~.http_env.WebShopHttpEnv` (same :func:`.episode.make_state`), computed
from the rendered DOM (``page.content()``), so both environments agree on the same episode.

Every context refuses requests that leave the shop's origin (product images on external CDNs included), which keeps
runs offline and confines navigation to the configured WebShop. A page the shop answers with a 4xx is an invalid
action, as in the HTTP environment (the page goes back to the state's page). Every browser call has a finite timeout
(navigations, clicks and ``page.evaluate``, which Playwright itself would wait on forever); a timed-out step raises
:class:`TimeoutError`, which fails the task as an HTTP timeout does, and its page is discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import threading
from collections.abc import Awaitable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from langgraph_stl.envs.base import InvalidTaskError, State, StepResult
from langgraph_stl.envs.webshop import episode, urls
from langgraph_stl.envs.webshop.episode import InvalidAction, ObservationMode
from langgraph_stl.envs.webshop.http_env import WebShopEnvBase
from langgraph_stl.extras import require

T = TypeVar("T")

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--blink-settings=imagesEnabled=false")
DEFAULT_TIMEOUT_MS = 30_000.0
"""Default limit of one browser operation (a navigation, a click, reading the DOM)."""
SCRIPT_FALLBACK_MS = 1500
"""How long an option click may take to navigate before its ``data-url`` is followed directly (the original's option
script needs jQuery from a CDN, so offline it never fires)."""


def chromium_executable() -> str | None:
    """The system Chromium (``STL_CHROMIUM``, Debian's binary, or ``chromium`` on PATH); None: Playwright's own."""
    configured = os.environ.get("STL_CHROMIUM")
    if configured:
        return configured
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class BrowserRunner:
    """A private event loop thread that owns Playwright and one Chromium; coroutines are submitted to it."""

    def __init__(self, *, headless: bool = True, executable_path: str | None = None) -> None:
        self.headless = headless
        self.executable_path = executable_path if executable_path is not None else chromium_executable()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webshop-browser", daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._browser: Any = None
        self._closed = False

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        if self._closed:
            coro.close()
            raise RuntimeError("the browser has been closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the browser loop and wait for it (from synchronous code)."""
        return self.submit(coro).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the browser loop and await it (from any other event loop)."""
        return await asyncio.wrap_future(self.submit(coro))

    async def browser(self) -> Any:
        """The shared Chromium, launched on first use (call on the browser loop)."""
        if self._browser is None:
            require("playwright", feature="the browser environment")
            from playwright.async_api import async_playwright

            self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                headless=self.headless,
                executable_path=self.executable_path,
                # product images all live on external CDNs, which contexts refuse anyway: don't even ask for them
                args=[*CHROMIUM_ARGS],
            )
        return self._browser

    async def new_page(
        self, origin: str, blocked: list[str] | None = None, *, timeout_ms: float = DEFAULT_TIMEOUT_MS
    ) -> Any:
        """A page in a fresh context that can only reach ``origin``; refused navigations are appended to ``blocked``.

        ``timeout_ms`` bounds each of the page's navigations and actions.
        """
        context = await (await self.browser()).new_context(service_workers="block")
        context.set_default_timeout(timeout_ms)
        context.set_default_navigation_timeout(timeout_ms)
        off_origin = re.compile(rf"^(?!{re.escape(origin)}/|{re.escape(origin)}$)")

        async def refuse(route: Any) -> None:
            if blocked is not None and route.request.is_navigation_request():
                blocked.append(route.request.url)
            await route.abort("blockedbyclient")

        await context.route(off_origin, refuse)
        return await context.new_page()

    async def _shutdown(self) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()

    def close(self) -> None:
        """Close the browser and stop the loop thread. Idempotent."""
        if self._closed:
            return
        try:
            if self._thread.is_alive():
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


async def restore(page: Any, url: str, attempts: int = 3) -> None:
    """Show ``url`` on ``page``; retried because a refused navigation's error page may still be committing."""
    from playwright.async_api import Error as PlaywrightError

    for attempt in range(attempts):
        try:
            await page.goto(url, wait_until="domcontentloaded")
            return
        except PlaywrightError:
            if attempt == attempts - 1:
                raise
            await page.wait_for_load_state("domcontentloaded")


async def _navigate(page: Any, action: Awaitable[Any], timeout_ms: float) -> Any:
    """Do ``action`` and wait for the navigation it starts; returns its response (None if it had none)."""
    async with page.expect_navigation(wait_until="domcontentloaded", timeout=timeout_ms) as navigation:
        await action
    return await navigation.value


async def _check_status(page: Any, state: State, response: Any, path: str) -> None:
    """Raise :class:`InvalidAction` (with the HTTP environment's message) if the shop answered a 4xx/5xx.

    The page is first put back on the state's page, so the caller's page still shows ``state``.
    """
    if response is not None and response.status >= 400:
        await restore(page, state["url"])
        raise InvalidAction(f"Invalid action: the shop answered {response.status} for {path}")


_CLICK = {"force": True}
"""A real mouse click at the element's centre, without Playwright's actionability polling (stable over two animation
frames...), which costs ~25 ms a click on a busy machine; the page has finished loading when we click."""


def _css_string(text: str) -> str:
    """``text`` as a quoted CSS string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ") + '"'


async def perform(
    page: Any, state: State, action: str, *, mode: ObservationMode, search_anywhere: bool, timeout_ms: float
) -> State:
    """Do ``action`` on ``page`` (showing ``state``) with real input events; returns the resulting state.

    Raises :class:`~.episode.InvalidAction` for an action the page does not allow.
    """
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    parsed = episode.parse_action(action)
    if state["kind"] == "done":
        raise InvalidAction("Invalid action: the episode is over (the item was bought)")
    history = [*state["history"], action]
    if parsed.name == "search":
        episode.check_search(state, parsed.arg, search_anywhere=search_anywhere)
        keywords = parsed.arg.lower().split(" ")
        path = urls.search_results_path(state["session"], keywords, 1)
        if state["has_search_bar"]:
            await page.fill("#search_input", parsed.arg)
            response = await _navigate(page, page.locator('.btn:text-is("Search")').first.click(**_CLICK), timeout_ms)
        else:  # search_anywhere from a page without a search bar: what the text env's server does
            response = await page.goto(origin_of(page.url) + path)
        await _check_status(page, state, response, path)
        return await read_state(
            page,
            query=parsed.arg,
            history=history,
            option=None,
            mode=mode,
            instruction=state["instruction"],
            timeout_ms=timeout_ms,
        )
    click = episode.resolve_click(state, parsed.arg)
    if click.kind == "option":
        radio = page.locator(f'input[type="radio"][value={_css_string(click.target)}]').first
        label = page.locator(f'input[type="radio"][value={_css_string(click.target)}] + label').first
        try:
            if await label.count():
                response = await _navigate(page, label.click(**_CLICK), SCRIPT_FALLBACK_MS)
            else:
                response = await _navigate(page, radio.dispatch_event("click"), SCRIPT_FALLBACK_MS)
        except PlaywrightTimeout:  # the page's option script did not navigate: follow its data-url as it would
            data_url = await radio.get_attribute("data-url")
            if not data_url:
                raise InvalidAction(f"Invalid action: option {click.target!r} did not lead anywhere") from None
            response = await page.goto(origin_of(page.url) + data_url if data_url.startswith("/") else data_url)
    else:
        selector = ".product-link" if click.kind == "product" else ".btn"
        element = page.locator(f"{selector}:text-is({_css_string(click.target)})").first
        response = await _navigate(page, element.click(**_CLICK), timeout_ms)
    await _check_status(page, state, response, click.path)
    option = click.target if click.kind == "option" else None
    return await read_state(
        page,
        query=state["query"],
        history=history,
        option=option,
        mode=mode,
        instruction=state["instruction"],
        timeout_ms=timeout_ms,
    )


async def read_state(
    page: Any,
    *,
    query: str | None,
    history: list[str],
    option: str | None,
    mode: ObservationMode,
    instruction: str = "",
    timeout_ms: float = DEFAULT_TIMEOUT_MS,
) -> State:
    """The state of what ``page`` shows now, from its rendered DOM.

    ``outerHTML`` rather than ``page.content()``: the same elements and text (only the doctype is missing, which no
    observation uses) in a tenth of the time. ``page.evaluate`` has no timeout of its own (a page whose script never
    yields would hold it forever): :class:`TimeoutError` after ``timeout_ms``.
    """
    try:
        html = await asyncio.wait_for(page.evaluate("document.documentElement.outerHTML"), timeout_ms / 1000)
    except TimeoutError:
        raise TimeoutError(f"reading the page {page.url} took longer than {timeout_ms / 1000:g} s") from None
    return episode.make_state(
        page.url, html, mode=mode, query=query, history=history, clicked_option=option, instruction=instruction
    )


@dataclass
class _Pool:
    """Pages (one context each) not in use, with the URL each one shows."""

    idle: list[tuple[Any, str]] = field(default_factory=list)
    size: int = 0
    available: asyncio.Condition = field(default_factory=asyncio.Condition)


class WebShopBrowserEnv(WebShopEnvBase):
    """WebShop driven through Chromium. Same constructor options, states and observations as the HTTP env.

    ``max_pages`` bounds the browser contexts (parallel branches stepped at once). ``headless=False`` shows the
    browser. ``executable_path`` defaults to the system Chromium, else Playwright's own download. ``browser``
    shares a :class:`BrowserRunner` between environments/toolkits (then :meth:`close` leaves it open).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        observation_mode: ObservationMode = "lats",
        goals: str = "synthetic",
        seed: int = 0,
        show_attrs: bool = True,
        data_dir: str | os.PathLike[str] | None = None,
        num_goals: int | None = None,
        search_anywhere: bool = False,
        max_pages: int = 4,
        headless: bool = True,
        executable_path: str | None = None,
        timeout_ms: float = 30_000,
        browser: BrowserRunner | None = None,
    ) -> None:
        super().__init__(
            base_url,
            observation_mode=observation_mode,
            goals=goals,
            seed=seed,
            show_attrs=show_attrs,
            data_dir=data_dir,
            num_goals=num_goals,
            search_anywhere=search_anywhere,
        )
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.max_pages = max_pages
        self.timeout_ms = timeout_ms
        self._own_runner = browser is None
        self.runner = (
            browser if browser is not None else BrowserRunner(headless=headless, executable_path=executable_path)
        )
        self._pool: _Pool | None = None

    # -- page pool (runs on the browser loop) ------------------------------------------------------------------
    async def _acquire(self, url: str | None) -> tuple[Any, str]:
        if self._pool is None:
            self._pool = _Pool()
        pool = self._pool
        async with pool.available:
            while True:
                for i, (_page, shown) in enumerate(pool.idle):
                    if shown == url:
                        return pool.idle.pop(i)
                if pool.size < self.max_pages:
                    pool.size += 1
                    break
                if pool.idle:
                    return pool.idle.pop(0)
                await pool.available.wait()
        try:
            return await self.runner.new_page(origin_of(self.base_url), timeout_ms=self.timeout_ms), ""
        except BaseException:
            async with pool.available:
                pool.size -= 1
                pool.available.notify()
            raise

    async def _release(self, page: Any, url: str) -> None:
        assert self._pool is not None
        async with self._pool.available:
            self._pool.idle.append((page, url))
            self._pool.available.notify()

    async def _discard(self, page: Any) -> None:
        """Close a page that timed out (its renderer may still be busy) and free its slot for a fresh one."""
        assert self._pool is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(page.context.close(), self.timeout_ms / 1000)
        async with self._pool.available:
            self._pool.size -= 1
            self._pool.available.notify()

    # -- protocol ---------------------------------------------------------------------------------------------
    async def _reset(self, session: str) -> State:
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        page, _shown = await self._acquire(None)
        url = ""
        try:
            response = await page.goto(self.base_url + urls.index_path(session), wait_until="domcontentloaded")
            if response is None or response.status >= 400:
                status = response.status if response is not None else "no response"
                raise InvalidTaskError(f"unknown WebShop task {session!r}: the shop answered {status}")
            state = await read_state(
                page, query=None, history=[], option=None, mode=self.observation_mode, timeout_ms=self.timeout_ms
            )
            url = state["url"]
        except (TimeoutError, PlaywrightTimeout) as err:
            await self._discard(page)
            raise TimeoutError(f"the WebShop at {self.base_url} did not answer in time: {err}") from None
        except BaseException:
            await self._release(page, url)
            raise
        await self._release(page, url)
        return state

    async def _step(self, state: State, action: str) -> StepResult:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        page, shown = await self._acquire(state["url"])
        url = shown
        try:
            if shown != state["url"]:
                url = ""
                await restore(page, state["url"])
                url = state["url"]
            new = await perform(
                page,
                state,
                action,
                mode=self.observation_mode,
                search_anywhere=self.search_anywhere,
                timeout_ms=self.timeout_ms,
            )
            url = new["url"]
            result = StepResult(new)
        except InvalidAction as err:
            result = StepResult(state, valid=False, message=str(err))
        except (TimeoutError, PlaywrightTimeout) as err:
            await self._discard(page)
            raise TimeoutError(f"the WebShop at {self.base_url} did not answer {action!r} in time: {err}") from None
        except PlaywrightError as err:
            url = ""  # the page may be anywhere now: restore it next time
            result = StepResult(state, valid=False, message=f"Invalid action: the browser failed: {err}")
        except BaseException:
            await self._release(page, "")
            raise
        await self._release(page, url)
        return result

    async def areset(self, task_id: str) -> State:
        return await self.runner.arun(self._reset(self._check_reset(task_id)))

    async def astep(self, state: State, action: str) -> StepResult:
        return await self.runner.arun(self._step(state, action))

    def reset(self, task_id: str) -> State:
        return self.runner.run(self._reset(self._check_reset(task_id)))

    def step(self, state: State, action: str) -> StepResult:
        return self.runner.run(self._step(state, action))

    async def _close_pages(self) -> None:
        if self._pool is not None:
            for page, _url in self._pool.idle:
                await page.context.close()
            self._pool = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Close this environment's pages, the browser if it started it, and its embedded server. Idempotent."""
        try:
            if self._own_runner:
                self.runner.close()
            elif self._pool is not None:
                self.runner.run(self._close_pages())
        finally:
            super().close()
