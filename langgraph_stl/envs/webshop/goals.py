"""Prices, goals and splits, reproducible and identical to the original WebShop.

The original draws everything random from Python's global ``random`` at first load, unseeded: one
``random.uniform(lo, hi)`` price per range-priced product in catalogue order, then one ``random.sample`` price cap
per goal-generating product (synthetic goals) or instruction (human goals) in generation order, then
``random.seed(233); random.shuffle(goals)``. :func:`load_webshop` replays exactly that call sequence on a private
``random.Random(seed)``, which yields the same numbers as the global functions after ``random.seed(seed)`` (a test
checks it) without touching the caller's global random state. So ``seed=S`` reproduces the original WebShop
started right after ``random.seed(S)``: same prices, same goal texts, same rewards. ``seed=None`` is unseeded,
like the original.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypeAlias

from langgraph_stl.envs.webshop.catalog import GoalKind, Product, find_catalog_files, load_catalog

Goal: TypeAlias = dict[str, Any]
Split: TypeAlias = Literal["test", "dev", "train"]

PRICE_RANGE: tuple[float, ...] = tuple(10.0 * i for i in range(1, 100))
"""Price caps a goal can get: $10 ... $990."""
SHUFFLE_SEED = 233
"""The original's fixed goal-shuffle seed."""
SPLITS: dict[str, tuple[int, int | None]] = {"test": (0, 500), "dev": (500, 1500), "train": (1500, None)}
"""WebShop's split convention over the shuffled goal list (``baseline_models/env.py``)."""
SESSION_PREFIX = "fixed_"
_LOAD_LOCK = threading.Lock()


def generate_product_prices(products: Sequence[Product], rng: random.Random) -> dict[str, float]:
    """Price per asin: the single price, ``100.0`` without one, or ``rng.uniform`` over a price range."""
    prices: dict[str, float] = {}
    for p in products:
        pricing = p["pricing"]
        if not pricing:
            prices[p["asin"]] = 100.0
        elif len(pricing) == 1:
            prices[p["asin"]] = pricing[0]
        else:
            prices[p["asin"]] = rng.uniform(pricing[0], pricing[1])
    return prices


def _price_cap(price: float, rng: random.Random) -> tuple[float, str]:
    """``(price_upper, instruction suffix)``: the larger of two random steps among the next four above ``price``."""
    steps = [p for p in PRICE_RANGE if p > price][:4]
    if len(steps) >= 2:
        upper = max(rng.sample(steps, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return 1000000, ""


def human_goals(products: Sequence[Product], prices: Mapping[str, float], rng: random.Random) -> list[Goal]:
    """``get_human_goals``: one goal per human instruction that has instruction attributes (weight 1)."""
    goals: list[Goal] = []
    for item in products:
        for ins in item.get("instructions", ()):
            if not ins["instruction_attributes"]:
                continue
            upper, suffix = _price_cap(prices[item["asin"]], rng)
            goals.append(
                {
                    "asin": item["asin"],
                    "category": item["category"],
                    "query": item["query"],
                    "name": item["name"],
                    "product_category": item["product_category"],
                    "instruction_text": ins["instruction"].strip(".") + suffix,
                    "attributes": ins["instruction_attributes"],
                    "price_upper": upper,
                    "goal_options": ins["instruction_options"],
                    "weight": 1,
                }
            )
    return goals


def synthetic_goals(products: Sequence[Product], prices: Mapping[str, float], rng: random.Random) -> list[Goal]:
    """``get_synthetic_goals``: one goal per option combination of each product with a synthetic instruction.

    The price cap is drawn once per product and shared by its combinations; ``weight`` is the mean inverse
    frequency of the goal's attributes over all goals.
    """
    goals: list[Goal] = []
    counts: defaultdict[str, int] = defaultdict(int)
    for p in products:
        instruction = p.get("instruction_text")
        if instruction is None:
            continue
        attributes = p["instruction_attributes"]
        if not attributes:
            raise ValueError(f"product {p['asin']} has a synthetic instruction but no instruction_attributes")
        upper, suffix = _price_cap(prices[p["asin"]], rng)
        names = sorted(p["options"])
        for combination in itertools.product(*(p["options"][n] for n in names)):
            options = dict(zip(names, combination, strict=True))
            option_text = ", and ".join(f"{k}: {v}" for k, v in options.items())
            goals.append(
                {
                    "asin": p["asin"],
                    "category": p["category"],
                    "query": p["query"],
                    "name": p["Title"],
                    "product_category": p["product_category"],
                    "instruction_text": f"{instruction}{' with ' + option_text if option_text else ''}{suffix}",
                    "attributes": attributes,
                    "price_upper": upper,
                    "goal_options": options,
                }
            )
            for a in attributes:
                counts[a] += 1
    for g in goals:
        g["weight"] = sum(1.0 / counts[a] for a in g["attributes"]) / len(g["attributes"])
    return goals


def split_indices(split: Split, n_goals: int) -> range:
    """Goal indices of ``split`` among ``n_goals`` goals: test [0, 500), dev [500, 1500), train [1500, n)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    start, stop = SPLITS[split]
    return range(min(start, n_goals), n_goals if stop is None else min(stop, n_goals))


def session_id(index: int) -> str:
    """The WebShop session id that selects goal ``index`` (``fixed_<i>``)."""
    return f"{SESSION_PREFIX}{index}"


def parse_session_id(sid: str) -> int | None:
    """Goal index of a ``fixed_<i>`` session id, else None (the original picks a random goal for such ids)."""
    if not sid.startswith(SESSION_PREFIX):
        return None
    from langgraph_stl.envs.webshop.urls import parse_index

    return parse_index(sid[len(SESSION_PREFIX) :])


@dataclass(frozen=True)
class WebShopData:
    """Everything one WebShop run shares: catalogue, per-run prices and goals (treat it as read-only)."""

    products: list[Product]
    products_by_asin: dict[str, Product]
    product_prices: dict[str, float]
    goals: list[Goal]
    goal_kind: GoalKind
    seed: int | None
    catalog_path: str
    attribute_to_asins: dict[str, set[str]] = field(repr=False)

    def split_indices(self, split: Split) -> range:
        """Goal indices of ``split`` for this goal list."""
        return split_indices(split, len(self.goals))

    def goal(self, index_or_session: int | str) -> Goal:
        """Goal by index or by ``fixed_<i>`` session id; raises ``KeyError`` with a clear message otherwise."""
        index = parse_session_id(index_or_session) if isinstance(index_or_session, str) else index_or_session
        if index is None or not 0 <= index < len(self.goals):
            raise KeyError(f"no goal {index_or_session!r}: there are {len(self.goals)} {self.goal_kind} goals")
        return self.goals[index]

    def titles_digest(self) -> str:
        """Hash of the catalogue's product names, the key of the prepared title-noun cache."""
        return titles_digest(p["name"] for p in self.products)


def titles_digest(names: Iterable[str]) -> str:
    """sha256 over the sorted distinct product names (format- and order-independent)."""
    h = hashlib.sha256()
    for name in sorted(set(names)):
        h.update(name.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def build_webshop(products: Sequence[Product], *, goals: GoalKind, seed: int | None, source: str = "") -> WebShopData:
    """Prices, goals and the seeded shuffle over an already loaded catalogue (the original's call order)."""
    rng = random.Random(seed)
    prices = generate_product_prices(products, rng)
    goal_list = human_goals(products, prices, rng) if goals == "human" else synthetic_goals(products, prices, rng)
    rng.seed(SHUFFLE_SEED)
    rng.shuffle(goal_list)
    by_attr: defaultdict[str, set[str]] = defaultdict(set)
    for p in products:
        for a in p["Attributes"]:
            by_attr[a].add(p["asin"])
    return WebShopData(
        products=list(products),
        products_by_asin={p["asin"]: p for p in products},
        product_prices=prices,
        goals=goal_list,
        goal_kind=goals,
        seed=seed,
        catalog_path=source,
        attribute_to_asins=dict(by_attr),
    )


@lru_cache(maxsize=16)
def _cached(
    catalog: str, stamp: tuple[int, int], goals: GoalKind, seed: int | None, num_products: int | None
) -> WebShopData:
    products = load_catalog(goals=goals, catalog=catalog, num_products=num_products)
    return build_webshop(products, goals=goals, seed=seed, source=catalog)


def load_webshop(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    goals: GoalKind = "synthetic",
    seed: int | None = 0,
    catalog: str | os.PathLike[str] | None = None,
    num_products: int | None = None,
) -> WebShopData:
    """Load catalogue, prices and goals as the original WebShop would after ``random.seed(seed)``.

    Cached in memory per (catalogue file version, goal kind, seed, num_products), so every component of a run
    shares one object. ``seed=None`` draws fresh random prices once per process, like the unseeded original.
    ``goals="synthetic"`` is the text environment's (and AgentGym's) default; ``"human"`` is the Flask app's.
    """
    if goals not in ("synthetic", "human"):
        raise ValueError(f"goals must be 'synthetic' or 'human', not {goals!r}")
    if seed is not None and not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, not {type(seed).__name__}")
    files = find_catalog_files(data_dir, catalog=catalog)
    st = files.catalog.stat()
    with _LOAD_LOCK:  # one object per key even under concurrent first calls (matters for seed=None)
        return _cached(str(files.catalog), (st.st_mtime_ns, st.st_size), goals, seed, num_products)


def load_goals(
    kind: GoalKind = "synthetic", data_dir: str | os.PathLike[str] | None = None, seed: int | None = 0
) -> list[Goal]:
    """WebShop's goal list (schema and order of the original) for goal kind ``kind``; a fresh list of shared
    goal dicts."""
    return list(load_webshop(data_dir, goals=kind, seed=seed).goals)
