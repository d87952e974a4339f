"""LangChain tools for one WebShop session: drop them into any LangChain/LangGraph agent.

Two toolkits with the same ``search`` and ``click`` tools (names, descriptions, argument schemas, answers, and the
``session``/``state``/``path``/``reward`` API that :func:`~langgraph_stl.search.composition.as_value_tool` reads):

* ``WebShopToolkit(base_url, session_id)`` acts on a real Chromium page (Playwright) bound to that session;
* ``WebShopHttpToolkit(base_url, session_id)`` acts through plain HTTP GETs (:class:`.http_env.WebShopHttpEnv`):
  no browser, the fast path; ``base_url=None`` starts an embedded shop.

Both answer with the page's observation text (the LATS/ReAct rendering by default), explain invalid actions
together with the current page, and can only reach the configured WebShop origin: an action whose navigation
would leave it is refused and the tool says so. Sync tool calls work inside a running event loop (a notebook): the
browser toolkit runs them on its own loop thread, the HTTP toolkit uses a sync HTTP client.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, Field

from langgraph_stl.envs.base import State
from langgraph_stl.envs.webshop import urls
from langgraph_stl.envs.webshop.browser_env import BrowserRunner, origin_of, perform, read_state, restore
from langgraph_stl.envs.webshop.episode import OBSERVATION_MODES, InvalidAction, ObservationMode
from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv


class SearchInput(BaseModel):
    query: str = Field(description="What to type into the WebShop search box, e.g. 'men's navy gym shorts'.")


class ClickInput(BaseModel):
    element: str = Field(
        description="The text of a clickable shown in [brackets]: a button (Buy Now, Next >, < Prev, Back to Search, "
        "Description...), a product ASIN, or an option value."
    )


class _SessionToolkit(ABC):
    """What both toolkits share: the session's state and path, and the tools built over :meth:`act`/:meth:`aact`."""

    def __init__(self, session_id: str, observation_mode: ObservationMode) -> None:
        if observation_mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode must be one of {OBSERVATION_MODES}, not {observation_mode!r}")
        self.session_id = session_id
        self.observation_mode: ObservationMode = observation_mode
        self.state: State | None = None
        """The state of the page the tools last showed (same schema as the environments' states)."""
        self.root_observation: str | None = None
        """The session's first page (the search page with the instruction)."""
        self.path: list[tuple[str, str]] = []
        """Every action the tools carried out, with the observation it led to (refused/invalid ones are not)."""

    @abstractmethod
    def act(self, action: str) -> str:
        """Carry out ``search[...]``/``click[...]``; the new page's observation, or why not and the current page."""

    @abstractmethod
    async def aact(self, action: str) -> str:
        """Async twin of :meth:`act`."""

    @abstractmethod
    def observation(self) -> str:
        """The current page's observation (opens the session's search page on first use)."""

    @abstractmethod
    async def aobservation(self) -> str:
        """Async twin of :meth:`observation`."""

    @abstractmethod
    def close(self) -> None:
        """Release what the toolkit started. Idempotent."""

    async def asearch(self, query: str) -> str:
        return await self.aact(f"search[{query}]")

    async def aclick(self, element: str) -> str:
        return await self.aact(f"click[{element}]")

    def session(self) -> tuple[str, list[tuple[str, str]], State]:
        """``(root observation, path, current state)``: what :func:`~langgraph_stl.search.composition.as_value_tool`
        needs to value candidate actions from where the agent is now (pass ``toolkit.session``)."""
        if self.state is None or self.root_observation is None:
            raise RuntimeError("the WebShop session is not open yet: call a tool or aobservation() first")
        return self.root_observation, list(self.path), self.state

    @property
    def reward(self) -> float | None:
        """The score shown on the done page once the agent bought something, else None."""
        return None if self.state is None else self.state.get("reward")

    def get_tools(self) -> list[Any]:
        """The ``search`` and ``click`` :class:`~langchain_core.tools.StructuredTool` of this session."""
        from langchain_core.tools import StructuredTool

        search = StructuredTool.from_function(
            func=lambda query: self.act(f"search[{query}]"),
            coroutine=self.asearch,
            name="search",
            description="Search the WebShop catalogue (only from the search page). Returns the results page as text.",
            args_schema=SearchInput,
        )
        click = StructuredTool.from_function(
            func=lambda element: self.act(f"click[{element}]"),
            coroutine=self.aclick,
            name="click",
            description="Click a [bracketed] element of the current WebShop page. Returns the new page as text.",
            args_schema=ClickInput,
        )
        return [search, click]


class WebShopToolkit(_SessionToolkit):
    """``search`` and ``click`` tools over one WebShop session in a headless Chromium.

    ``browser``: share a :class:`~.browser_env.BrowserRunner` (one browser for many toolkits); by default the
    toolkit starts its own and :meth:`close` stops it.
    """

    def __init__(
        self,
        base_url: str,
        session_id: str,
        *,
        observation_mode: ObservationMode = "lats",
        browser: BrowserRunner | None = None,
        timeout_ms: float = 30_000,
    ) -> None:
        super().__init__(session_id, observation_mode)
        self.base_url = base_url.rstrip("/")
        self.origin = origin_of(self.base_url)
        self.timeout_ms = timeout_ms
        self._own_runner = browser is None
        self.runner = browser if browser is not None else BrowserRunner()
        self._page: Any = None
        self._blocked: list[str] = []
        self._lock: asyncio.Lock | None = None

    # -- what the tools do (on the browser loop) ---------------------------------------------------------------
    async def _open(self) -> None:
        if self._page is None:
            self._page = await self.runner.new_page(self.origin, self._blocked)
            await self._page.goto(self.base_url + urls.index_path(self.session_id), wait_until="domcontentloaded")
            self.state = await read_state(self._page, query=None, history=[], option=None, mode=self.observation_mode)
            self.root_observation = str(self.state["observation"])

    async def _act(self, action: str) -> str:
        from playwright.async_api import Error as PlaywrightError

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one page: tool calls of this session run one at a time
            await self._open()
            assert self.state is not None
            self._blocked.clear()
            try:
                self.state = await perform(
                    self._page,
                    self.state,
                    action,
                    mode=self.observation_mode,
                    search_anywhere=False,
                    timeout_ms=self.timeout_ms,
                )
            except InvalidAction as err:
                return f"{err}\n\n{self.state['observation']}"
            except PlaywrightError as err:
                await restore(self._page, self.state["url"])  # back to the last good page
                if self._blocked:
                    target = self._blocked[0]
                    return f"Refused: {action} would leave {self.origin} (to {target}); navigation is restricted."
                return f"Error: the browser failed ({err}); still on:\n\n{self.state['observation']}"
            if origin_of(self._page.url) != self.origin:  # defensive: never report a foreign page
                await restore(self._page, self.state["url"])
                return f"Refused: {action} left {self.origin}; navigation is restricted."
            self.path.append((action, str(self.state["observation"])))
            return str(self.state["observation"])

    async def _observe(self) -> str:
        await self._open()
        assert self.state is not None
        return str(self.state["observation"])

    # -- public API -------------------------------------------------------------------------------------------
    def act(self, action: str) -> str:
        return self.runner.run(self._act(action))

    async def aact(self, action: str) -> str:
        return await self.runner.arun(self._act(action))

    async def aobservation(self) -> str:
        return await self.runner.arun(self._observe())

    def observation(self) -> str:
        return self.runner.run(self._observe())

    async def _close_page(self) -> None:
        if self._page is not None:
            await self._page.context.close()
            self._page = None

    def close(self) -> None:
        """Close this session's page, and the browser if the toolkit started it. Idempotent."""
        try:
            if self._page is not None:
                self.runner.run(self._close_page())
        finally:
            if self._own_runner:
                self.runner.close()


class WebShopHttpToolkit(_SessionToolkit):
    """``search`` and ``click`` tools over one WebShop session through plain HTTP (no browser).

    ``base_url=None`` starts an embedded shop over the local catalogue (stopped by :meth:`close`); ``env``: share
    a :class:`~.http_env.WebShopHttpEnv` (then ``base_url`` is ignored and :meth:`close` leaves it open). Tool calls
    of one session run one at a time; the async tools run the HTTP request in a worker thread.
    """

    def __init__(
        self,
        base_url: str | None = None,
        session_id: str = "fixed_0",
        *,
        observation_mode: ObservationMode = "lats",
        env: WebShopHttpEnv | None = None,
    ) -> None:
        super().__init__(session_id, observation_mode)
        self._own_env = env is None
        self.env = env if env is not None else WebShopHttpEnv(base_url, observation_mode=observation_mode)
        if self.env.observation_mode != observation_mode:
            raise ValueError(f"the shared env renders {self.env.observation_mode!r}, not {observation_mode!r}")
        self._lock = threading.Lock()

    def _open(self) -> State:
        if self.state is None:
            self.state = self.env.reset(self.session_id)
            self.root_observation = str(self.state["observation"])
        return self.state

    def act(self, action: str) -> str:
        import httpx

        with self._lock:  # one session: tool calls run one at a time
            state = self._open()
            try:
                result = self.env.step(state, action)
            except httpx.HTTPError as err:
                return f"Error: the shop could not be reached ({err}); still on:\n\n{state['observation']}"
            if not result.valid:  # a redirect off the shop's origin included: the env refuses to follow it
                return f"{result.message}\n\n{state['observation']}"
            self.state = result.state
            self.path.append((action, str(result.state["observation"])))
            return str(result.state["observation"])

    async def aact(self, action: str) -> str:
        return await asyncio.to_thread(self.act, action)

    def observation(self) -> str:
        with self._lock:
            return str(self._open()["observation"])

    async def aobservation(self) -> str:
        return await asyncio.to_thread(self.observation)

    def close(self) -> None:
        """Close the environment (and its embedded shop) if the toolkit started it. Idempotent."""
        if self._own_env:
            self.env.close()
