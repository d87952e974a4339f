"""Search-tree files: every node a search created, for inspection (``stl search --tree``, ``stl eval --save-trees``).

A tree file is one gzip-compressed JSON object (``record: "tree"``, ``schema``), written atomically (temporary file
beside the target, fsync, ``os.replace``), so a kill leaves the old file or the new one. Nodes keep what the search
saw: action, observation, value, value samples, rationale, MCTS visits, the terminal flag; environment states are
left out (they can be large and the observation shows them). ``true_reward`` is set on terminal nodes only when the
tree comes from an evaluation, which computes ground truth *after* the search (``search/run.py``).

``stl eval --save-trees`` keeps one file per task in a folder beside the results (:func:`trees_dir`); a task's tree
is written before its results line, so a resumed run, which skips the tasks that have a line, has all their trees.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_stl.evaluation.results import ResultsFormatError

TREE_SCHEMA = 1
"""Version of the tree format; bumped on incompatible changes (the reader rejects other versions by name)."""

SUMMARY_KEYS = (
    "reward",
    "true_reward",
    "value",
    "terminal",
    "states_expanded",
    "expansions",
    "policy_calls",
    "value_calls",
    "invalid_proposals",
    "value_parse_failures",
    "tokens",
    "wall_time_s",
    "error",
)
"""The ``run_search`` result keys a tree keeps next to its nodes (the trajectories follow from the nodes)."""


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One node as the search left it. ``value`` None: never valued; −1: rule-based or unparseable."""

    id: str
    parent: str | None
    depth: int
    action: str | None
    observation: str
    terminal: bool
    value: float | None = None
    value_samples: tuple[float | None, ...] = ()
    rationale: str = ""
    visits: int = 0
    value_sum: float = 0.0
    expanded: bool = False
    true_reward: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent,
            "depth": self.depth,
            "action": self.action,
            "observation": self.observation,
            "terminal": self.terminal,
            "value": self.value,
            "value_samples": list(self.value_samples),
            "rationale": self.rationale,
            "visits": self.visits,
            "value_sum": self.value_sum,
            "expanded": self.expanded,
            "true_reward": self.true_reward,
        }


@dataclass(frozen=True, slots=True)
class SearchTree:
    """A whole search: its nodes in creation order, the chosen leaf, the final leaves of every rollout."""

    task_id: str
    algorithm: str
    nodes: dict[str, TreeNode]
    chosen: str | None = None
    leaves: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def path(self, node_id: str) -> list[str]:
        """Node ids from the root to ``node_id``."""
        chain = [node_id]
        while (parent := self.nodes[chain[-1]].parent) is not None:
            chain.append(parent)
        return chain[::-1]

    def chosen_path(self) -> list[str]:
        return self.path(self.chosen) if self.chosen else []

    def to_json(self) -> dict[str, Any]:
        return {
            "record": "tree",
            "schema": TREE_SCHEMA,
            "task_id": self.task_id,
            "algorithm": self.algorithm,
            "chosen": self.chosen,
            "leaves": list(self.leaves),
            "summary": self.summary,
            "config": self.config,
            "nodes": [n.to_json() for n in self.nodes.values()],
        }

    def _repr_html_(self) -> str:
        """Jupyter: the interactive tree view (``langgraph_stl.view``)."""
        from langgraph_stl.view import render_html, view_of_tree

        return render_html(view_of_tree(self), inline=True)

    @classmethod
    def from_result(cls, result: dict[str, Any], *, config: dict[str, Any] | None = None) -> SearchTree:
        """The tree of an ``arun_search(..., keep_tree=True)`` result (its ``tree`` key holds the raw nodes)."""
        raw = result.get("tree")
        if not isinstance(raw, list):
            raise ValueError("this search result has no tree: run the search with keep_tree=True")
        data = {
            "record": "tree",
            "schema": TREE_SCHEMA,
            "task_id": result["task_id"],
            "algorithm": result["algorithm"],
            "chosen": result.get("leaf"),
            "leaves": [r["leaf"] for r in result.get("rollouts", [])],
            "summary": {k: result[k] for k in SUMMARY_KEYS if k in result},
            "config": config or {},
            "nodes": raw,
        }
        return parse_tree(data, "<search result>")


def tree_from_state(values: dict[str, Any]) -> SearchTree:
    """The tree in a search graph's state: ``graph.get_state(config).values``, or a LangGraph Studio / server
    thread's ``state["values"]`` (no true rewards: those are computed only by ``arun_search``)."""
    nodes, result = values.get("nodes"), values.get("result") or {}
    if not isinstance(nodes, dict) or not nodes:
        raise ValueError("this state holds no search tree (no 'nodes'; is it a search graph's thread?)")
    base = {"task_id": str(values.get("task_id", "")), "algorithm": "?", "rollouts": []}
    return SearchTree.from_result({**base, **result, "tree": tree_nodes(nodes)})


def tree_nodes(nodes: dict[str, Any], true_rewards: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The graph state's ``nodes`` as tree-file node objects (without environment states)."""
    rewards = true_rewards or {}
    return [
        TreeNode(
            id=n["id"],
            parent=n["parent"],
            depth=n["depth"],
            action=n["action"],
            observation=n["observation"],
            terminal=n["terminal"],
            value=n["value"],
            value_samples=tuple(n.get("value_samples", ())),
            rationale=n["rationale"],
            visits=n["visits"],
            value_sum=n["value_sum"],
            expanded=n["expanded"],
            true_reward=rewards.get(n["id"]),
        ).to_json()
        for n in nodes.values()
    ]


# ------------------------------------------------------------------------------------------------------ reading


def parse_tree(data: Any, source: Path | str) -> SearchTree:
    """Validate a decoded tree object; every problem raises :class:`ResultsFormatError` naming ``source``."""

    def fail(message: str) -> ResultsFormatError:
        return ResultsFormatError(source, None, message)

    if not isinstance(data, dict) or data.get("record") != "tree":
        kind = data.get("record") if isinstance(data, dict) else type(data).__name__
        raise fail(f"not a search-tree file (record type {kind!r}, expected 'tree')")
    if data.get("schema") != TREE_SCHEMA:
        raise fail(f"unsupported tree schema {data.get('schema')!r} (this version reads {TREE_SCHEMA})")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise fail("the tree has no nodes (an empty or failed search)")
    nodes: dict[str, TreeNode] = {}
    for i, raw in enumerate(raw_nodes):
        try:
            node = _node(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise fail(f"node {i} is malformed: {exc}") from None
        if node.id in nodes:
            raise fail(f"node {i}: duplicate id {node.id!r}")
        nodes[node.id] = node
    for node in nodes.values():
        if node.parent is not None and node.parent not in nodes:
            raise fail(f"node {node.id!r} names a parent {node.parent!r} that is not in the tree")
    referenced = [data.get("chosen"), *data.get("leaves", [])]
    missing = [n for n in referenced if n is not None and n not in nodes]
    if missing:
        raise fail(f"chosen/leaf node(s) {missing} are not in the tree")
    for key in ("task_id", "algorithm"):
        if not isinstance(data.get(key), str):
            raise fail(f"field {key!r} must be a string")
    return SearchTree(
        task_id=data["task_id"],
        algorithm=data["algorithm"],
        nodes=nodes,
        chosen=data.get("chosen"),
        leaves=tuple(data.get("leaves", [])),
        summary=dict(data.get("summary") or {}),
        config=dict(data.get("config") or {}),
    )


def _node(raw: Any) -> TreeNode:
    if not isinstance(raw, dict):
        raise TypeError("expected an object")
    samples = raw.get("value_samples", [])
    if not isinstance(samples, list):
        raise TypeError("'value_samples' must be a list")
    return TreeNode(
        id=_typed(raw, "id", str),
        parent=_typed(raw, "parent", str, optional=True),
        depth=_typed(raw, "depth", int),
        action=_typed(raw, "action", str, optional=True),
        observation=_typed(raw, "observation", str),
        terminal=_typed(raw, "terminal", bool),
        value=_number(raw.get("value")),
        value_samples=tuple(_number(s) for s in samples),
        rationale=str(raw.get("rationale", "")),
        visits=int(raw.get("visits", 0)),
        value_sum=float(raw.get("value_sum", 0.0)),
        expanded=bool(raw.get("expanded", False)),
        true_reward=_number(raw.get("true_reward")),
    )


def _typed(raw: dict[str, Any], key: str, kind: type, *, optional: bool = False) -> Any:
    value = raw[key]
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number or null, got {value!r}")
    return float(value)


def read_tree(path: str | Path) -> SearchTree:
    """Read a tree file (gzip or plain JSON); a truncated or foreign file raises :class:`ResultsFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFormatError(path, None, "no such tree file")
    raw = path.read_bytes()
    try:
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        data = json.loads(text)
    except (EOFError, OSError, zlib.error) as exc:
        raise ResultsFormatError(path, None, f"truncated or corrupt gzip data ({exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFormatError(path, None, f"not valid JSON ({exc})") from None
    return parse_tree(data, path)


# ------------------------------------------------------------------------------------------------------ writing


def write_tree(tree: SearchTree, path: str | Path) -> Path:
    """Write ``tree`` gzip-compressed (plain JSON when ``path`` does not end in ``.gz``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(tree.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
    if path.suffix == ".gz":
        body = gzip.compress(body, compresslevel=6, mtime=0)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def trees_dir(results_path: str | Path) -> Path:
    """The folder of per-task trees beside a results file: ``run.jsonl`` → ``run.trees/``."""
    results_path = Path(results_path)
    return results_path.with_name(results_path.stem + ".trees")


def tree_path(folder: Path, task_id: str) -> Path:
    """One task's tree file in ``folder``; task ids are quoted into safe file names."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", lambda m: f"%{ord(m.group()):02X}", task_id)
    return folder / f"{safe}.json.gz"


def read_trees(folder: Path, task_ids: list[str]) -> dict[str, SearchTree]:
    """The trees of ``task_ids`` that ``folder`` holds (tasks that failed or ran without trees have none)."""
    out: dict[str, SearchTree] = {}
    for task_id in task_ids:
        path = tree_path(folder, task_id)
        if path.is_file():
            out[task_id] = read_tree(path)
    return out
