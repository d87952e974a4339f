"""Graph structure is stable: mermaid drawings per algorithm and each node's sync/async/retry contract (syrupy
snapshots; update them deliberately with --snapshot-update when the graph changes)."""

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


def test_node_runtime_contract(snapshot: SnapshotAssertion) -> None:
    """Every node has a sync and an async implementation; the model-calling ones retry transient errors only."""
    value = ValueModel(ScriptedChatModel(responder=fixed("")))
    builder = create_search_graph(TreeEnv(), EnumeratePolicy(), value)
    contract = {
        name: {
            "sync": spec.runnable.func is not None,  # type: ignore[attr-defined]
            "async": spec.runnable.afunc is not None,  # type: ignore[attr-defined]
            "retry": None
            if spec.retry_policy is None
            else {
                **spec.retry_policy._asdict(),  # type: ignore[union-attr]
                "retry_on": spec.retry_policy.retry_on.__name__,  # type: ignore[union-attr]
            },
        }
        for name, spec in builder.nodes.items()
    }
    assert contract == snapshot
