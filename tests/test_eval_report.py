"""`stl report`: reproduces the STL reference's numbers from its saved results, and rejects bad files clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langgraph_stl.evaluation.metrics import (
    paired_bootstrap,
    reference_bootstrap,
    summarize,
    task_universe,
)
from langgraph_stl.evaluation.results import (
    ModelUsage,
    ResultsFormatError,
    Rollout,
    RunHeader,
    TaskRecord,
    dump_line,
    load_results,
)
from tests.conftest import REPO

SAVED = "stl_reference/webshop/saved_results"
LLAMA_35 = "greedy_evaluation_results_unsloth_meta-llama-3.1-8b-instruct_gpt-35-turbo_0-500.jsonl"
STL_35 = "greedy_evaluation_results_stl_unsloth_meta-llama-3.1-8b-instruct_gpt-35-turbo_0-500.jsonl"
STL_4O = "greedy_evaluation_results_stl_unsloth_meta-llama-3.1-8b-instruct_gpt-4o_0-500.jsonl"
GPT4O_35 = "greedy_evaluation_results_gpt-4o_gpt-35-turbo_0-500.jsonl"
MCTS = "mcts_results_unsloth_meta-llama-3.1-8b-instruct_gpt-35-turbo_0-50.jsonl"


def _summary(data_dir: Path, name: str, n_tasks: int | None = None):  # type: ignore[no-untyped-def]
    results = load_results(data_dir / SAVED / name)
    return summarize(results, task_universe(results, n_tasks))


@pytest.mark.parametrize(
    ("name", "score", "success", "digits"),
    [
        (LLAMA_35, 67.65, 26.4, 2),
        (STL_35, 72.845, 36.6, 3),
        (STL_4O, 74.155, 40.6, 3),
        (MCTS, 71.9, 34.0, 3),
        (GPT4O_35, 71.50, 40.6, 2),
    ],
)
def test_oracle_pass_at_3_matches_reference(
    data_dir: Path, name: str, score: float, success: float, digits: int
) -> None:
    s = _summary(data_dir, name)
    assert round(s.variants["oracle"].score, digits) == score
    assert round(s.variants["oracle"].success_rate, 1) == success
    assert s.variant_label("oracle") == "oracle pass@3"


def test_single_trajectory_and_value_selected_match_spec(data_dir: Path) -> None:
    stl = _summary(data_dir, STL_35)
    assert (round(stl.variants["single"].score, 1), round(stl.variants["single"].success_rate, 1)) == (60.0, 21.3)
    # Value-selected: argmax of the value estimate, first on ties, -1 lowest (34% of STL's estimates are -1).
    assert (round(stl.variants["value_selected"].score, 1), stl.variants["value_selected"].success_rate) == (58.0, 18.2)
    llama = _summary(data_dir, LLAMA_35)
    assert (round(llama.variants["single"].score, 1), round(llama.variants["single"].success_rate, 1)) == (58.2, 16.6)
    # stl.md's 64.9 / 30.7 for gpt-4o <- gpt-3.5 is over the 495 tasks present; over all 500 (missing = 0) it is lower.
    gpt = _summary(data_dir, GPT4O_35)
    single = gpt.variants["single"]
    assert (round(single.score_present or 0, 1), round(single.success_rate_present or 0, 1)) == (64.9, 30.7)
    assert round(single.score, 2) == 64.23
    assert gpt.n_missing == 5


def test_first_50_tasks_and_missing_tasks(data_dir: Path) -> None:
    s = _summary(data_dir, LLAMA_35, n_tasks=50)
    assert (round(s.variants["oracle"].score, 1), s.variants["oracle"].success_rate) == (70.0, 26.0)
    assert s.n_tasks == 50 and "first 50" in s.universe.source
    gpt = _summary(data_dir, "greedy_evaluation_results_gpt-4o_gpt-4o_0-500.jsonl")
    assert (gpt.n_tasks, gpt.n_missing) == (500, 7)
    assert round(gpt.variants["oracle"].score, 2) == 71.40
    assert gpt.variants["oracle"].score_present is not None and gpt.variants["oracle"].score_present > 71.9


def test_summary_line_skipped_and_usage_segments_summed(data_dir: Path) -> None:
    stl = load_results(data_dir / SAVED / STL_35)
    assert (stl.summary_lines, len(stl.tasks)) == (1, 500)
    llama = load_results(data_dir / SAVED / LLAMA_35)
    gpt_cost = sum(t.usage["gpt-35-turbo"].cost for t in llama.tasks.values() if "gpt-35-turbo" in t.usage)
    assert gpt_cost == pytest.approx(21.615, abs=0.001)  # the last line alone says $16.93: 2 restarts undercount
    assert llama.usage_resets == 4  # 2 restarts x 2 models
    assert not llama.tasks["0"].usage["gpt-35-turbo"].local
    assert llama.tasks["0"].usage["unsloth/Meta-Llama-3.1-8B-Instruct"].local
    s = summarize(llama, task_universe(llama))
    assert s.cost_per_task == pytest.approx(21.615 / 500, abs=1e-5)
    assert s.states_expanded_per_task == pytest.approx(68.6, abs=0.05)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return path


REF_LINE = '{"task_idx": %d, "reward": 0.5, "true_reward": %s, "success": false, "true_rewards_list": [[0.5, %s]], "num_expanded_nodes": 3, "usage_so_far": {}}'  # noqa: E501


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        ([REF_LINE % (0, 1, 1), "{not json", REF_LINE % (2, 1, 1)], 2, "not valid JSON"),
        ([REF_LINE % (0, 1, 1), dump_line(TaskRecord(task_id="1"))], 2, "mixed formats"),
        ([REF_LINE % (0, 1, 1), REF_LINE % (0, 1, 1)], 2, "duplicate task '0'"),
        ([REF_LINE % (0, 1.5, 1)], 1, "reward in [0, 1]"),
        ([REF_LINE % (0, '"x"', 1)], 1, "finite number"),
        (['{"task_idx": 0, "true_reward": 1, "true_rewards_list": [[1]]}'], 1, "true_rewards_list"),
        (['{"hello": 1}'], 1, "not a results record"),
        (["[1, 2]"], 1, "not a results record"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, lines: list[str], line: int, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(ResultsFormatError) as info:
        load_results(path)
    assert f"bad.jsonl:{line}:" in str(info.value) and message in str(info.value)


def test_our_format_round_trip_and_universe(tmp_path: Path) -> None:
    header = RunHeader(config={"label": "mine"}, task_ids=("a", "b", "c", "d"))
    good = TaskRecord.from_rollouts(
        "a",
        [Rollout(1.0, value=0.2, values=(0.5, 0.2), trajectory=("x", "y")), Rollout(0.5, value=0.9)],
        usage={"gpt-4o": ModelUsage(10, 5, calls=2, cost=0.1, local=False)},
        cost=0.1,
        states_expanded=7,
    )
    ok = TaskRecord.from_rollouts("b", [Rollout(0.25, value=None), Rollout(0.75, value=-1.0)], states_expanded=3)
    failed = TaskRecord.failed("c", "ConnectError: model unreachable", wall_time_s=0.5)
    path = _write(tmp_path / "run.jsonl", [dump_line(header), dump_line(good), dump_line(ok), dump_line(failed)])
    results = load_results(path)
    assert results.format == "stl" and results.label == "mine"
    assert results.tasks["a"].rollouts[0].trajectory == ("x", "y") and results.tasks["a"].success
    s = summarize(results, task_universe(results))
    assert (s.n_tasks, s.n_present, s.n_missing, s.n_failed) == (4, 3, 1, 1)
    assert s.variants["oracle"].score == pytest.approx(100 * (1.0 + 0.75) / 4)
    assert s.variants["single"].score == pytest.approx(100 * (0.75 + 0.5) / 4)
    assert s.variants["single"].success_rate == pytest.approx(100 * 0.5 / 4)
    # value-selected: a picks 0.9 -> 0.5; b: None and -1 both rank lowest, the first wins -> 0.25
    assert s.variants["value_selected"].score == pytest.approx(100 * (0.5 + 0.25) / 4)
    assert s.tokens["gpt-4o"] == {"prompt_tokens": 10, "completion_tokens": 5, "calls": 2, "local": False}


def test_universe_from_max_index_when_nothing_else_is_known(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.jsonl", [REF_LINE % (0, 1, 1), REF_LINE % (3, 0.5, 0.5)])
    results = load_results(path)
    universe = task_universe(results)
    assert len(universe.task_ids) == 4 and "max index" in universe.source
    assert summarize(results, universe).variants["oracle"].score == pytest.approx(100 * 1.5 / 4)
    with pytest.raises(ValueError, match="positive"):
        task_universe(results, 0)


def test_paired_bootstrap() -> None:
    base = [0.0, 0.5, 1.0, 0.25] * 25
    assert paired_bootstrap(base, base).p_value == 1.0
    better = [min(1.0, b + 0.25) for b in base]
    res = paired_bootstrap(better, base, resamples=2000)
    assert res.p_value < 0.001 and res.delta == pytest.approx(100 * 0.1875)
    noisy = [b + (0.05 if i % 2 else -0.04) for i, b in enumerate(base)]
    assert 0.01 < paired_bootstrap(noisy, base, resamples=2000).p_value < 0.99
    assert paired_bootstrap(base, better, resamples=500).p_value == 1.0
    # The reference's unpaired test sees only the baseline's spread; pairing removes the shared task difficulty.
    assert reference_bootstrap(better, base, resamples=2000).p_value < 0.05
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap([1.0], [1.0, 0.0])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langgraph_stl", "report", *args], capture_output=True, text=True, cwd=REPO
    )


@pytest.mark.slow
def test_cli_report_json_markdown_plots_and_errors(data_dir: Path, tmp_path: Path) -> None:
    saved = data_dir / SAVED
    out = _cli(str(saved / STL_35), str(saved / STL_4O), "--baseline", str(saved / LLAMA_35), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    first = doc["files"][0]
    assert first["variants"]["oracle"]["score"] == pytest.approx(72.845)
    assert first["variants"]["oracle"]["success_rate"] == pytest.approx(36.6)
    assert first["variants"]["single"]["label"] == "single trajectory"
    assert first["vs_baseline"]["oracle"]["score"]["p_value"] < 0.01
    assert doc["baseline"]["variants"]["oracle"]["success_rate"] == pytest.approx(26.4)

    md = _cli(str(saved / MCTS), "--plots", str(tmp_path / "plots"))
    assert md.returncode == 0, md.stderr
    assert "| 71.9 | 34 |" in md.stdout and "Oracle pass@k" in md.stdout
    assert "Missing and failed tasks count as 0" in md.stdout
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"pareto_cost.png", "pareto_states.png"}
    assert (tmp_path / "plots" / "pareto_cost.png").read_bytes()[:4] == b"\x89PNG"

    mismatch = _cli(str(saved / MCTS), "--baseline", str(saved / LLAMA_35))
    assert mismatch.returncode == 2 and "--n-tasks" in mismatch.stderr and "Traceback" not in mismatch.stderr
    bad = _write(tmp_path / "bad.jsonl", [REF_LINE % (0, 1, 1), "oops"])
    err = _cli(str(bad))
    assert err.returncode == 2 and "bad.jsonl:2: not valid JSON" in err.stderr


def test_reads_run_search_results_as_stl_improve_writes_them(tmp_path: Path) -> None:
    def result(task_id: str, rewards: list[float], values: list[float], error: str | None = None) -> str:
        rollouts = [
            {"leaf": f"r{i}", "trajectory": ["x"], "values": [v], "value": v, "true_reward": r}
            for i, (r, v) in enumerate(zip(rewards, values, strict=True))
        ]
        row = {"task_id": task_id, "algorithm": "greedy", "rollouts": rollouts, "states_expanded": 4, "error": error}
        row["tokens"] = {"smollm2": {"input_tokens": 30, "output_tokens": 7, "calls": 2}}
        return json.dumps(row)

    lines = [result("900", [0.0, 1.0], [0.9, 0.2]), result("901", [1.0], [0.5]), result("905", [], [], "model down")]
    results = load_results(_write(tmp_path / "eval_0.jsonl", lines))
    assert results.format == "search"
    s = summarize(results, task_universe(results))
    assert s.n_tasks == 3 and "tasks present" in s.universe.source  # no 0..905 universe for non-reference files
    assert (s.n_failed, s.variants["oracle"].score) == (1, pytest.approx(200 / 3))
    assert s.variants["value_selected"].score == pytest.approx(100 / 3)  # 900 picks the 0.9-valued rollout: 0
    assert s.tokens["smollm2"]["calls"] == 6
    mixed = _write(tmp_path / "mixed.jsonl", [lines[0], REF_LINE % (0, 1, 1)])
    with pytest.raises(ResultsFormatError, match=r"mixed.jsonl:2: mixed formats"):
        load_results(mixed)
    no_truth = json.loads(lines[1])
    del no_truth["rollouts"][0]["true_reward"]
    with pytest.raises(ResultsFormatError, match="true_reward=False"):
        load_results(_write(tmp_path / "nt.jsonl", [json.dumps(no_truth)]))
