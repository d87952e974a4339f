"""WebShop catalogue, prices, goals and splits: faithful to the original and reproducible."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from langgraph_stl.envs.webshop import (
    WebShopDataError,
    document_contents,
    load_catalog,
    load_goals,
    load_webshop,
    parse_session_id,
    process_raw_products,
    session_id,
    split_indices,
)
from langgraph_stl.envs.webshop.catalog import find_catalog_files
from langgraph_stl.envs.webshop.goals import PRICE_RANGE, _cached, build_webshop
from langgraph_stl.paths import DataNotFoundError

RAW = Path(__file__).parent / "fixtures" / "webshop_raw"
GOAL_6 = (
    "Find me men's shorts with elastic waist, classic fit, short sleeve for gym workout with color: navy, "
    "and size: x-large"
)
PROCESSED_KEYS = {"Title", "Description", "Reviews", "Rating", "BulletPoints", "Price", "pricing", "options"}
PROCESSED_KEYS |= {"option_to_image", "Attributes", "MainImage"}


@pytest.fixture(scope="module")
def documents(data_dir: Path) -> list[dict[str, Any]]:
    with gzip.open(data_dir / "webshop" / "documents_1k.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ----------------------------------------------------------------------------------------------- catalogue


def test_documents_catalogue_in_file_order_with_original_keys(documents: list[dict[str, Any]]) -> None:
    products = load_catalog(goals="human")
    assert [p["asin"] for p in products] == [d["id"] for d in documents]
    assert len(products) == 1000
    for p, d in zip(products, documents, strict=True):
        assert p == d["product"]  # human view of the documents = the documents (built with human goals)
        assert list(p) == list(d["product"])
        assert p.keys() >= PROCESSED_KEYS
    assert Counter(p["category"] for p in products) == {
        "beauty": 238,
        "electronics": 229,
        "garden": 216,
        "fashion": 200,
        "grocery": 117,
    }
    assert sum(not p["options"] for p in products) == 577
    assert sum(len(p["pricing"]) == 2 for p in products) == 93
    assert sum(p["Attributes"] == [] for p in products) == 185
    assert sum("instructions" in p for p in products) == 13


def test_synthetic_view_carries_synthetic_instruction_keys(data_dir: Path) -> None:
    ins = json.loads((data_dir / "webshop" / "items_ins_v2_1000.json").read_text())
    products = load_catalog(goals="synthetic")
    assert all("instructions" not in p for p in products)
    for p in products:
        assert p["instruction_text"] == ins[p["asin"]].get("instruction")
        assert p["instruction_attributes"] == ins[p["asin"]].get("instruction_attributes")
    assert sum(p["instruction_text"] is not None for p in products) == 415


def test_document_contents_reproduces_indexed_text(documents: list[dict[str, Any]]) -> None:
    for d in documents:
        assert document_contents(d["product"]) == d["contents"]


def _raw_from_processed(p: dict[str, Any]) -> dict[str, Any]:
    """A raw ``items_shuffle`` record that ``load_products`` turns back into ``p``."""
    raw = {k: v for k, v in p.items() if k == "pricing" or k not in PROCESSED_KEYS | {"instructions"}}
    raw["pricing"] = "$" + " - $".join(str(x) for x in p["pricing"])  # keeps the key's position
    raw["query"] = f"  {p['query'].upper()} "
    return raw


def test_raw_form_of_the_whole_catalogue_processes_back_to_the_documents(
    documents: list[dict[str, Any]], data_dir: Path
) -> None:
    """The strongest loader check available offline: raw records rebuilt from the 1000 documents (processed keys
    removed, price strings re-created, query re-cased) go through the raw cleaning and give the documents back."""
    attributes = json.loads((data_dir / "webshop" / "items_ins_v2_1000.json").read_text())
    human = json.loads((data_dir / "webshop" / "items_human_ins_1k.json").read_text())
    raw = [_raw_from_processed(d["product"]) for d in documents]
    assert all(isinstance(d["product"]["customization_options"], dict | str) for d in documents)
    processed = process_raw_products(raw, attributes, human, goals="human")
    assert processed == [d["product"] for d in documents]
    assert [list(p) for p in processed] == [list(d["product"]) for d in documents]  # key order too


def test_raw_fixture_cleaning_matches_load_products() -> None:
    products = load_catalog(RAW, goals="synthetic")
    assert [p["asin"] for p in products] == ["B0TESTAAA1", "B0TESTAAA2", "B0TESTAAA3", "B0TESTAAA4"]
    shorts, mug, pillow, candle = products
    assert shorts == {
        "asin": "B0TESTAAA1",
        "name": "Acme Men's Gym Shorts Elastic Waist",
        "full_description": "Lightweight shorts for the gym.",
        "small_description": ["Elastic waist ", "Machine wash"],
        "pricing": [19.99, 27.99],
        "images": ["https://example.invalid/a1.jpg", "https://example.invalid/a1b.jpg"],
        "product_category": "Clothing, Shoes & Jewelry › Men › Clothing › Shorts",
        "category": "fashion",
        "query": "men's shorts",
        "page": 3,
        "average_rating": "4.5 out of 5 stars",
        "customization_options": {
            "Color": [
                {
                    "value": "Black/White ",
                    "image": "https://example.invalid/black.jpg",
                    "is_selected": True,
                    "asin": "B0TESTAAA1",
                    "url": "u1",
                },
                {"value": " Navy Blue", "image": None, "is_selected": False, "asin": "B0TESTAAA9", "url": "u2"},
            ],
            "Size": [
                {"value": "X-Large", "image": "https://example.invalid/xl.jpg", "is_selected": False, "price": 21.5}
            ],
        },
        "Title": "Acme Men's Gym Shorts Elastic Waist",
        "Description": "Lightweight shorts for the gym.",
        "Reviews": [],
        "Rating": "N.A.",
        "BulletPoints": ["Elastic waist ", "Machine wash"],
        "Price": "$19.99 to $27.99",
        "options": {"color": ["black | white", "navy blue"], "size": ["x-large"]},
        "option_to_image": {
            "black | white": "https://example.invalid/black.jpg",
            "navy blue": None,
            "x-large": "https://example.invalid/xl.jpg",
        },
        "Attributes": ["elastic waist", "machine wash"],
        "instruction_text": "Find me men's shorts with elastic waist",
        "instruction_attributes": ["elastic waist"],
        "MainImage": "https://example.invalid/a1.jpg",
    }
    # no price -> [100.0] / "$100.0"; string bullet -> list; no items_ins entry -> DUMMY_ATTR; dropped keys gone
    assert (mug["pricing"], mug["Price"], mug["BulletPoints"]) == ([100.0], "$100.0", ["Holds 12 ounces"])
    assert mug["Attributes"] == ["DUMMY_ATTR"] and mug["query"] == "mugs"
    assert "availability_status" not in mug and (mug["options"], mug["option_to_image"]) == ({}, {})
    assert mug["instruction_text"] is None and mug["instruction_attributes"] is None
    # thousands separator stripped; a None option list is skipped
    assert (pillow["pricing"], pillow["Price"]) == ([1299.0], "$1299.0")
    assert pillow["options"] == {"pattern name": ["stripes", "dots"]} and pillow["model"] == "PX-18"
    # three prices: the first two are kept
    assert (candle["pricing"], candle["Price"], candle["Attributes"]) == ([5.0, 6.5], "$5.0 to $6.5", [])


def test_raw_fixture_goals_both_kinds() -> None:
    human_view = load_catalog(RAW, goals="human")
    assert [len(p.get("instructions", [])) for p in human_view] == [0, 0, 2, 0]
    assert all("instruction_text" not in p for p in human_view)

    data = load_webshop(RAW, goals="synthetic", seed=7)
    # shorts: 2 colours x 1 size; pillow: 2 patterns (goal per option combination)
    assert sorted(g["instruction_text"].split(", and price")[0] for g in data.goals) == sorted(
        [
            "Find me double sided throw pillow covers with pattern name: dots",
            "Find me double sided throw pillow covers with pattern name: stripes",
            "Find me men's shorts with elastic waist with color: black | white, and size: x-large",
            "Find me men's shorts with elastic waist with color: navy blue, and size: x-large",
        ]
    )
    assert {g["weight"] for g in data.goals} == {0.5}  # each attribute appears in 2 goals
    pillow_goals = [g for g in data.goals if g["asin"] == "B0TESTAAA3"]
    assert all(g["price_upper"] == 1000000 for g in pillow_goals)  # $1299 is above every price step
    assert all(", and price" not in g["instruction_text"] for g in pillow_goals)

    human = load_webshop(RAW, goals="human", seed=7)
    assert [g["instruction_text"] for g in human.goals] == [
        "i want a striped throw pillow cover with a hidden zipper"  # instruction without attributes is skipped
    ]
    assert human.goals[0]["goal_options"] == ["stripes"] and human.goals[0]["weight"] == 1


def test_raw_format_errors_are_clear(tmp_path: Path) -> None:
    for name in ("items_ins_v2_1000.json", "items_human_ins.json"):
        shutil.copy(RAW / name, tmp_path / name)
    bad = json.loads((RAW / "items_shuffle_1000.json").read_text())
    bad[0]["pricing"] = "$12.x.9"
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(bad))
    with pytest.raises(WebShopDataError, match=r"B0TESTAAA1: cannot parse pricing '\$12.x.9'"):
        load_catalog(tmp_path)
    del bad[0]["name"]
    bad[0]["pricing"] = "$1"
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(bad))
    with pytest.raises(WebShopDataError, match=r"raw product #0 \(B0TESTAAA1\) is malformed: KeyError"):
        load_catalog(tmp_path)
    (tmp_path / "items_shuffle_1000.json").write_text("{not json")
    with pytest.raises(WebShopDataError, match="cannot read"):
        load_catalog(tmp_path)
    (tmp_path / "items_ins_v2_1000.json").unlink()
    (tmp_path / "items_shuffle_1000.json").write_text("[]")
    with pytest.raises(DataNotFoundError, match=r"needs items_ins_v2_1000\.json"):
        load_catalog(tmp_path)


def test_malformed_documents_are_reported_with_their_line(tmp_path: Path, documents: list[dict[str, Any]]) -> None:
    doc = json.loads(json.dumps(documents[0]))
    del doc["product"]["MainImage"]
    (tmp_path / "documents.jsonl").write_text(json.dumps(documents[1]) + "\n" + json.dumps(doc) + "\n")
    with pytest.raises(WebShopDataError, match=r"documents.jsonl:2: product lacks MainImage"):
        load_catalog(tmp_path)
    (tmp_path / "documents.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(WebShopDataError, match=r"documents.jsonl:1: expected a JSON object with a 'product'"):
        load_catalog(tmp_path)


def test_missing_catalogue_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"no WebShop catalogue in .*stl data fetch"):
        load_webshop(tmp_path)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        find_catalog_files(RAW, catalog="nope.jsonl.gz")
    with pytest.raises(ValueError, match="goals must be 'synthetic' or 'human'"):
        load_webshop(goals="both")  # type: ignore[arg-type]


def test_data_dir_may_be_the_root_or_the_webshop_folder(data_dir: Path) -> None:
    assert find_catalog_files(data_dir) == find_catalog_files(data_dir / "webshop") == find_catalog_files()
    assert find_catalog_files().catalog.name == "documents_1k.jsonl.gz"


# ----------------------------------------------------------------------------------------------- goals


def test_goal_counts_and_schema() -> None:
    synthetic = load_goals("synthetic")
    human = load_goals("human")
    assert (len(synthetic), len(human)) == (6910, 13)
    keys = {"asin", "category", "query", "name", "product_category", "instruction_text", "attributes"}
    keys |= {"price_upper", "goal_options", "weight"}
    assert all(g.keys() == keys for g in synthetic + human)
    assert all(isinstance(g["goal_options"], dict) for g in synthetic)
    assert all(isinstance(g["goal_options"], list) for g in human)
    assert len({g["asin"] for g in synthetic}) == 415


def test_known_synthetic_order() -> None:
    goals = load_goals("synthetic", seed=0)
    assert [g["asin"] for g in goals[:2]] + [goals[6]["asin"]] == ["B0743JKHBV", "B09QCP4579", "B09PYSKD7H"]
    assert goals[0]["instruction_text"].startswith(
        'Find me double sided, machine washable decorative pillows with printing technology with size: 28" x 28"'
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 12345, None])
def test_goal_6_text_holds_for_every_seed_only_the_price_cap_varies(seed: int | None) -> None:
    """The order is fixed by ``random.seed(233)``; the seed only moves the "price lower than" suffix."""
    goal = load_goals("synthetic", seed=seed)[6]
    text, _, price = goal["instruction_text"].partition(", and price lower than ")
    assert text == GOAL_6
    assert price == f"{goal['price_upper']:.2f} dollars"
    assert goal["price_upper"] in PRICE_RANGE


def test_goal_6_full_text_for_seed_0() -> None:
    assert load_goals("synthetic", seed=0)[6]["instruction_text"] == GOAL_6 + ", and price lower than 50.00 dollars"


def test_same_seed_same_everything_other_seed_other_range_prices() -> None:
    a0 = load_webshop(seed=0)
    fresh = build_webshop(load_catalog(goals="synthetic"), goals="synthetic", seed=0)
    assert fresh.product_prices == a0.product_prices
    assert fresh.goals == a0.goals
    a1 = load_webshop(seed=1)
    ranged = [p["asin"] for p in a0.products if len(p["pricing"]) == 2]
    assert len(ranged) == 93
    assert all(a0.product_prices[x] != a1.product_prices[x] for x in ranged)
    fixed = [p["asin"] for p in a0.products if len(p["pricing"]) == 1]
    assert all(a0.product_prices[x] == a1.product_prices[x] == a0.products_by_asin[x]["pricing"][0] for x in fixed)
    for asin in ranged:
        pricing = a0.products_by_asin[asin]["pricing"]  # some ranges are descending; uniform() accepts both
        assert min(pricing) <= a0.product_prices[asin] <= max(pricing)
    assert [g["instruction_text"] for g in a0.goals] != [g["instruction_text"] for g in a1.goals]
    assert [g["asin"] for g in a0.goals] == [g["asin"] for g in a1.goals]


def _original_with_global_random(
    products: list[dict[str, Any]], kind: str, seed: int
) -> tuple[dict[str, float], list[Any]]:
    """WebShop's own sequence of *global* ``random`` calls (``generate_product_prices``, the goal functions'
    ``sorted(random.sample(...))``, ``random.seed(233); random.shuffle``), written independently of the module.
    Returns the prices and the shuffled ``(asin, price_upper)`` of every goal."""
    random.seed(seed)
    prices = {}
    for p in products:
        pricing = p["pricing"]
        prices[p["asin"]] = 100.0 if not pricing else pricing[0] if len(pricing) == 1 else random.uniform(*pricing[:2])

    def cap(asin: str) -> float:
        steps = [x for x in [10.0 * i for i in range(1, 100)] if x > prices[asin]][:4]
        return sorted(random.sample(steps, 2))[1] if len(steps) >= 2 else 1000000

    caps = []
    for p in products:
        if kind == "synthetic" and p.get("instruction_text") is not None:
            n_goals = 1
            for values in p["options"].values():
                n_goals *= len(values)
            caps.extend([(p["asin"], cap(p["asin"]))] * n_goals)  # one draw per product
        elif kind == "human":
            caps.extend((p["asin"], cap(p["asin"])) for i in p.get("instructions", []) if i["instruction_attributes"])
    random.seed(233)
    random.shuffle(caps)
    return prices, caps


@pytest.mark.parametrize(("kind", "seed"), [("synthetic", 0), ("synthetic", 42), ("human", 0), ("human", 5)])
def test_private_rng_equals_global_random_sequence(kind: str, seed: int) -> None:
    products = load_catalog(goals=kind)  # type: ignore[arg-type]
    saved = random.getstate()
    try:
        prices, caps = _original_with_global_random(products, kind, seed)
    finally:
        random.setstate(saved)
    before = random.getstate()
    data = load_webshop(goals=kind, seed=seed)  # type: ignore[arg-type]
    assert random.getstate() == before  # the caller's global stream is untouched
    assert data.product_prices == prices
    assert [(g["asin"], g["price_upper"]) for g in data.goals] == caps
    assert len(caps) == (6910 if kind == "synthetic" else 13)


def test_unseeded_is_random_per_process_but_cached() -> None:
    a = load_webshop(seed=None)
    assert load_webshop(seed=None) is a
    b = build_webshop(load_catalog(goals="synthetic"), goals="synthetic", seed=None)
    ranged = [p["asin"] for p in a.products if len(p["pricing"]) == 2]
    assert any(a.product_prices[x] != b.product_prices[x] for x in ranged)


def test_cached_and_fast() -> None:
    _cached.cache_clear()
    start = time.process_time()  # CPU time: wall time on a shared 2-core CI box is too noisy
    data = load_webshop(goals="synthetic", seed=3)
    elapsed = time.process_time() - start
    assert load_webshop(goals="synthetic", seed=3) is data
    assert load_webshop(goals="human", seed=3) is not data
    assert elapsed < 1.5, f"loading the 1k catalogue with goals took {elapsed:.2f}s CPU (load {os.getloadavg()})"


def test_original_app_order_for_human_goals() -> None:
    goals = load_goals("human", seed=0)
    assert all(g["weight"] == 1 for g in goals)
    assert all(g["attributes"] for g in goals)
    assert goals[0]["asin"] == "B09MW563KN"
    assert goals[0]["instruction_text"].startswith(
        "i am looking for blue color toothbrushes that helps to maintain my oral hygiene, and price lower than"
    )


# ----------------------------------------------------------------------------------------------- splits


def test_splits_and_session_ids() -> None:
    data = load_webshop(goals="synthetic")
    test, dev, train = (data.split_indices(s) for s in ("test", "dev", "train"))  # type: ignore[arg-type]
    assert (test, dev, train) == (range(0, 500), range(500, 1500), range(1500, 6910))
    assert split_indices("test", 12087) == range(500) and len(split_indices("train", 12087)) == 10587
    assert split_indices("dev", 13) == range(13, 13) and split_indices("test", 13) == range(13)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        split_indices("val", 10)  # type: ignore[arg-type]
    assert session_id(6) == "fixed_6" and parse_session_id("fixed_6") == 6
    assert parse_session_id("abc") is None and parse_session_id("fixed_x") is None
    assert data.goal("fixed_6") is data.goals[6] is data.goal(6)
    with pytest.raises(KeyError, match="no goal 'fixed_6910': there are 6910 synthetic goals"):
        data.goal("fixed_6910")


def test_concurrent_first_loads_share_one_object() -> None:
    _cached.cache_clear()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: load_webshop(seed=None), range(8)))
    assert all(r is results[0] for r in results)
