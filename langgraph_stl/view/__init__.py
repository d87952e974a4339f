"""Offline HTML inspector for search trees, evaluation runs, collection datasets and ``stl improve`` folders.

``load_view`` reads files with the project's readers into a :class:`View` (JSON data), ``render_html`` /
``write_html`` turn it into one self-contained page, ``show`` returns it for a notebook cell. Importing this
package loads only the standard library; readers are imported when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph_stl.view.load import View, ViewError, load_view, view_of_result, view_of_tree
from langgraph_stl.view.page import render_html, write_html


class Rendered:
    """A rendered view: displays itself in notebooks (``_repr_html_``), saves itself as a page."""

    def __init__(self, view: View) -> None:
        self.view = view

    def _repr_html_(self) -> str:
        return render_html(self.view, inline=True)

    def save(self, out: str | Path) -> Path:
        return write_html(self.view, out)


def show(obj: Any, *, compare: str | Path | None = None) -> Rendered:
    """The view of a search result (``arun_search``), a ``SearchTree``, a :class:`View`, or a path that
    ``stl view`` accepts (results, tree file, dataset, run folder; ``compare``: a second results file)."""
    from langgraph_stl.evaluation.trees import SearchTree

    if isinstance(obj, View):
        return Rendered(obj)
    if isinstance(obj, SearchTree):
        return Rendered(view_of_tree(obj))
    if isinstance(obj, dict):
        return Rendered(view_of_result(obj))
    if isinstance(obj, str | Path):
        return Rendered(load_view(obj, compare=compare))
    raise TypeError(f"show() takes a search result, a SearchTree, a View or a path, not {type(obj).__name__}")


__all__ = [
    "Rendered",
    "View",
    "ViewError",
    "load_view",
    "render_html",
    "show",
    "view_of_result",
    "view_of_tree",
    "write_html",
]
