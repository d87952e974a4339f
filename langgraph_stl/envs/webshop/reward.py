"""WebShop's reward (``engine/goal.py::get_reward``), with the original's exact semantics.

``reward = r_type * (attribute matches + option matches + price ok) / (|attributes| + |goal options| + 1)``.
Every quirk is kept, because scores must be comparable with published WebShop numbers:

* the title score divides by the goal title's noun-token *list* length (duplicates counted), and its thresholds
  override a query or category match;
* synthetic goals pass their options as ``(name, value)`` tuples, which :func:`normalize_color` maps only when
  the whole value is a colour and which the fuzzy matcher sees as ``"('size', 'large')"``;
* a goal attribute missing from the product's attributes may still be found as a substring of the title, the
  space-joined bullet points (a plain-string ``BulletPoints`` is joined character by character) or the description.

Fuzzy matching is thefuzz 0.19's ``token_set_ratio`` rebuilt on rapidfuzz (see :func:`token_set_ratio`). thefuzz
0.19 computes its ratio with python-Levenshtein when that is installed (its ``[speedup]`` extra; also what thefuzz
>= 0.20 does through rapidfuzz) and with ``difflib.SequenceMatcher`` otherwise, which is what WebShop's pinned
requirements give. ``fuzzy="levenshtein"`` (default) is the former, ``fuzzy="difflib"`` the latter; they differ
on a handful of option pairs (docs/WEBSHOP.md has the measured counts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any, Literal, TypeAlias, overload

from rapidfuzz.distance import Indel

from langgraph_stl.envs.webshop.normalize import normalize_color
from langgraph_stl.envs.webshop.prepare import title_nouns

MATCH_THRESHOLD = 85
"""A fuzzy score must be strictly above this to count as a match."""
FuzzyBackend: TypeAlias = Literal["levenshtein", "difflib"]

_NON_WORD = re.compile(r"\W", re.UNICODE)
_LATIN1_HIGH = dict.fromkeys(range(128, 256))


def full_process(value: object) -> str:
    """thefuzz's ``full_process(force_ascii=True)``: ``str()``, drop code points 128-255, non-word -> space,
    lowercase, strip. (thefuzz's "ascii" step removes only the Latin-1 upper half; ``_`` counts as a word
    character. rapidfuzz's ``default_process`` differs on both, so it is not used.)"""
    text = value if isinstance(value, str) else str(value)
    return _NON_WORD.sub(" ", text.translate(_LATIN1_HIGH)).lower().strip()


def _ratio(a: str, b: str, fuzzy: FuzzyBackend) -> int:
    """thefuzz ``ratio``: ``int(round(100 * r))`` with r the Levenshtein (InDel) ratio or difflib's ratio."""
    if a == b:
        return 100
    if not a or not b:
        return 0
    if fuzzy == "difflib":
        return round(100 * SequenceMatcher(None, a, b).ratio())
    total = len(a) + len(b)
    return round(100 * ((total - Indel.distance(a, b)) / total))


def token_set_ratio(a: object, b: object, *, fuzzy: FuzzyBackend = "levenshtein") -> int:
    """thefuzz 0.19 ``fuzz.token_set_ratio(a, b)`` (default ``force_ascii`` and ``full_process``), as an int.

    Token sets ``A`` and ``B``; ``sect`` = sorted ``A & B``; the score is the best rounded ratio among
    ``(sect, sect + A-B)``, ``(sect, sect + B-A)`` and ``(sect + A-B, sect + B-A)``. So a token subset scores 100.
    """
    pa, pb = full_process(a), full_process(b)
    if not pa or not pb:
        return 0
    ta, tb = set(pa.split()), set(pb.split())
    sect = " ".join(sorted(ta & tb))
    s1 = (sect + " " + " ".join(sorted(ta - tb))).strip()
    s2 = (sect + " " + " ".join(sorted(tb - ta))).strip()
    return max(_ratio(sect, s1, fuzzy), _ratio(sect, s2, fuzzy), _ratio(s1, s2, fuzzy))


def _category_parts(category: str) -> set[str]:
    return {part.strip() for part in category.split("›")}


def combine_type_reward(query_match: bool, category_match: bool, title_score: float) -> float:
    """``r_type``: 0.5 unless the query, the category or the title (> 0.2) matches; then the title thresholds
    override (< 0.1 -> 0.1, exactly 0 -> 0.0), in the original's order."""
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type


def get_type_reward(purchased: Mapping[str, Any], goal: Mapping[str, Any]) -> dict[str, Any]:
    """``r_type`` from query match, category overlap (>= 2 shared levels) and title noun overlap."""
    query_match = purchased["query"] == goal["query"]
    shared = _category_parts(purchased["product_category"]) & _category_parts(goal["product_category"])
    category_match = len(shared) >= 2
    p_nouns = title_nouns(purchased["name"])
    g_nouns = title_nouns(goal["name"])
    title_score = len(set(p_nouns) & set(g_nouns)) / len(g_nouns) if g_nouns else 0.2
    return {
        "r_type": combine_type_reward(query_match, category_match, title_score),
        "query_match": query_match,
        "category_match": category_match,
        "title_score": title_score,
    }


def get_attribute_reward(
    purchased: Mapping[str, Any], goal: Mapping[str, Any], *, fuzzy: FuzzyBackend = "levenshtein"
) -> tuple[float, int]:
    """``(r_att, matches)``: each goal attribute fuzzy-matches a product attribute or appears in its texts."""
    goal_attrs: Sequence[str] = goal["attributes"]
    matches = 0
    for g_attr in goal_attrs:
        in_attributes = any(token_set_ratio(a, g_attr, fuzzy=fuzzy) > MATCH_THRESHOLD for a in purchased["Attributes"])
        if in_attributes or (
            g_attr in purchased["Title"].lower()
            or g_attr in " ".join(purchased["BulletPoints"]).lower()
            or g_attr in purchased["Description"].lower()
        ):
            matches += 1
    return matches / len(goal_attrs), matches


def get_option_reward(
    purchased_options: Iterable[Any], goal_options: Iterable[Any], *, fuzzy: FuzzyBackend = "levenshtein"
) -> tuple[float | None, int]:
    """``(r_option or None without goal options, matches)``: colour-normalized fuzzy match of each goal option
    against the chosen values."""
    purchased = [normalize_color(o) for o in purchased_options]
    wanted = [normalize_color(o) for o in goal_options]
    matches = sum(1 for g in wanted if any(token_set_ratio(p, g, fuzzy=fuzzy) > MATCH_THRESHOLD for p in purchased))
    return (matches / len(wanted) if wanted else None), matches


@overload
def get_reward(
    purchased_product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float,
    options: Mapping[str, str],
    *,
    verbose: Literal[False] = False,
    fuzzy: FuzzyBackend = "levenshtein",
) -> float: ...
@overload
def get_reward(
    purchased_product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float,
    options: Mapping[str, str],
    *,
    verbose: Literal[True],
    fuzzy: FuzzyBackend = "levenshtein",
) -> tuple[float, dict[str, Any]]: ...
@overload
def get_reward(
    purchased_product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float,
    options: Mapping[str, str],
    *,
    verbose: bool,
    fuzzy: FuzzyBackend = "levenshtein",
) -> float | tuple[float, dict[str, Any]]: ...
def get_reward(
    purchased_product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float,
    options: Mapping[str, str],
    *,
    verbose: bool = False,
    fuzzy: FuzzyBackend = "levenshtein",
) -> float | tuple[float, dict[str, Any]]:
    """The reward of buying ``purchased_product`` at ``price`` with chosen ``options`` (name -> value) for ``goal``.

    ``price`` is the run's price of the product (``WebShopData.product_prices[asin]``), not option dependent.
    With ``verbose=True`` returns ``(reward, info)``, ``info`` holding the original's sub-scores and weights.
    ``fuzzy`` picks thefuzz's ratio flavour (module docstring).
    """
    type_info = get_type_reward(purchased_product, goal)
    r_price: bool = price <= goal["price_upper"]
    r_att, n_att = get_attribute_reward(purchased_product, goal, fuzzy=fuzzy)
    goal_options = goal["goal_options"]
    wanted = goal_options.items() if isinstance(goal_options, Mapping) else goal_options
    r_option, n_opt = get_option_reward(list(options.values()), wanted, fuzzy=fuzzy)
    denominator = len(goal["attributes"]) + len(goal_options) + 1
    r_type: float = type_info["r_type"]
    reward: float = (n_att + n_opt + r_price) / denominator * r_type
    if not verbose:
        return reward
    info: dict[str, Any] = {
        "r_type": r_type,
        "r_att": r_att,
        "w_att": len(goal["attributes"]) / denominator,
        "query_match": type_info["query_match"],
        "category_match": type_info["category_match"],
        "title_score": type_info["title_score"],
    }
    if r_option is not None:
        info["r_option"] = r_option
        info["w_option"] = len(goal_options) / denominator
    info["r_price"] = r_price
    info["w_price"] = 1 / denominator
    return reward, info
