"""Environments: the protocol (:mod:`.base`), Game of 24 and WebShop, and :func:`make_env` to build one by name."""

from __future__ import annotations

import importlib

from langgraph_stl.envs.base import Environment, InvalidTaskError, State, StepResult

ENVS = ("game24", "webshop")
"""Built-in environment names; ``py:<module>:<factory>`` names a user-defined one."""


def make_env(name: str, *, webshop_url: str | None = None, webshop_goals: int | None = None) -> Environment:
    """An environment by name: ``game24``, ``webshop`` or ``py:<module>:<factory>`` (a zero-argument callable).

    WebShop starts its embedded server over the local catalogue unless ``webshop_url`` points at a running shop
    (ours or the original); a remote shop's number of goals (``webshop_goals``) fixes its task ids ``fixed_<i>``.
    """
    if name == "game24":
        from langgraph_stl.envs.game24 import Game24Env

        return Game24Env()
    if name == "webshop":
        from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

        if webshop_url is not None and webshop_goals is None:
            raise ValueError("a remote WebShop URL needs its number of goals (e.g. --webshop-goals 12087)")
        return WebShopHttpEnv(webshop_url, num_goals=webshop_goals)
    if name.startswith("py:"):
        module_name, _, attr = name[3:].rpartition(":")
        if not module_name or not attr:
            raise ValueError(f"bad environment {name!r}: use py:<module>:<factory>")
        env = getattr(importlib.import_module(module_name), attr)()
        if not isinstance(env, Environment):
            raise ValueError(f"{name!r} built a {type(env).__name__}, not an Environment")
        return env
    raise ValueError(f"unknown environment {name!r}: use {', '.join(ENVS)} or py:<module>:<factory>")


__all__ = ["ENVS", "Environment", "InvalidTaskError", "State", "StepResult", "make_env"]
