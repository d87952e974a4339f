"""`stl view`: tree files, the HTML page's behaviour in a real Chromium from file:// with the network blocked,
comparison, run folders, and clear errors for bad input."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.evaluation.results import ResultsFormatError, Rollout, RunHeader, TaskRecord, dump_line
from langgraph_stl.evaluation.trees import SearchTree, TreeNode, read_tree, tree_path, trees_dir, write_tree
from langgraph_stl.view import ViewError, load_view, render_html, write_html
from langgraph_stl.view.load import divergence
from tests.conftest import REPO


def synthetic_tree(n_nodes: int, *, branching: int = 5, task_id: str = "t0") -> SearchTree:
    """A breadth-first tree of ``n_nodes`` with values, samples and rationales (for size and behaviour checks)."""
    nodes: dict[str, TreeNode] = {"r0": TreeNode("r0", None, 0, None, "root observation", False, expanded=True)}
    queue = ["r0"]
    while len(nodes) < n_nodes:
        parent = nodes[queue.pop(0)]
        for i in range(branching):
            if len(nodes) >= n_nodes:
                break
            node_id = f"{parent.id}.{i}"
            value = ((len(nodes) * 37) % 11) / 10
            terminal = parent.depth + 1 >= 5
            nodes[node_id] = TreeNode(
                node_id,
                parent.id,
                parent.depth + 1,
                f"action {i} at {parent.id}",
                f"observation of {node_id}",
                terminal,
                value=value,
                value_samples=(value, None),
                rationale=f"rationale of {node_id}: </script><b>not markup</b>",
                visits=1,
                value_sum=value,
                true_reward=1.0 if terminal and i == 0 else (0.0 if terminal else None),
            )
            queue.append(node_id)
    leaf = max(nodes, key=lambda n: nodes[n].depth)
    return SearchTree(task_id=task_id, algorithm="bfs", nodes=nodes, chosen=leaf, leaves=(leaf,))


# ------------------------------------------------------------------------------------------------- files, errors


def test_tree_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    tree = synthetic_tree(40)
    path = write_tree(tree, tmp_path / "t.json.gz")
    assert read_tree(path) == tree
    assert "stl-data" in tree._repr_html_() and "<iframe" in tree._repr_html_()  # notebooks
    assert read_tree(write_tree(tree, tmp_path / "t.json")) == tree  # plain JSON too
    data = path.read_bytes()
    (tmp_path / "cut.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ResultsFormatError, match=r"cut\.json\.gz: truncated or corrupt gzip"):
        read_tree(tmp_path / "cut.json.gz")
    (tmp_path / "other.json.gz").write_bytes(gzip.compress(b'{"record": "forest", "schema": 1}'))
    with pytest.raises(ResultsFormatError, match="record type 'forest'"):
        read_tree(tmp_path / "other.json.gz")
    bad = tree.to_json()
    bad["nodes"][3]["parent"] = "nowhere"
    (tmp_path / "orphan.json").write_text(json.dumps(bad))
    with pytest.raises(ResultsFormatError, match="parent 'nowhere'"):
        read_tree(tmp_path / "orphan.json")
    assert tree_path(tmp_path, "a/b c").name == "a%2Fb%20c.json.gz"


def _results(path: Path, rows: dict[str, tuple[list[str], list[float]]], label: str) -> Path:
    header = RunHeader(config={"env": "game24", "label": label}, task_ids=tuple(rows))
    lines = [dump_line(header)]
    for task_id, (trajectory, values) in rows.items():
        rollout = Rollout(1.0 if "win" in trajectory[-1] else 0.0, values[-1], tuple(values), tuple(trajectory))
        lines.append(dump_line(TaskRecord.from_rollouts(task_id, [rollout], states_expanded=len(trajectory) * 3)))
    path.write_text("".join(lines))
    return path


def test_bad_input_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text(dump_line(RunHeader(config={"env": "game24"}, task_ids=("1",))))
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"record": "episode", "x": 1}\n')
    truncated = tmp_path / "truncated.jsonl"
    _results(truncated, {"1": (["a", "win"], [0.5, 0.9])}, "x")
    truncated.write_text(truncated.read_text()[:-20])
    cases = {
        empty: "empty run",
        unknown: "unknown record type 'episode'",
        truncated: "truncated.jsonl:2: not valid JSON",
        tmp_path / "missing.jsonl": "no such file",
        trees_dir(tmp_path / "run.jsonl"): "view the results file beside it",
    }
    trees_dir(tmp_path / "run.jsonl").mkdir()
    for path, message in cases.items():
        with pytest.raises((ViewError, ResultsFormatError), match=re.escape(message)):
            load_view(path)
        out = tmp_path / "page.html"
        proc = subprocess.run(
            [sys.executable, "-m", "langgraph_stl", "view", str(path), "--out", str(out)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert proc.returncode == 2 and message in proc.stderr and not out.exists(), proc.stderr


def test_divergence_names_the_first_differing_step_and_both_values() -> None:
    a = {"task_id": "1", "trajectory": ["x", "y", "z"], "values": [0.5, 0.6, 0.7], "reward": 0.0, "tree": None}
    b = {"task_id": "1", "trajectory": ["x", "q", "z"], "values": [0.5, 0.8, 0.9], "reward": 1.0, "tree": None}
    d = divergence(a, b)
    assert d["step"] == 2 and d["a"]["action"] == "y" and d["b"]["action"] == "q"
    assert (d["a"]["value"], d["b"]["value"]) == (0.6, 0.8)
    assert divergence(a, a)["step"] is None
    tree = synthetic_tree(12).to_json()  # r0 → r0.0..r0.4 → r0.0.0..
    row = {"task_id": "1", "trajectory": ["action 0 at r0"], "values": [0.1], "reward": 0.0, "tree": tree}
    other = {"task_id": "1", "trajectory": ["action 3 at r0"], "values": [0.2], "reward": 0.0, "tree": None}
    assert divergence(row, other)["a"]["other_value"] == next(n["value"] for n in tree["nodes"] if n["id"] == "r0.3")


def test_embedded_json_cannot_end_the_script_block() -> None:
    tree = synthetic_tree(8)
    page = render_html(load_view_of(tree))
    assert "</script><b>" not in page and page.count("</script>") == 2
    data = page.split("id='stl-data'>", 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["runs"][0]["tasks"][0]["tree"]["nodes"][1]["rationale"].endswith(
        "</script><b>not markup</b>"
    )


def load_view_of(tree: SearchTree) -> Any:
    from langgraph_stl.view import view_of_tree

    return view_of_tree(tree)


def fake_value() -> Any:
    from tests.test_eval_cli import fake_value as value

    return value()


@pytest.mark.slow
def test_eval_save_trees_writes_one_tree_per_task_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "g24.jsonl"
    cmd = [sys.executable, "-m", "langgraph_stl", "eval", "--env", "game24", "--out", str(out), "--policy"]
    cmd += ["enumerate", "--value", "py:tests.test_view:fake_value", "--rollouts", "1", "--value-samples", "1"]
    cmd += ["--width", "3", "--depth", "3", "--save-trees"]
    first = subprocess.run([*cmd, "--limit", "2"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert first.returncode == 0, first.stderr
    folder = trees_dir(out)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert sorted(stamps) == ["900.json.gz", "901.json.gz"]
    again = subprocess.run([*cmd, "--limit", "3"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert again.returncode == 0 and "1 tasks run (0 failed), 2 already" in again.stdout, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name in stamps} == stamps  # not redone
    tree = read_tree(folder / "902.json.gz")
    terminal = [n for n in tree.nodes.values() if n.terminal]
    assert terminal and all(n.true_reward in (0.0, 1.0) for n in terminal)
    assert all(len(n.value_samples) == 1 for n in tree.nodes.values() if n.parent is not None)
    view = load_view(out, plots=False)
    rows = {r["task_id"]: r for r in view.runs[0]["tasks"]}
    assert view.runs[0]["trees"] == 3 and len(rows["902"]["tree"]["nodes"]) == len(tree.nodes)
    assert rows["902"]["trajectory"] == [tree.nodes[n].action for n in tree.chosen_path()[1:]]


# ------------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from langgraph_stl.envs.webshop.browser_env import chromium_executable

    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium executable (install Debian's chromium or set STL_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable)
        yield chromium
        chromium.close()


class Page:
    """A page opened from file:// in a context that aborts (and records) every other request."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.blocked: list[str] = []
        self.errors: list[str] = []

        def route(r: Any) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        start = time.perf_counter()
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("html[data-ready]")
        self.load_s = time.perf_counter() - start

    def close(self) -> None:
        assert not self.errors, self.errors
        assert not self.blocked, f"the page tried to reach the network: {self.blocked}"
        self.context.close()


def non_blank(png: bytes) -> bool:
    """More than a few grey levels in a 64×64 thumbnail: a blank or unstyled error page has almost none."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    return len(set(image.resize((64, 64)).get_flattened_data())) > 8


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.model
def test_embedded_model_trees_render_every_node_and_show_rationales(browser: Any, tmp_path: Path) -> None:
    from langgraph_stl.envs.game24 import Game24Env
    from langgraph_stl.models import load_chat_model
    from langgraph_stl.search import SearchContext, ValueModel, make_policy, run_search

    value = ValueModel(load_chat_model("smollm2", max_tokens=24))
    ctx = SearchContext(width=2, breadth=2, depth=2, n_rollouts=1, n_value_samples=1, budget=3)
    for algorithm in ("greedy", "bfs", "mcts"):
        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
            result = pool.submit(
                run_search,
                Game24Env(),
                make_policy("enumerate"),
                value,
                "900",
                algorithm=algorithm,
                context=ctx,
                keep_tree=True,
            ).result()
        assert result["error"] is None, result["error"]
        tree = SearchTree.from_result(result)
        path = write_tree(tree, tmp_path / f"{algorithm}.json.gz")
        page = Page(browser, write_html(load_view(path), tmp_path / f"{algorithm}.html"))
        assert page.page.locator("[data-node-id]").count() == len(tree.nodes) == len(result["tree"])
        assert page.page.locator(".tn.chosen").count() == len(tree.chosen_path())
        node = next(n for n in tree.nodes.values() if n.parent is not None)
        page.page.click(f"[data-node-id='{node.id}'] > .row")
        assert page.page.locator(".detail").get_attribute("data-selected") == node.id
        assert page.page.inner_text(".node-rationale").strip() == (node.rationale.strip() or "none")
        page.close()


OPEN_AND_ANSWER = """() => {
  const t = performance.now();
  document.querySelector("[data-node-id='r0.2'] > .row > .tog").click();  // collapsed (big tree): opens
  document.querySelector("[data-node-id='r0.2.1'] > .row").click();
  document.querySelector(".tn.sel").dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowDown", bubbles: true}));
  return window.stlReady + performance.now() - t;
}"""
"""Milliseconds from navigation start until the tree is rendered, plus opening a subtree, selecting a node and
moving the selection with the keyboard (the page's own clock: Playwright's round trips are not the page's)."""


@pytest.mark.slow
@pytest.mark.browser
def test_large_tree_is_interactive_within_two_seconds(browser: Any, tmp_path: Path) -> None:
    tree = synthetic_tree(5000)
    html = write_html(load_view(write_tree(tree, tmp_path / "big.json.gz")), tmp_path / "big.html")
    times = []
    for _ in range(3):  # the median of three loads: the machine running the suite is shared
        page = Page(browser, html)
        times.append(page.page.evaluate(OPEN_AND_ANSWER) / 1000)
        assert page.page.locator(".detail").get_attribute("data-selected") == "r0.2.2"
        assert page.page.locator("[data-node-id]").count() == 5000
        assert page.page.inner_text(".node-rationale").startswith("rationale of r0.2.2: </script>")
        page.page.keyboard.press("ArrowLeft")  # to the parent
        assert page.page.locator(".detail").get_attribute("data-selected") == "r0.2"
        page.close()
    assert sorted(times)[1] <= 2.0, f"5,000-node tree: {times} s to open and answer"


@pytest.mark.slow
@pytest.mark.browser
def test_compare_marks_the_first_divergent_step(browser: Any, tmp_path: Path) -> None:
    a = _results(
        tmp_path / "a.jsonl",
        {"1": (["s1", "s2", "lose"], [0.4, 0.5, 0.2]), "2": (["s1", "win"], [0.5, 0.9])},
        "V0",
    )
    b = _results(
        tmp_path / "b.jsonl",
        {"1": (["s1", "t2", "win"], [0.4, 0.7, 0.9]), "2": (["s1", "win"], [0.5, 0.8])},
        "V1",
    )
    page = Page(browser, write_html(load_view(a, compare=b), tmp_path / "cmp.html"))
    p = page.page
    assert p.get_attribute("#compare tr[data-task-id='1']", "data-diverge-step") == "2"
    assert p.get_attribute("#compare tr[data-task-id='2']", "data-diverge-step") == ""
    p.click("#compare tr[data-task-id='1']")
    marked = p.locator("li.diverge")
    assert marked.count() == 2 and marked.first.get_attribute("data-divergent-step") == "2"
    assert marked.nth(0).inner_text().strip().startswith("s2") and marked.nth(1).inner_text().strip().startswith("t2")
    assert non_blank(p.screenshot(full_page=True))
    page.close()


@pytest.mark.slow
@pytest.mark.browser
def test_table_sorts_and_filters_and_dataset_view_renders(browser: Any, tmp_path: Path) -> None:
    rows = {str(i): ([f"s{i}", "win" if i % 2 else "lose"], [0.1 * i, 0.1 * i]) for i in range(6)}
    page = Page(browser, write_html(load_view(_results(tmp_path / "r.jsonl", rows, "x")), tmp_path / "r.html"))
    p = page.page
    p.click("th[data-key='states']")
    p.click("th[data-key='task_id']")
    p.click("th[data-key='task_id']")  # descending
    assert p.locator("#tasks tbody tr").first.get_attribute("data-task-id") == "5"
    p.check("#only-failures")
    assert p.locator("#tasks tbody tr").count() == 3
    p.fill("input[type=search]", "s4")
    assert [r.get_attribute("data-task-id") for r in p.locator("#tasks tbody tr").all()] == ["4"]
    page.close()
    data = REPO / "docs" / "results" / "webshop" / "collect.jsonl"
    page = Page(browser, write_html(load_view(data), tmp_path / "d.html"))
    assert page.page.locator("#dataset .example").count() > 0
    assert page.page.locator("#dataset svg.chart").count() == 2
    assert non_blank(page.page.screenshot(full_page=True))
    page.close()


def test_graph_output_has_a_compact_tree_summary_and_state_opens_in_the_view() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from langgraph_stl.evaluation.trees import tree_from_state
    from langgraph_stl.search import SearchContext, ValueModel, create_search_graph, make_policy
    from langgraph_stl.view import show
    from tests.fakes import ScriptedChatModel, TreeEnv, path_value_responder

    value = ValueModel(ScriptedChatModel(responder=path_value_responder({"/a": 8, "/a/b": 9}, default=4)))
    graph = create_search_graph(TreeEnv(), make_policy("enumerate"), value).compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "studio"}}
    ctx = SearchContext(width=3, n_rollouts=1, n_value_samples=1, depth=3)
    output = graph.invoke({"task_id": "t0"}, config, context=ctx)  # sync: a Playwright fixture may hold the loop
    summary = output["result"]["tree_summary"]
    values = graph.get_state(config).values
    assert summary["nodes"] == len(values["nodes"]) and summary["max_depth"] == 3
    starred = [line.lstrip().split(maxsplit=2)[2] for line in summary["outline"] if line.lstrip().startswith("*")]
    assert [s.removesuffix(" T") for s in starred[1:]] == output["result"]["trajectory"] == ["a", "b", "c"]
    tree = tree_from_state(values)
    assert len(tree.nodes) == len(values["nodes"]) and tree.chosen == output["result"]["leaf"]
    assert "stl-data" in show(values)._repr_html_()


def test_search_cli_saves_the_tree_and_view_opens_it(tmp_path: Path) -> None:
    tree_file = tmp_path / "s.json.gz"
    cmd = [sys.executable, "-m", "langgraph_stl", "search", "--policy", "enumerate", "--quiet", "--json"]
    cmd += ["--value", "py:tests.test_view:fake_value", "--width", "3", "--rollouts", "2", "--value-samples", "1"]
    proc = subprocess.run([*cmd, "--tree", str(tree_file)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    tree = read_tree(tree_file)
    assert "tree" not in result and tree.chosen == result["leaf"] and len(tree.nodes) == result["tree_summary"]["nodes"]
    assert tree.config["search"]["width"] == 3 and tree.summary["reward"] == result["reward"]
    out = tmp_path / "s.html"
    view = subprocess.run([sys.executable, "-m", "langgraph_stl", "view", str(tree_file), "--out", str(out)], cwd=REPO)
    assert view.returncode == 0 and "stl-data" in out.read_text()


@pytest.mark.slow
@pytest.mark.browser
def test_improve_run_folder_shows_iterations_loss_and_examples(browser: Any, tmp_path: Path) -> None:
    from langgraph_stl.training.improve import run_improve
    from tests.test_training_improve import _config
    from tests.tiny_llama import build_tiny_llama

    out = tmp_path / "run"
    base = build_tiny_llama(tmp_path / "tiny-llama")
    config = _config(out, base, gguf=False, train={"max_steps": 4, "batch_size": 2, "device": "cpu", "max_length": 256})
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        pool.submit(run_improve, config).result()
    view = load_view(out)
    assert [r["label"] for r in view.runs] == ["V0", "V1"] and view.iterations is not None
    v1 = view.iterations[1]
    assert v1["data"]["total"] > 0 and v1["samples"] and all(s["candidates"] for s in v1["samples"])
    assert [s for s, _ in v1["train"]["loss_curve"]] == [1, 2, 3, 4]
    page = Page(browser, write_html(view, tmp_path / "run.html"))
    p = page.page
    assert p.locator("[data-iteration]").count() == 2
    assert p.locator("[data-iteration='1'] svg.loss circle").count() == 4
    assert p.locator("[data-iteration='1'] .example").count() == len(v1["samples"])
    assert p.locator("#plots img").count() >= 1  # stl report's Pareto plot (states per task)
    p.select_option("select[aria-label=run]", "1")
    assert p.locator("#tasks tbody tr").count() == 2
    page.close()


def test_a_result_without_ground_truth_shows_no_reward() -> None:
    from langgraph_stl.search import SearchContext, ValueModel, make_policy, run_search
    from langgraph_stl.view import view_of_result
    from tests.fakes import ScriptedChatModel, TreeEnv, path_value_responder

    value = ValueModel(ScriptedChatModel(responder=path_value_responder({"/a": 8}, default=4)))
    ctx = SearchContext(width=3, n_rollouts=1, n_value_samples=1, depth=2)
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(
            run_search,
            TreeEnv(forbid_true_reward=True),
            make_policy("enumerate"),
            value,
            "t0",
            context=ctx,
            true_reward=False,
        ).result()
    row = view_of_result(result).runs[0]["tasks"][0]
    assert row["reward"] is None and row["pass_at_n"] is None and row["trajectory"] == result["trajectory"]
    assert "stl-data" in result._repr_html_()


def test_compare_of_two_real_runs_with_trees_reads_each_models_value_of_the_other_action() -> None:
    folder = REPO / "docs" / "results" / "view"  # greedy vs BFS with the embedded model, trees saved
    view = load_view(folder / "game24_greedy.jsonl", compare=folder / "game24_bfs.jsonl", plots=False)
    assert [run["trees"] for run in view.runs] == [2, 2] and view.compare is not None
    for row in view.compare:
        greedy = next(r for r in view.runs[0]["tasks"] if r["task_id"] == row["task_id"])
        step = row["step"]
        assert step is not None and greedy["trajectory"][step - 1] == row["a"]["action"]
        # the greedy tree valued BFS's first action too (both expand the same root): the page shows that value
        root_children = {n["action"]: n["value"] for n in greedy["tree"]["nodes"] if n["parent"] == "r0"}
        assert row["a"]["other_value"] == root_children[row["b"]["action"]]
