"""Shared helpers of the WebShop server/env/tools tests: one loaded site per configuration, one browser per session.

Helpers are cached at module level (not pytest fixtures) so that every test module shares the same objects.
"""

from __future__ import annotations

import atexit
import functools

import pytest

from langgraph_stl.envs.webshop.browser_env import BrowserRunner, chromium_executable
from langgraph_stl.envs.webshop.server import WebShopSite, load_site


@functools.cache
def webshop_site(goals: str = "synthetic", show_attrs: bool = True) -> WebShopSite:
    """The real site (catalogue, seeded goals, BM25, reward) over the shared data, loaded once per configuration.

    One reward is computed up front: the first one may prepare the title-noun cache with spaCy (seconds), which must
    not happen inside a timed HTTP request.
    """
    site = load_site(goals=goals, seed=0, show_attrs=show_attrs)
    goal = site.goals[0]
    site.reward(site.by_asin[goal["asin"]], goal, site.product_prices[goal["asin"]], {})
    return site


@functools.cache
def shared_browser() -> BrowserRunner:
    """One headless Chromium for the whole test session (closed at exit); skips if no Chromium is installed."""
    if chromium_executable() is None:
        pytest.skip("no Chromium executable (install Debian's chromium or set STL_CHROMIUM)")
    runner = BrowserRunner()
    atexit.register(runner.close)
    return runner


def target_of(site: WebShopSite, goal_index: int) -> tuple[str, dict[str, str]]:
    """ASIN and option values that satisfy a synthetic goal (its target product and goal options)."""
    goal = site.goals[goal_index]
    return goal["asin"], dict(goal["goal_options"])
