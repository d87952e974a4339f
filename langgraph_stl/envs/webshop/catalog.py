"""The WebShop product catalogue, from either of its two public forms.

* pyserini ``documents.jsonl(.gz)`` (one ``{"id", "contents", "product"}`` line per product, ``product`` already
  processed by WebShop's ``load_products``): what this project ships for the 1000-product catalogue;
* WebShop's raw ``items_shuffle*.json`` (a JSON list of scraped products): what users of the full upstream data
  have. :func:`process_raw_products` applies ``load_products``' cleaning to it, field by field.

Both give the same product dicts (the original's keys: ``asin, name, Title, Description, BulletPoints, Price,
pricing, options, option_to_image, Attributes, MainImage, query, category, product_category, ...``), in file order,
which matters because prices and goals are drawn in that order. The goal kind decides the instruction keys, as in
the original: human goals add ``instructions`` (from ``items_human_ins*.json``), synthetic goals add
``instruction_text`` and ``instruction_attributes`` (from ``items_ins_v2*.json``).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeAlias

from langgraph_stl import paths

Product: TypeAlias = dict[str, Any]
GoalKind: TypeAlias = Literal["synthetic", "human"]

CATALOG_FILES: tuple[str, ...] = (
    "documents_1k.jsonl.gz",
    "documents_1k.jsonl",
    "documents.jsonl.gz",
    "documents.jsonl",
    "items_shuffle_1000.json",
    "items_shuffle.json",
)
"""Catalogue file names looked for in the data directory, first found wins."""
ATTRIBUTE_FILES: tuple[str, ...] = ("items_ins_v2_1000.json", "items_ins_v2.json")
HUMAN_INSTRUCTION_FILES: tuple[str, ...] = ("items_human_ins_1k.json", "items_human_ins.json")

DROPPED_KEYS: tuple[str, ...] = (
    "product_information", "brand", "brand_url", "list_price", "availability_quantity", "availability_status",
    "total_reviews", "total_answered_questions", "seller_id", "seller_name", "fulfilled_by_amazon",
    "fast_track_message", "aplus_present", "small_description_old",
)  # fmt: skip
"""Raw keys that ``clean_product_keys`` removes."""

_INSTRUCTION_KEYS = ("instructions", "instruction_text", "instruction_attributes")
_DOCUMENT_KEYS = frozenset(
    {"asin", "name", "Title", "Description", "BulletPoints", "Price", "pricing", "options", "option_to_image"}
    | {"Attributes", "MainImage", "query", "category", "product_category"}
)
_NOT_PRICE_CHARS = re.compile(r"[^\d.]")


class WebShopDataError(ValueError):
    """A WebShop data file exists but cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class CatalogFiles:
    """The files one catalogue is built from."""

    catalog: Path
    attributes: Path | None
    human_instructions: Path | None

    @property
    def is_documents(self) -> bool:
        """Whether the catalogue is in pyserini ``documents.jsonl`` form (else raw ``items_shuffle`` form)."""
        return ".jsonl" in self.catalog.name


def webshop_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the WebShop files.

    ``data_dir`` may be that folder itself or the project data root that contains ``webshop/``; ``None`` means the
    project data root (``STL_DATA_DIR``).
    """
    root = paths.data_dir(data_dir)
    if not any((root / name).exists() for name in CATALOG_FILES) and (root / "webshop").is_dir():
        return root / "webshop"
    return root


def find_catalog_files(
    data_dir: str | os.PathLike[str] | None = None, *, catalog: str | os.PathLike[str] | None = None
) -> CatalogFiles:
    """Locate the catalogue and the attribute / human-instruction files next to it.

    ``catalog`` picks the catalogue file explicitly (absolute, or relative to the WebShop folder); otherwise the
    first of :data:`CATALOG_FILES` that exists is used.
    """
    folder = webshop_dir(data_dir)
    if catalog is not None:
        path = Path(catalog).expanduser()
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            raise paths.DataNotFoundError(f"WebShop catalogue file {path} does not exist")
    else:
        found = [folder / name for name in CATALOG_FILES if (folder / name).is_file()]
        if not found:
            raise paths.DataNotFoundError(
                f"no WebShop catalogue in {folder} (looked for {', '.join(CATALOG_FILES)}): run `stl data fetch` "
                "or set STL_DATA_DIR to a folder that has webshop/documents_1k.jsonl.gz"
            )
        path = found[0]

    path = path.resolve()

    def beside(names: Iterable[str]) -> Path | None:
        return next((path.parent / n for n in names if (path.parent / n).is_file()), None)

    return CatalogFiles(path, beside(ATTRIBUTE_FILES), beside(HUMAN_INSTRUCTION_FILES))


def parse_pricing(pricing: str | None, *, asin: str = "?") -> tuple[list[float], str]:
    """``load_products``' price parsing: ``(pricing floats, display string)``.

    The string is split on ``$``; each later piece keeps only digits and dots. One price gives ``"$x"``, two or
    more give ``"$x to $y"`` (only the first two are kept); no price gives ``[100.0]`` and ``"$100.0"``.
    """
    if not pricing:
        return [100.0], "$100.0"
    try:
        values = [float(Decimal(_NOT_PRICE_CHARS.sub("", piece))) for piece in pricing.split("$")[1:]]
    except InvalidOperation:
        raise WebShopDataError(f"product {asin}: cannot parse pricing {pricing!r}") from None
    if not values:
        raise WebShopDataError(f"product {asin}: pricing {pricing!r} has no '$' amount")
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def _options(customization_options: Any) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Option names lowercased; values stripped, ``/`` -> ``' | '``, lowercased; value -> image."""
    options: dict[str, list[str]] = {}
    option_to_image: dict[str, Any] = {}
    if not customization_options:
        return options, option_to_image
    for name, contents in customization_options.items():
        if contents is None:
            continue
        values = []
        for content in contents:
            value = content["value"].strip().replace("/", " | ").lower()
            values.append(value)
            option_to_image[value] = content.get("image")
        options[name.lower()] = values
    return options, option_to_image


def _set_instructions(
    product: Product,
    kind: GoalKind,
    attributes: Mapping[str, Any] | None,
    human_instructions: Mapping[str, Any] | None,
) -> None:
    """Add the instruction keys ``load_products`` adds for goal kind ``kind`` (in place)."""
    asin = product["asin"]
    if kind == "human":
        if human_instructions is not None and asin in human_instructions:
            product["instructions"] = human_instructions[asin]
    else:
        entry = (attributes or {}).get(asin, {})
        product["instruction_text"] = entry.get("instruction")
        product["instruction_attributes"] = entry.get("instruction_attributes")


def process_raw_products(
    raw_products: Iterable[Mapping[str, Any]],
    attributes: Mapping[str, Any],
    human_instructions: Mapping[str, Any] | None = None,
    *,
    goals: GoalKind = "human",
    num_products: int | None = None,
) -> list[Product]:
    """Apply WebShop's ``load_products`` cleaning to raw ``items_shuffle`` products (inputs are not modified).

    Skips asins that are ``'nan'``, longer than 10 characters, or repeated; keeps file order. ``num_products``
    truncates the raw list first, as the original does.
    """
    raw = list(raw_products)
    if num_products is not None:
        raw = raw[:num_products]
    seen: set[str] = set()
    products: list[Product] = []
    for index, item in enumerate(raw):
        try:
            asin = str(item["asin"])
            if asin == "nan" or len(asin) > 10 or asin in seen:
                continue
            seen.add(asin)
            p: Product = {k: v for k, v in item.items() if k not in DROPPED_KEYS}
            p["Title"] = p["name"]
            p["Description"] = p["full_description"]
            p["Reviews"] = []
            p["Rating"] = "N.A."
            small = p["small_description"]
            p["BulletPoints"] = small if isinstance(small, list) else [small]
            p["pricing"], p["Price"] = parse_pricing(p.get("pricing"), asin=asin)
            p["options"], p["option_to_image"] = _options(p["customization_options"])
            entry = attributes.get(asin)
            p["Attributes"] = entry["attributes"] if entry is not None and "attributes" in entry else ["DUMMY_ATTR"]
            _set_instructions(p, goals, attributes, human_instructions)
            p["MainImage"] = p["images"][0]
            p["query"] = p["query"].lower().strip()
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise WebShopDataError(
                f"raw product #{index} ({item.get('asin', '?') if isinstance(item, Mapping) else '?'}) "
                f"is malformed: {type(exc).__name__}: {exc}"
            ) from None
        products.append(p)
    return products


def document_contents(product: Mapping[str, Any]) -> str:
    """The text WebShop indexes for a product (``convert_product_file_format.py``): title, description, the
    *first* bullet point and the option text, lowercased."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product.get("options", {}).items())
    return " ".join([product["Title"], product["Description"], product["BulletPoints"][0], option_text]).lower()


def _read_json(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WebShopDataError(f"cannot read {path}: {exc}") from None


@lru_cache(maxsize=8)
def _read_documents(path: Path, _stamp: tuple[int, int]) -> tuple[Product, ...]:
    """The ``product`` of every line of a documents file (parsed once per file version)."""
    opener = gzip.open if path.suffix == ".gz" else open
    products: list[Product] = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                doc = json.loads(line)
                if not isinstance(doc, dict) or not isinstance(doc.get("product"), dict):
                    raise WebShopDataError(f"{path}:{lineno}: expected a JSON object with a 'product' object")
                missing = _DOCUMENT_KEYS - doc["product"].keys()
                if missing:
                    raise WebShopDataError(
                        f"{path}:{lineno}: product lacks {', '.join(sorted(missing))} (not processed by load_products?)"
                    )
                products.append(doc["product"])
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WebShopDataError(f"cannot read {path}: {exc}") from None
    return tuple(products)


@lru_cache(maxsize=8)
def _read_json_cached(path: Path, _stamp: tuple[int, int]) -> Any:
    return _read_json(path)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def read_json_file(path: Path) -> Any:
    """A JSON file's content, parsed once per file version (shared; do not modify)."""
    return _read_json_cached(path, _stamp(path))


def load_catalog(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    goals: GoalKind = "human",
    catalog: str | os.PathLike[str] | None = None,
    num_products: int | None = None,
) -> list[Product]:
    """The processed catalogue, in file order, with the instruction keys of goal kind ``goals``.

    The returned dicts are fresh top-level copies, but nested lists/dicts are shared with an in-memory cache:
    treat them as read-only.
    """
    if goals not in ("synthetic", "human"):
        raise ValueError(f"goals must be 'synthetic' or 'human', not {goals!r}")
    files = find_catalog_files(data_dir, catalog=catalog)
    attributes = read_json_file(files.attributes) if files.attributes else None
    human = read_json_file(files.human_instructions) if files.human_instructions else None
    if files.is_documents:
        docs = _read_documents(files.catalog, _stamp(files.catalog))
        if num_products is not None:
            docs = docs[:num_products]
        if goals == "synthetic" and attributes is None:
            raise paths.DataNotFoundError(
                f"synthetic goals need {' or '.join(ATTRIBUTE_FILES)} next to {files.catalog}"
            )
        keep_embedded = goals == "human" and human is None  # no instruction file: use the documents' own
        products = []
        for doc in docs:
            p = {k: v for k, v in doc.items() if keep_embedded or k not in _INSTRUCTION_KEYS}
            if not keep_embedded:  # instruction keys go before MainImage, where load_products puts them
                main_image = p.pop("MainImage")
                _set_instructions(p, goals, attributes, human)
                p["MainImage"] = main_image
            products.append(p)
        return products
    if attributes is None:
        raise paths.DataNotFoundError(f"a raw catalogue needs {' or '.join(ATTRIBUTE_FILES)} next to {files.catalog}")
    raw = _read_json(files.catalog)  # not cached: the full raw catalogue is gigabytes; load_webshop caches the result
    if not isinstance(raw, list):
        raise WebShopDataError(f"{files.catalog}: expected a JSON list of products")
    return process_raw_products(raw, attributes, human, goals=goals, num_products=num_products)
