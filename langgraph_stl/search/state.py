"""Graph state of the search graphs: a flat, JSON-native tree plus counters.

The tree is a dict of :class:`NodeDict` keyed by node id, merged by :func:`merge_nodes`, so parallel ``Send``
branches (one per expanded node) write disjoint updates without shared mutation, and every checkpointer can store
it (no Python objects, no parent pointers).
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from typing_extensions import TypedDict


class NodeDict(TypedDict):
    """One search-tree node. ``value`` is None until evaluated; −1 marks rule-based or unparseable values.
    ``value_samples`` are the per-sample scores ``value`` averages (None: a sample that did not parse)."""

    id: str
    parent: str | None
    rollout: int
    depth: int
    action: str | None
    observation: str
    env_state: dict[str, Any]
    terminal: bool
    expanded: bool
    children: list[str]
    value: float | None
    value_samples: list[float | None]
    rationale: str
    visits: int
    value_sum: float


def merge_nodes(left: dict[str, NodeDict], right: dict[str, Any]) -> dict[str, NodeDict]:
    """Reducer: add new nodes and apply partial updates (``{"id": {"value": 0.4}}``) field by field."""
    merged = dict(left)
    for node_id, update in right.items():
        base = merged.get(node_id)
        merged[node_id] = update if base is None else {**base, **update}  # type: ignore[typeddict-item]
    return merged


def add_stats(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    """Reducer: counters add up across parallel branches and supersteps."""
    merged = dict(left)
    for key, count in right.items():
        merged[key] = merged.get(key, 0) + count
    return merged


class RolloutDict(TypedDict):
    """One greedy rollout (or one final beam/MCTS leaf): where it stands and whether it is done."""

    index: int
    current: str
    done: bool


class SearchInput(TypedDict):
    task_id: str


class SearchState(TypedDict):
    """Full graph state. ``rollouts`` drive greedy search, ``frontier`` the BFS beam and MCTS's selected leaf."""

    task_id: str
    nodes: Annotated[dict[str, NodeDict], merge_nodes]
    stats: Annotated[dict[str, int], add_stats]
    rollouts: NotRequired[list[RolloutDict]]
    frontier: NotRequired[list[str]]
    iteration: NotRequired[int]
    instruction: NotRequired[str]
    result: NotRequired[dict[str, Any] | None]


class SearchOutput(TypedDict):
    task_id: str
    result: dict[str, Any] | None


class ExpandTask(TypedDict):
    """Payload of one ``Send("expand", ...)``: the node and its root-to-node path (what the prompts need)."""

    node: NodeDict
    path: list[tuple[str, str]]
    root_observation: str
    instruction: str


class EvaluateTask(TypedDict):
    """Payload of one ``Send("evaluate", ...)``: a parent's new children, evaluated together."""

    parent: NodeDict
    children: list[NodeDict]
    path: list[tuple[str, str]]
    root_observation: str
