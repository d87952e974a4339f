"""Per-run knobs of the search graphs, passed as LangGraph ``context`` (never checkpointed).

Defaults follow the paper's greedy WebShop evaluation (§3 of the spec): 3 rollouts, 5 value samples at T=1.0,
max depth 5, up to 5 selected clickables per step and 10 sampled queries at the root.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class SearchContext:
    """Knobs of one search run.

    ``algorithm``: ``greedy``/``bfs``/``mcts``, used when the graph was built with ``algorithm=None`` (Studio).
    ``width``: proposals per expansion (WebShop: distinct clickables selected). ``root_width``: proposals at the
    root (WebShop: sampled ``search[...]`` queries; None = ``2 * width``). ``breadth``: BFS beam size. ``depth``:
    max actions per trajectory. ``n_rollouts``: independent greedy rollouts (pass@n). ``budget``: MCTS expansions.
    ``temperature``: sampling temperature of models built from specs. ``value_mode``: ``generate`` or ``logits``
    for spec-built value models. ``expand_retries``: re-expansions of a node that yielded no valid successor
    (reference: 3).
    ``force_terminal``: at the last step keep only terminal children (None = the environment's default: on for
    WebShop). ``policy``/``value``: model specs, used only when the graph was built without policy/value objects
    (Studio). ``max_retries``: re-asks after an unusable policy reply (WebShop: per clickable pick, reference: 3).
    Failed model calls (timeouts, connection errors, 429/5xx) are retried by the graph's ``RetryPolicy``
    (``create_search_graph(retry_policy=...)``), not here.

    An unknown keyword (in Python, or a key of a dict context over HTTP) is a ``ValueError`` naming the known ones.
    """

    algorithm: str = "greedy"
    width: int = 5
    root_width: int | None = None
    breadth: int = 5
    depth: int = 5
    n_rollouts: int = 3
    n_value_samples: int = 5
    budget: int = 30
    c_uct: float = 1.0
    seed: int = 0
    temperature: float = 1.0
    expand_retries: int = 3
    force_terminal: bool | None = None
    policy: str | None = None
    value: str | None = None
    value_mode: str = "generate"
    max_retries: int = 3

    def __new__(cls, *args: Any, **kwargs: Any) -> SearchContext:
        # LangGraph builds the context as SearchContext(**dict): reject unknown keys here, before the dataclass
        # __init__ raises a bare TypeError about an unexpected keyword argument.
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown search context keys {unknown}; known: {sorted(known)}")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        for name in ("width", "breadth", "depth", "n_rollouts", "n_value_samples", "budget"):
            if getattr(self, name) < 1:
                raise ValueError(f"SearchContext.{name} must be >= 1, got {getattr(self, name)}")
        if self.expand_retries < 0:
            raise ValueError(f"SearchContext.expand_retries must be >= 0, got {self.expand_retries}")
        if self.root_width is not None and self.root_width < 1:
            raise ValueError(f"SearchContext.root_width must be >= 1, got {self.root_width}")
        if self.algorithm not in ("greedy", "bfs", "mcts"):
            raise ValueError(f"SearchContext.algorithm must be greedy, bfs or mcts, got {self.algorithm!r}")
        if self.value_mode not in ("generate", "logits"):
            raise ValueError(f"SearchContext.value_mode must be 'generate' or 'logits', got {self.value_mode!r}")

    @property
    def effective_root_width(self) -> int:
        return self.root_width if self.root_width is not None else 2 * self.width

    @classmethod
    def from_any(cls, value: SearchContext | dict[str, Any] | None) -> SearchContext:
        """Accept a context object, a plain dict (HTTP clients, Studio) or None (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(f"expected SearchContext or dict, got {type(value).__name__}")
