"""STL search core: policies, value models, lookahead targets and the greedy/BFS/MCTS search graphs.

Nothing here imports torch or transformers; model backends are loaded lazily through
:mod:`langgraph_stl.search.specs`.
"""

from langgraph_stl.search.context import SearchContext
from langgraph_stl.search.graph import ALGORITHMS, Algorithm, create_search_graph
from langgraph_stl.search.lookahead import LookaheadTarget, lookahead
from langgraph_stl.search.policy import EnumeratePolicy, LLMPolicy, Policy, PolicyInput, Proposals, SteppedPolicy
from langgraph_stl.search.run import SearchResult, arun_search, run_search
from langgraph_stl.search.specs import make_policy, make_value
from langgraph_stl.search.value import ValueEstimate, ValueItem, ValueModel

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "EnumeratePolicy",
    "LLMPolicy",
    "LookaheadTarget",
    "Policy",
    "PolicyInput",
    "Proposals",
    "SearchContext",
    "SearchResult",
    "SteppedPolicy",
    "ValueEstimate",
    "ValueItem",
    "ValueModel",
    "arun_search",
    "create_search_graph",
    "lookahead",
    "make_policy",
    "make_value",
    "run_search",
]
