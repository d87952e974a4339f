"""langgraph-stl: Self-Taught Lookahead (Mendes et al. 2025) as LangGraph graphs.

Importing this package is cheap: it never imports torch, transformers, trl or peft (training and local-model
modules import them lazily).
"""

from langgraph_stl.envs.base import Environment, State, StepResult
from langgraph_stl.paths import DataNotFoundError, cache_dir, data_dir

__version__ = "0.1.0"

__all__ = [
    "DataNotFoundError",
    "Environment",
    "State",
    "StepResult",
    "__version__",
    "cache_dir",
    "data_dir",
]
