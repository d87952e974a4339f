"""WebShop over plain HTTP: the fast path, like the paper's code (no browser).

Each step is one GET of the page the action leads to, on this project's server or on any WebShop server (the
original Flask app included); the HTML is rendered to text by :mod:`.text`. With ``base_url=None`` an embedded server
is started in-process on a free loopback port and stopped by :meth:`WebShopHttpEnv.close`.
"""

from __future__ import annotations

import os
from typing import Any

from langgraph_stl.envs.base import Environment, InvalidTaskError, State, StepResult, fingerprint
from langgraph_stl.envs.webshop import episode, urls
from langgraph_stl.envs.webshop.episode import InvalidAction, ObservationMode

MAX_REDIRECTS = 5
"""Redirects followed per request (the shop itself uses one: the search form's POST to the results page)."""
SPLITS = {"test": (0, 500), "dev": (500, 1500), "train": (1500, None)}
"""WebShop's goal split convention (``baseline_models/env.py``): test [0, 500), dev [500, 1500), train [1500, n)."""


def task_ids_for(split: str, num_goals: int, prefix: str = "fixed_") -> list[str]:
    """``fixed_<i>`` session ids of ``split`` among ``num_goals`` goals."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    start, stop = SPLITS[split]
    end = num_goals if stop is None else min(stop, num_goals)
    return [f"{prefix}{i}" for i in range(min(start, num_goals), end)]


def session_for(task_id: str | int) -> str:
    """The session id of a task: ``fixed_<i>`` for an integer (or digit string), else the id itself."""
    text = str(task_id).strip()
    return f"fixed_{text}" if urls.parse_index(text) is not None else text


class WebShopEnvBase(Environment):
    """State handling shared by the HTTP and browser environments (states and observations are identical)."""

    name = "webshop"

    def __init__(
        self,
        base_url: str | None,
        *,
        observation_mode: ObservationMode = "lats",
        goals: str = "synthetic",
        seed: int = 0,
        show_attrs: bool = True,
        data_dir: str | os.PathLike[str] | None = None,
        num_goals: int | None = None,
        search_anywhere: bool = False,
    ) -> None:
        if observation_mode not in episode.OBSERVATION_MODES:
            raise ValueError(f"observation_mode must be one of {episode.OBSERVATION_MODES}, not {observation_mode!r}")
        self.observation_mode: ObservationMode = observation_mode
        self.search_anywhere = search_anywhere
        self._server: Any = None
        if base_url is None:
            from langgraph_stl.envs.webshop.server import load_site, start_server

            self._server = start_server(load_site(data_dir, goals=goals, seed=seed, show_attrs=show_attrs))
            base_url = self._server.url
            num_goals = len(self._server.site.goals) if num_goals is None else num_goals
        self.base_url = base_url.rstrip("/")
        self.num_goals = num_goals

    # -- protocol ---------------------------------------------------------------------------------------------
    def observation(self, state: State) -> str:
        return str(state["observation"])

    def is_terminal(self, state: State) -> bool:
        return bool(state["kind"] == "done")

    def legal_actions(self, state: State) -> list[str] | None:
        """The page's clickables as ``click[...]``; None on a search page (``search[<free text>]`` is open)."""
        return episode.legal_actions(state)

    async def alegal_actions(self, state: State) -> list[str] | None:
        return episode.legal_actions(state)

    def true_reward(self, state: State) -> float:
        """The score shown on the done page; 0.0 before buying."""
        reward = state.get("reward")
        return float(reward) if state["kind"] == "done" and reward is not None else 0.0

    async def atrue_reward(self, state: State) -> float:
        return self.true_reward(state)

    def instruction(self, state: State) -> str:
        """The goal's instruction text as the page shows it."""
        return str(state["instruction"])

    def task_data(self) -> dict[str, str]:
        """The embedded shop's goals (texts, attributes, options, prices), or a remote shop's URL and goal count."""
        if self._server is not None:
            return {"source": "embedded", "fingerprint": fingerprint(self._server.site.goals)}
        return {"source": self.base_url, "fingerprint": fingerprint({"num_goals": self.num_goals})}

    def task_ids(self, split: str = "test") -> list[str]:
        if self.num_goals is None:
            raise NotImplementedError("the number of goals of a remote WebShop is unknown: pass num_goals=")
        return task_ids_for(split, self.num_goals)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> WebShopEnvBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------------------------
    def _state(
        self, url: str, html: str, *, query: str | None, history: list[str], option: str | None, instruction: str = ""
    ) -> State:
        return episode.make_state(
            url,
            html,
            mode=self.observation_mode,
            query=query,
            history=history,
            clicked_option=option,
            instruction=instruction,
        )

    def _check_reset(self, task_id: str | int) -> str:
        session = session_for(task_id)
        if not session or "/" in session or len(session) > urls.MAX_SESSION_ID:
            raise InvalidTaskError(f"invalid WebShop task id {str(task_id)[:80]!r}")
        if self.num_goals is not None and session.startswith("fixed_"):
            index = urls.parse_index(session.removeprefix("fixed_"))
            if index is None or index >= self.num_goals:
                raise InvalidTaskError(f"unknown task {task_id!r}: tasks are fixed_0 .. fixed_{self.num_goals - 1}")
        return session


class WebShopHttpEnv(WebShopEnvBase):
    """WebShop through HTTP GETs (httpx). ``base_url=None`` starts an embedded server over the local catalogue.

    ``observation_mode``: ``"lats"`` (the ReAct/LATS/STL rendering, default), ``"text"`` (WebShop's own text mode)
    or ``"html"``. ``show_attrs`` (embedded server only) shows the Attributes tab, as the STL paper's server did.
    ``search_anywhere`` allows ``search[...]`` from any page (WebShop's text env) instead of only the search page
    (ReAct/LATS/STL).
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
        timeout: float = 30.0,
    ) -> None:
        import httpx

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
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, follow_redirects=False)
        self._origin = httpx.URL(self.base_url).copy_with(path="/", query=None, fragment=None)

    def _get(self, path: str) -> tuple[str, str]:
        """``(final url, html)`` of ``path``; raises :class:`InvalidAction` for an error page.

        Redirects are followed only within the shop's origin (as the browser environment's origin fence does): an
        observation never comes from another site.
        """
        response = self._client.get(path)
        for _ in range(MAX_REDIRECTS):
            if not response.has_redirect_location:
                break
            target = response.url.join(response.headers["location"])
            if target.copy_with(path="/", query=None, fragment=None) != self._origin:
                raise InvalidAction(f"Invalid action: the shop redirected {path} off its origin (to {target})")
            response = self._client.get(target)
        if response.has_redirect_location:
            raise InvalidAction(f"Invalid action: more than {MAX_REDIRECTS} redirects from {path}")
        if response.status_code >= 400:
            raise InvalidAction(f"Invalid action: the shop answered {response.status_code} for {path}")
        return str(response.url), response.text

    def reset(self, task_id: str) -> State:
        session = self._check_reset(task_id)
        try:
            url, html = self._get(urls.index_path(session))
        except InvalidAction as err:
            raise InvalidTaskError(f"unknown WebShop task {task_id!r}: {err}") from None
        return self._state(url, html, query=None, history=[], option=None)

    def step(self, state: State, action: str) -> StepResult:
        try:
            return StepResult(self._step(state, action))
        except InvalidAction as err:
            return StepResult(state, valid=False, message=str(err))

    def _step(self, state: State, action: str) -> State:
        parsed = episode.parse_action(action)
        if state["kind"] == "done":
            raise InvalidAction("Invalid action: the episode is over (the item was bought)")
        history = [*state["history"], action]
        if parsed.name == "search":
            episode.check_search(state, parsed.arg, search_anywhere=self.search_anywhere)
            keywords = parsed.arg.lower().split(" ")  # what the search form's POST + redirect does
            url, html = self._get(urls.search_results_path(state["session"], keywords, 1))
            return self._state(
                url, html, query=parsed.arg, history=history, option=None, instruction=state["instruction"]
            )
        click = episode.resolve_click(state, parsed.arg)
        url, html = self._get(click.path)
        option = click.target if click.kind == "option" else None
        return self._state(
            url, html, query=state["query"], history=history, option=option, instruction=state["instruction"]
        )

    def close(self) -> None:
        self._client.close()
        super().close()
