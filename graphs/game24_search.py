"""LangGraph Studio: STL search on the Game of 24.

Input ``{"task_id": "900"}`` (a row of ToT's ``24.csv``, or a puzzle like ``"4 5 6 10"``). Context: ``policy``
and ``value`` model specs (default ``smollm2``; ``enumerate`` for a programmatic policy, ``stl:<spec>`` for a
fine-tuned value model), ``algorithm`` (``greedy``/``bfs``/``mcts``), ``width``, ``breadth``, ``depth`` and the
other :class:`~langgraph_stl.search.SearchContext` knobs. No checkpointer: the server brings its own.
"""

from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.search import create_search_graph

graph = create_search_graph(Game24Env, algorithm=None).compile(name="game24_search")
