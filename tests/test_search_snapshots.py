"""Graph structure is stable: mermaid drawings per algorithm (syrupy snapshots)."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from langgraph_stl.search import EnumeratePolicy, ValueModel, create_search_graph
from tests.fakes import ScriptedChatModel, TreeEnv, fixed


@pytest.mark.parametrize("algorithm", ["greedy", "bfs", "mcts", None])
def test_graph_structure(algorithm: str | None, snapshot: SnapshotAssertion) -> None:
    value = ValueModel(ScriptedChatModel(responder=fixed("")))
    graph = create_search_graph(TreeEnv(), EnumeratePolicy(), value, algorithm=algorithm).compile()  # type: ignore[arg-type]
    assert graph.get_graph().draw_mermaid() == snapshot
