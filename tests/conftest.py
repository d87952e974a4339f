"""Shared fixtures. Data comes from STL_DATA_DIR (CI: ../shared/data), never from the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = next(
    (p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.exists()),
    REPO.parent / "shared" / "data",
)

if "STL_DATA_DIR" not in os.environ and DEFAULT_DATA.exists():
    os.environ["STL_DATA_DIR"] = str(DEFAULT_DATA)
# Derived artefacts (converted models, prepared WebShop caches) stay inside the checkout, not the user cache.
os.environ.setdefault("STL_CACHE_DIR", str(REPO / ".stl-test-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGGRAPH_CLI_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data directory, or skip-free failure if it is missing (CI must provide it)."""
    path = Path(os.environ["STL_DATA_DIR"])
    assert path.exists(), f"STL_DATA_DIR={path} does not exist"
    return path


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama folder (tests/tiny_llama.py), built once per session and only read by the trainers."""
    from tests.tiny_llama import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")
