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


result = await arun_search(env, policy, value, TASK, context=context, on_event=show, keep_tree=True)""",
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
        """## The tree, interactive

`keep_tree=True` kept every node, so the result renders as the same offline inspector that `stl view` writes:
nodes coloured by value, the chosen trajectory highlighted, terminal rewards shown. Click a node (or use the arrow
keys) to read its action, observation, value samples and the value model's rationale.""",
    ),
    ("code", "result"),
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

from langgraph_stl.evaluation.trees import trees_dir

out = Path(tempfile.mkdtemp()) / "quickstart.jsonl"
run_task = make_search_task(env, policy="enumerate", value=VALUE, context=vars(context), trees=trees_dir(out))
tasks = env.task_ids("test")[:EVAL_TASKS]
outcome = await run_eval(tasks, run_task, out, config={"label": "quickstart"}, concurrency=2, progress=False)
print(f"{outcome.ran} tasks in {outcome.wall_time_s:.1f} s -> {out}")
display(Markdown(build_report([out]).to_markdown()))""",
    ),
    (
        "md",
        """The run kept each task's tree beside the results (what `stl eval --save-trees` does). `show` gives the page
`stl view` writes: a sortable, filterable task table; click a task for its tree.""",
    ),
    (
        "code",
        """from langgraph_stl.view import show

show(out)""",
    ),
]

STL_GAME24: list[Cell] = [
    (
        "md",
        """# One STL iteration on the Game of 24, before and after

Self-Taught Lookahead improves a value model **without rewards**:

1. The base value model V0 scores the successors that the policy proposes for states on a few training puzzles.
2. Each state's training target is V0's verdict on its **best successor**: the action, the real next state, V0's
   rationale and its score.
3. V1 is fine-tuned (LoRA) on those targets, so it learns to look one step ahead by itself.

Then V0 and V1 guide the same search on the same test puzzles. The ground truth (did the expression make 24?) is
used only to score the two runs.

At this scale (a 135M model, a handful of puzzles, a short fine-tune) expect noisy differences. The paired p-value
in the last table says how much to trust them.""",
    ),
    (
        "params",
        """import os
import tempfile

VALUE = os.environ.get("STL_NB_VALUE", "smollm2")  # V0: the embedded SmolLM2-135M-Instruct
BASE = os.environ.get("STL_NB_BASE", "smollm2")  # what V1 is fine-tuned from
POLICY = os.environ.get("STL_NB_POLICY", "enumerate:shuffle")  # legal moves, shuffled
TRAIN_TASKS = int(os.environ.get("STL_NB_TRAIN_TASKS", "4"))  # training puzzles (collection)
EVAL_TASKS = int(os.environ.get("STL_NB_EVAL_TASKS", "6"))  # test puzzles (V0 vs V1)
TRAIN_STEPS = int(os.environ.get("STL_NB_TRAIN_STEPS", "20"))  # LoRA steps
GGUF = os.environ.get("STL_NB_GGUF", "1") == "1"  # serve V1 with llama.cpp (embedded base only)
OUT = os.environ.get("STL_NB_OUT") or tempfile.mkdtemp(prefix="stl-game24-")""",
    ),
    (
        "code",
        """from langgraph_stl.envs.game24 import Game24Env
from langgraph_stl.training.improve import ImproveConfig, arun_improve, summary_rows

env = Game24Env()
config = ImproveConfig(
    env="game24",
    out=OUT,
    iterations=1,
    policy=POLICY,
    value=VALUE,
    base=BASE,
    train_tasks=env.task_ids("train")[:TRAIN_TASKS],
    eval_tasks=env.task_ids("test")[:EVAL_TASKS],
    beam=1,
    explore=1,
    width=3,
    depth=3,
    value_samples=1,
    gguf=GGUF,
    train={"max_steps": TRAIN_STEPS, "batch_size": 4, "max_length": 1024},
)
manifest = await arun_improve(config)  # evaluate V0 -> collect -> train V1 -> evaluate V1 (resumable)
for row in summary_rows(manifest):
    print(row)""",
    ),
    (
        "md",
        "## A lookahead training example\n\nThe prompt is the state; the target is V0's view of the best successor.",
    ),
    (
        "code",
        """from pathlib import Path

from langgraph_stl.training.dataset import read_jsonl

examples = read_jsonl(Path(OUT) / "iter_1" / "data.jsonl").examples
print(f"{len(examples)} examples; depths {sorted({e.depth for e in examples})}")
example = next((e for e in examples if e.kind == "lookahead"), examples[0])
print("PROMPT (end):", example.prompt[-400:], sep="\\n")
print("\\nTARGET:", example.completion, sep="\\n")""",
    ),
    ("md", "## Before and after\n\nSame search and same test puzzles. V1 is compared with V0, paired by puzzle."),
    (
        "code",
        """from IPython.display import Markdown, display

from langgraph_stl.evaluation.report import build_report

report = build_report(
    [Path(OUT) / "iter_1" / "eval.jsonl"],
    baseline=Path(OUT) / "eval_0.jsonl",
    labels=["V1 (after STL)"],
    baseline_label="V0 (base)",
)
display(Markdown(report.to_markdown()))""",
    ),
    (
        "md",
        """## The whole run, inspected

`show` renders the run folder as `stl view` does: per iteration the data statistics (examples per depth, target
values), the training loss curve, the evaluation summary and a few lookahead examples with the candidates they
were chosen from; below, every evaluated puzzle of V0 and V1.""",
    ),
    (
        "code",
        """from langgraph_stl.view import show

show(OUT)""",
    ),
]

WEBSHOP: list[Cell] = [
    (
        "md",
        """# WebShop: the environment, the browser, LangChain tools, and a report with plots

This notebook uses the local reimplementation of WebShop (1k-product catalogue, synthetic goals). It covers:

1. the fast HTTP environment, which search runs on;
2. the same shop driven by headless Chromium through the **browser environment**;
3. **LangChain tools** (`search`, `click`) that you can hand to any agent;
4. WebShop's rule baseline, scored by the evaluation runner;
5. a **report with Pareto plots** over the STL paper's own saved results.""",
    ),
    (
        "params",
        """import os

TASK = os.environ.get("STL_NB_TASK", "fixed_6")  # a WebShop session: goal 6 of the test split
BROWSER = os.environ.get("STL_NB_BROWSER", "1") == "1"  # needs Chromium (apt: chromium; or playwright install)
RULE_TASKS = int(os.environ.get("STL_NB_RULE_TASKS", "20"))  # test goals for the rule baseline
# value model of the inspected search; a model-free random value (py:langgraph_stl.evaluation.baselines:random_value)
# runs in seconds
SEARCH_VALUE = os.environ.get("STL_NB_SEARCH_VALUE", "smollm2")""",
    ),
    ("md", "## 1. The HTTP environment\n\nWith no URL it starts the embedded server on a free loopback port."),
    (
        "code",
        """from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv

env = WebShopHttpEnv()
print("shop at", env.base_url, "with", env.num_goals, "goals")
state = env.reset(TASK)
print(env.instruction(state))
state = env.step(state, f"search[{env.instruction(state)}]").state
print(env.observation(state)[:700])
print(env.legal_actions(state)[:8])""",
    ),
    (
        "md",
        """## 2. The browser environment

Same constructor, same states and observations, but every action is a real click in headless Chromium.""",
    ),
    (
        "code",
        r"""import re

if BROWSER:
    from langgraph_stl.envs.webshop.browser_env import WebShopBrowserEnv

    browser_env = WebShopBrowserEnv(env.base_url, num_goals=env.num_goals)
    b_state = browser_env.reset(TASK)
    b_state = browser_env.step(b_state, f"search[{browser_env.instruction(b_state)}]").state
    print("same page as over HTTP:", browser_env.observation(b_state) == env.observation(state))
    products = [a for a in browser_env.legal_actions(b_state) if re.fullmatch(r"click\[B[0-9A-Z]{9}\]", a)]
    b_state = browser_env.step(b_state, products[0]).state
    print(browser_env.observation(b_state)[:500])
    browser_env.close()""",
    ),
    (
        "md",
        """## 3. LangChain tools

`WebShopToolkit` binds a `search` and a `click` tool to one session in a browser page. They are ordinary
`StructuredTool`s, so they drop into a LangGraph `ToolNode` or any tool-calling agent.""",
    ),
    (
        "code",
        r"""if BROWSER:
    from langgraph_stl.envs.webshop.tools import WebShopToolkit

    toolkit = WebShopToolkit(env.base_url, TASK)
    search, click = toolkit.get_tools()
    page = await search.ainvoke({"query": "pillow"})
    print(page[:400])
    asin = re.search(r"\[(B[0-9A-Z]{9})\]", page).group(1)  # the first product on the results page
    print((await click.ainvoke({"element": asin}))[:300])
    print((await click.ainvoke({"element": "Buy Now"}))[:200])
    print("reward:", toolkit.reward)
    toolkit.close()""",
    ),
    (
        "md",
        """## 4. The rule baseline, through the evaluation runner

WebShop's rule baseline searches the instruction verbatim and buys the first result. `stl eval --algorithm rule`
runs the same code. Every model-guided search should beat it.""",
    ),
    (
        "code",
        """import tempfile
from pathlib import Path

from IPython.display import Markdown, display

from langgraph_stl.evaluation.report import build_report
from langgraph_stl.evaluation.run import run_eval
from langgraph_stl.evaluation.search_task import make_rule_task

out = Path(tempfile.mkdtemp()) / "webshop_rule.jsonl"
tasks = env.task_ids("test")[:RULE_TASKS]
outcome = await run_eval(tasks, make_rule_task(env), out, config={"label": "rule baseline"}, progress=False)
display(Markdown(build_report([out]).to_markdown()))""",
    ),
    (
        "md",
        """## 5. A search tree, inspected

A greedy search over the same shop: the programmatic clickables policy (query variants, then the page's
clickables ranked by overlap with the instruction) proposes, the value model scores. `keep_tree=True` keeps every
node; the result renders as the offline inspector (`stl view` writes the same page from `stl search --tree`).
Select a node to read its page text, value samples and rationale.""",
    ),
    (
        "code",
        """from langgraph_stl.search import SearchContext, arun_search, make_policy, make_value

search = await arun_search(
    env,
    make_policy("py:langgraph_stl.evaluation.baselines:clickables_policy"),
    make_value(SEARCH_VALUE),
    TASK,
    context=SearchContext(width=2, root_width=2, depth=4, n_rollouts=1, n_value_samples=1),
    keep_tree=True,
)
print("chosen:", search["trajectory"], "| true reward:", search["reward"])
search""",
    ),
    (
        "md",
        """## 6. A report with plots: the STL paper's saved results

`stl report` reads the reference's result files directly and reproduces the paper's numbers: STL with the
gpt-3.5 policy scores 72.845 / 36.6, and the Llama-3.1-8B value model scores 67.65 / 26.4. The paired bootstrap
compares each file with the Llama value model over the same 500 tasks. The plots put score against cost and
against states expanded.

The STL files record neither the policy's tokens nor its expansions, so STL shows up near $0 and near 1 state per
task. Those two points are not comparable with the others.""",
    ),
    (
        "code",
        """from IPython.display import Image

from langgraph_stl.evaluation.report import plot_pareto
from langgraph_stl.paths import data_dir

saved = data_dir() / "stl_reference" / "webshop" / "saved_results"
files = sorted(saved.glob("greedy_*_0-500.jsonl"))
baseline = saved / "greedy_evaluation_results_unsloth_meta-llama-3.1-8b-instruct_gpt-35-turbo_0-500.jsonl"
report = build_report([f for f in files if f != baseline], baseline=baseline, resamples=2000)
display(Markdown(report.to_markdown()))
for png in plot_pareto(report, Path(tempfile.mkdtemp())):
    display(Image(filename=str(png)))""",
    ),
    ("code", "env.close()"),
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_stl_game24.ipynb": STL_GAME24,
    "03_webshop.ipynb": WEBSHOP,
}


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
