"""Environments: the protocol (:mod:`.base`), Game of 24 and WebShop."""

from langgraph_stl.envs.base import Environment, InvalidTaskError, State, StepResult

__all__ = ["Environment", "InvalidTaskError", "State", "StepResult"]
