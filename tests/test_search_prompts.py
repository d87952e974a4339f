"""The STL format is byte-identical to the reference training data; parsing follows the reference exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from langgraph_stl.search import prompts as P
from langgraph_stl.search.value import aggregate, expected_score, parse_success_share, parse_value

REF = "stl_reference/webshop/improvement_data"


def _records(data_dir: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted((data_dir / REF).glob("*.json")):
        out += [(h["value"], g["value"]) for h, g in json.loads(path.read_text())]
    return out


def _split_trajectory(prompt: str, header_end: str) -> tuple[str, str, str]:
    body = prompt.split(header_end, 1)[1]
    head, current = body.rsplit("\nCurrent Action: ", 1)
    action, obs = current.split("\nCurrent Observation: ", 1)
    return head, action, obs


def test_stl_prompts_and_targets_rebuild_every_reference_record(data_dir: Path) -> None:
    records = _records(data_dir)
    assert len(records) == 1747 + 920
    n_terminal = 0
    for prompt, target in records:
        value = float(re.search(r"is (\d+\.\d\d) / 10\.00\.$", target).group(1)) / 10  # type: ignore[union-attr]
        if "of the terminal state." in prompt.split("\n")[0]:
            n_terminal += 1
            trajectory, action, _ = _split_trajectory(prompt, "Trajectory:\n\n")
            assert P.terminal_prompt(trajectory, action) == prompt
            rationale = target.split("Reflection of the Terminal State: ", 1)[1].rsplit("\nThus the correctness", 1)[0]
            assert P.terminal_target(rationale, value) == target
        else:
            trajectory, action, obs = _split_trajectory(prompt, "Trajectory: \n")
            assert P.stl_prompt(trajectory, action, obs) == prompt
            best = target.split("Best Next Action: ", 1)[1].split("\n", 1)[0]
            succ = target.split("Observation of Best Successor State: ", 1)[1].split("\nReflection of the Best", 1)[0]
            rationale = target.split("Reflection of the Best Successor State: ", 1)[1].rsplit("\nThus the corr", 1)[0]
            assert P.stl_target(best, succ, rationale, value) == target
    assert n_terminal == 920


def test_format_trajectory_matches_reference_layout(data_dir: Path) -> None:
    """A depth-2 prompt is the root observation plus one ``Action/Observation`` step, stripped."""
    root = "WebShop \nInstruction:  \nfind shoes \n[Search] "
    obs1 = " \n[Back to Search] \nPage 1 (Total results: 50) \n[B0] \nShoe \n$1.00 "
    traj = P.format_trajectory(root, [("search[shoes]", obs1)])
    prompt = P.stl_prompt(traj, "click[B0]", "\n[Back to Search] ")
    assert (
        "Trajectory: \nWebShop \nInstruction:  \nfind shoes \n[Search] \n\nAction: search[shoes]\nObservation: "
        in prompt
    )
    assert prompt.endswith("$1.00\nCurrent Action: click[B0]\nCurrent Observation: \n[Back to Search] ")
    term = P.terminal_prompt(traj, "click[Buy Now]")
    assert term.endswith("$1.00 \nCurrent Action: click[Buy Now]\nCurrent Observation: Terminal State")
    assert "Trajectory:\n\nWebShop" in term


@pytest.mark.parametrize(
    ("text", "finetuned", "expected"),
    [
        ("Reflection.\nThus the correctness score is 5.20 / 10.00.", True, 0.52),
        ("THUS THE CORRECTNESS SCORE IS 8/10", True, 0.8),
        ("the correctness score is 3 / 10. Later: the correctness score is 7 / 10", True, 0.7),  # last occurrence
        ("Thus the correctness score is 6", True, None),  # fine-tuned path requires '/'
        ("Thus the correctness score is 6", False, 0.6),
        ("Thus the correctness score is 6.", False, 0.6),  # float("6.") parses, as in the reference
        ("Thus the correctness score is 6 / 10", False, None),  # base path: float of the whole rest
        ("Thus the correctness score is high", False, None),
        ("no score at all", False, None),
        ("7", False, 0.7),  # no phrase: the whole text is the rest (reference split semantics)
        ("Thus the correctness score is nan / 10", True, None),
        ("Thus the correctness score is 13.33 / 10.00.", True, 1.333),  # out-of-scale values pass through
    ],
)
def test_parse_value_reference_rules(text: str, finetuned: bool, expected: float | None) -> None:
    got = parse_value(text, finetuned=finetuned)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_success_share_and_aggregate() -> None:
    text = "1. Color [SUCCESS]\n2. Size: [failure]\n3. Price [SUCCESS]\nThus the correctness score is 6.67"
    assert parse_success_share(text) == pytest.approx(2 / 3)
    assert parse_success_share("no marks") is None
    assert aggregate([0.2, None, 0.6]) == pytest.approx(0.4)
    assert aggregate([None, None]) == -1.0
    assert aggregate([]) == -1.0


def test_expected_score_from_logprobs() -> None:
    import math

    half = math.log(0.5)
    dist = {" 8": math.log(0.5), "6": math.log(0.25), "10": math.log(0.125), "The": math.log(0.125)}
    # renormalized over score tokens: (8*.5 + 6*.25 + 10*.125) / .875 / 10 (a one-token "10" is 10)
    assert expected_score(dist) == pytest.approx((4 + 1.5 + 1.25) / 0.875 / 10)
    # digit-by-digit tokenizers (SmolLM2): a leading "1" is 10 with P("0" | "...is 1"), else 1
    assert expected_score({"5": half, "1": half}) == pytest.approx(0.3)
    assert expected_score({"5": half, "1": half}, {"0": 0.0}) == pytest.approx(0.75)
    assert expected_score({"5": half, "1": half}, {"0": half, ".": half}) == pytest.approx((2.5 + 0.5 * 5.5) / 10)
    assert expected_score({"0": half, "4": half}) == pytest.approx(0.2)  # the fine-tuned "0.00 / 10.00" starts at 0
    assert expected_score({"The": 0.0, "11": -2.0}) is None
    # Tokens that are digits to str.isdigit() but not decimal numbers (superscripts) are ignored, not a crash.
    assert expected_score({"²": -0.1, "³": -1.0}) is None
    assert expected_score({"²": -0.1, "5": -1.0}) == pytest.approx(0.5)


def test_score_line_rationale_and_webshop_rules() -> None:
    assert P.score_line(0.52) == "Thus the correctness score is 5.20 / 10.00."
    assert P.strip_score_line("A.\nB.\nThus the correctness score is 4") == "A.\nB."
    assert P.strip_score_line("no score") == "no score"
    assert P.webshop_rule_value("click[Next >]", []) == -1.0
    assert P.webshop_rule_value("click[< Prev]", []) == -1.0
    assert P.webshop_rule_value("click[Back to Search]", []) == -1.0
    assert P.webshop_rule_value("click[Reviews]", []) == -1.0
    assert P.webshop_rule_value("click[B0123]", ["click[B0123]"]) == -1.0
    assert P.webshop_rule_value("click[B0123]", ["search[x]"]) is None
    assert P.webshop_rule_value("click[Buy Now]", []) is None


def test_game24_parsing_helpers() -> None:
    text = "4 + 8 = 12 (left: 6 10 12)\n10×6=60 (left: 12 60)\ngarbage\n 8 / 3 = 8/3 (left: 8/3 4 4)"
    assert P.parse_game24_steps(text) == ["4 + 8 = 12", "10 * 6 = 60", "8 / 3 = 8/3"]
    assert P.game24_numbers("Input: 4 5 6 10\nSteps:\n5 + 4 = 9 (left: 6 9 10)\nLeft: 6 9 10") == "6 9 10"
    assert P.game24_numbers("4 + 8 = 12 (left: 6 10 12)") == "6 10 12"
    assert P.webshop_instruction("WebShop \nInstruction:  \ni need red shoes \n[Search] ") == "i need red shoes"
    assert P.env_kind("webshop-http") == "webshop" and P.env_kind("Game24") == "game24" and P.env_kind("x") == "generic"
