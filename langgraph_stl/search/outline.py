"""A compact, text-only summary of a search tree for the graph's output (LangGraph Studio's state panel).

Studio shows state as JSON; the full tree there is thousands of lines of raw nodes. The outline keeps the
counts and, as one line per node, the paths to the final leaves with the siblings each step was chosen over,
indented by depth: enough to see what the value model preferred without opening the HTML view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_LINES = 60


def tree_outline(nodes: Mapping[str, Any], leaves: Sequence[str], chosen: str | None) -> dict[str, Any]:
    """Counts plus an outline: ``*`` marks the chosen trajectory, ``>`` other final leaves' paths, ``T`` terminals."""
    on_chosen = set(_path(nodes, chosen)) if chosen else set()
    on_leaves = {n for leaf in leaves for n in _path(nodes, leaf)}
    shown = on_leaves | {c for n in on_chosen for c in nodes[n]["children"]}
    lines: list[str] = []
    stack = [n for n in reversed(list(nodes)) if nodes[n]["parent"] is None]
    while stack:
        node_id = stack.pop()
        node = nodes[node_id]
        if node_id not in shown and node["parent"] is not None:
            continue
        mark = "*" if node_id in on_chosen else ">" if node_id in on_leaves else " "
        value = "  -  " if node["value"] is None else f"{node['value']:5.2f}"
        action = node["action"] if node["action"] is not None else f"(root {node_id})"
        end = " T" if node["terminal"] else ""
        lines.append(f"{'  ' * node['depth']}{mark} {value} {action}{end}")
        stack.extend(reversed(node["children"]))
    hidden = len(lines) - MAX_LINES
    return {
        "nodes": len(nodes),
        "expanded": sum(1 for n in nodes.values() if n["expanded"]),
        "terminal": sum(1 for n in nodes.values() if n["terminal"]),
        "max_depth": max((n["depth"] for n in nodes.values()), default=0),
        "outline": lines[:MAX_LINES]
        + ([f"... {hidden} more lines (open the full tree with stl view)"] if hidden > 0 else []),
    }


def _path(nodes: Mapping[str, Any], node_id: str) -> list[str]:
    chain = [node_id]
    while nodes[chain[-1]]["parent"] is not None:
        chain.append(nodes[chain[-1]]["parent"])
    return chain
