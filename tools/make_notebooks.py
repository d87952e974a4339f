"""Generate the notebooks in ``notebooks/`` from the cell sources below, without outputs.

The notebooks are written from here so that a review reads plain Python, not JSON. Each notebook opens with a
parameter cell that reads ``STL_NB_*`` environment variables; ``tests/test_notebooks.py`` sets them to small
values and executes the notebooks with nbclient.

    python tools/make_notebooks.py          # rewrite notebooks/*.ipynb
    python tools/make_notebooks.py --check  # exit 1 if a committed notebook differs from its source here
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"

Cell = tuple[str, str]
"""(kind, source): kind is "md", "code" or "params" (a code cell tagged ``parameters``)."""


QUICKSTART: list[Cell] = [
    (
        "md",
        """# Quickstart: value-guided tree search on the Game of 24

A search with the **embedded SmolLM2-135M** as value model, on one Game of 24 puzzle. The policy enumerates legal
moves, and the value model scores every child state. Greedy search follows the best-scored child, for a few
independent rollouts. The tree is **streamed**: every expansion and every value estimate is printed as it happens.
At the end we score a few puzzles with the evaluation runner and print the report that `stl report` prints.

Everything runs locally on CPU. The embedded model starts on first use, which takes a few seconds.""",
    ),
    (
        "params",
        """import os

VALUE = os.environ.get("STL_NB_VALUE", "smollm2")  # value model spec: the embedded SmolLM2-135M-Instruct
TASK = os.environ.get("STL_NB_TASK", "900")  # a row of ToT's 24.csv (the test split is 900-999)
WIDTH = int(os.environ.get("STL_NB_WIDTH", "3"))  # children proposed per expansion
ROLLOUTS = int(os.environ.get("STL_NB_ROLLOUTS", "2"))  # independent greedy rollouts (oracle pass@n)
VALUE_SAMPLES = int(os.environ.get("STL_NB_VALUE_SAMPLES", "1"))  # value samples averaged per state
EVAL_TASKS = int(os.environ.get("STL_NB_EVAL_TASKS", "3"))  # puzzles scored at the end""",
    ),
    (
        "code",
        """from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.search import SearchContext, arun_search, make_policy, make_value

env = Game24Env()
policy = make_policy("enumerate")  # legal moves in order; an LLM policy is a model spec away
value = make_value(VALUE)
context = SearchContext(width=WIDTH, n_rollouts=ROLLOUTS, n_value_samples=VALUE_SAMPLES, depth=3)
print("puzzle:", env.observation(env.reset(TASK)))""",
    ),
    ("md", "## The tree, streamed\n\nEach line is an event from the search graph, in the order it arrived."),
    (
        "code",
        """def show(event: dict) -> None:
    kind = event["type"]
    if kind == "start":
        print(f"search {event['task_id']} with {event['algorithm']}, {event['roots']} rollout(s)")
    elif kind == "expanded":
        print(f"{'  ' * event['depth']}expand {event['node']}: {len(event['children'])} children")
    elif kind == "value":
        mark = " (terminal)" if event["terminal"] else ""
        print(f"{'  ' * (event['node'].count('.') + 1)}{event['action']!r:45} value {event['value']:.2f}{mark}")
    elif kind == "done":
        print("done:", " -> ".join(event["trajectory"]))


result = await arun_search(env, policy, value, TASK, context=context, on_event=show)""",
    ),
    (
        "md",
        """## What the search found

The value model picks the trajectory it rates best. The ground-truth reward (1 if the expression makes 24) is read
only **after** the search, for display. `pass_at_n` is the oracle best of the rollouts, and `value_selected` is what
the agent would answer on its own.""",
    ),
    (
        "code",
        """print("chosen:", result["trajectory"], "value", result["value"])
print("true reward:", result["true_reward"])
print("states expanded:", result["states_expanded"], "| value calls:", result["value_calls"])
print("tokens:", result["tokens"])""",
    ),
    (
        "md",
        """## Scoring several puzzles

`run_eval` is what `stl eval` runs. It takes any async `run_task(task_id)`, writes one JSON line per task as it
ends, and resumes if you rerun it. The report counts missing or failed tasks as 0.""",
    ),
    (
        "code",
        """import tempfile
from pathlib import Path

from IPython.display import Markdown, display

from langgraph_stl.evaluation.report import build_report
from langgraph_stl.evaluation.run import run_eval
from langgraph_stl.evaluation.search_task import make_search_task

out = Path(tempfile.mkdtemp()) / "quickstart.jsonl"
run_task = make_search_task(env, policy="enumerate", value=VALUE, context=vars(context))
tasks = env.task_ids("test")[:EVAL_TASKS]
outcome = await run_eval(tasks, run_task, out, config={"label": "quickstart"}, concurrency=2, progress=False)
print(f"{outcome.ran} tasks in {outcome.wall_time_s:.1f} s -> {out}")
display(Markdown(build_report([out]).to_markdown()))""",
    ),
]

NOTEBOOKS: dict[str, list[Cell]] = {"01_quickstart.ipynb": QUICKSTART}


def build(cells: list[Cell]) -> nbformat.NotebookNode:
    """A notebook (nbformat 4, Python 3 kernel) of ``cells``, without outputs."""
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for i, (kind, source) in enumerate(cells):
        if kind == "md":
            cell = new_markdown_cell(source)
        else:
            cell = new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
        cell["id"] = f"cell-{i:02d}"  # stable ids keep regenerated notebooks byte-identical
        nb.cells.append(cell)
    return nb


def render(cells: list[Cell]) -> str:
    return nbformat.writes(build(cells)) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the committed notebooks are current")
    args = parser.parse_args()
    stale = []
    for name, cells in NOTEBOOKS.items():
        path, text = NOTEBOOKS_DIR / name, render(cells)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        NOTEBOOKS_DIR.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"stale notebooks (run python tools/make_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
