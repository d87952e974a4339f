"""WebShop (Yao et al. 2022), reimplemented locally and faithfully: catalogue, goals, reward, search, server, envs.

Public names resolve lazily (PEP 562), so importing one submodule does not import the others' dependencies
(rapidfuzz for the reward, spaCy never at run time). Data preparation is
``langgraph_stl.envs.webshop.prepare.prepare`` (not re-exported: the name is its submodule's).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langgraph_stl.envs.webshop.browser_env import WebShopBrowserEnv
    from langgraph_stl.envs.webshop.catalog import (
        GoalKind,
        Product,
        WebShopDataError,
        document_contents,
        load_catalog,
        process_raw_products,
    )
    from langgraph_stl.envs.webshop.goals import (
        Goal,
        WebShopData,
        load_goals,
        load_webshop,
        parse_session_id,
        session_id,
        split_indices,
    )
    from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
    from langgraph_stl.envs.webshop.normalize import normalize_color
    from langgraph_stl.envs.webshop.prepare import TitleNounsUnavailable
    from langgraph_stl.envs.webshop.reward import get_reward
    from langgraph_stl.envs.webshop.search_engine import SearchEngine, load_search_engine
    from langgraph_stl.envs.webshop.server import load_site, serving, start_server
    from langgraph_stl.envs.webshop.tools import WebShopHttpToolkit, WebShopToolkit

_EXPORTS: dict[str, str] = {
    "GoalKind": "catalog",
    "Product": "catalog",
    "WebShopDataError": "catalog",
    "document_contents": "catalog",
    "load_catalog": "catalog",
    "process_raw_products": "catalog",
    "Goal": "goals",
    "WebShopData": "goals",
    "load_goals": "goals",
    "load_webshop": "goals",
    "parse_session_id": "goals",
    "session_id": "goals",
    "split_indices": "goals",
    "normalize_color": "normalize",
    "TitleNounsUnavailable": "prepare",
    "get_reward": "reward",
    "SearchEngine": "search_engine",
    "load_search_engine": "search_engine",
    "load_site": "server",
    "serving": "server",
    "start_server": "server",
    "WebShopHttpEnv": "http_env",
    "WebShopBrowserEnv": "browser_env",
    "WebShopToolkit": "tools",
    "WebShopHttpToolkit": "tools",
}

__all__ = [
    "Goal",
    "GoalKind",
    "Product",
    "SearchEngine",
    "TitleNounsUnavailable",
    "WebShopBrowserEnv",
    "WebShopData",
    "WebShopDataError",
    "WebShopHttpEnv",
    "WebShopHttpToolkit",
    "WebShopToolkit",
    "document_contents",
    "get_reward",
    "load_catalog",
    "load_goals",
    "load_search_engine",
    "load_site",
    "load_webshop",
    "normalize_color",
    "parse_session_id",
    "process_raw_products",
    "serving",
    "session_id",
    "split_indices",
    "start_server",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
