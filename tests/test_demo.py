"""`stl demo`'s closing example: one lookahead target V_1 learned from, shown as prompt → target."""

from __future__ import annotations

from pathlib import Path

from langgraph_stl.cli.demo import _clip, lookahead_example
from langgraph_stl.training.dataset import Example, ExampleWriter


def test_the_example_is_the_first_parsed_lookahead(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    assert lookahead_example(data) is None  # a run without data shows no example
    with ExampleWriter(data, fsync=False) as w:
        w.write(Example("Determine... Trajectory: T", "terminal judgement", 2, kind="terminal", value=0.5))
        w.write(Example("Determine... Trajectory: U", "unparsed", 1, value=-1.0))
        w.write(Example("Determine... Trajectory: A", "Thus the correctness score is 7.00 / 10.00.", 1, value=0.7))
    example = lookahead_example(data)
    assert example is not None and example.prompt.endswith("Trajectory: A")


def test_clip_keeps_the_end_of_prompts_and_the_start_of_targets() -> None:
    assert _clip("short", 10) == "short"
    assert _clip("0123456789abc", 4, tail=True) == "…9abc"
    assert _clip("0123456789abc", 4) == "0123…"
