"""API prices, so that reports can put a dollar figure next to a score.

Defaults are the reference's own (``webshop/eval/models.py``): gpt-4o $2.50 / $10.00 and gpt-3.5-turbo $0.50 /
$1.50 per million input / output tokens. A model not in the table costs $0 (local, open-weights models are never in it).
Users override or extend the table with a JSON or TOML file mapping model names to ``{"input": usd_per_million,
"output": usd_per_million}``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_stl.evaluation.results import ModelUsage


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-4o": Price(2.5, 10.0),
    "gpt-3.5-turbo": Price(0.5, 1.5),
}

_ALIASES = {"gpt-35-turbo": "gpt-3.5-turbo"}  # Azure deployment name used by the reference
_PROVIDER_RE = re.compile(r"^(openai|azure|azure_openai)[:/]")
_DATED_RE = re.compile(r"-\d{4}-\d{2}-\d{2}$|-\d{4}$")


def _normalize(name: str) -> str:
    key = _PROVIDER_RE.sub("", name.strip().lower())
    key = _DATED_RE.sub("", key)  # gpt-4o-2024-08-06 costs what gpt-4o costs
    return _ALIASES.get(key, key)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Looks up prices by model name, tolerant of provider prefixes, dated snapshots and Azure spellings."""

    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def price(self, model: str) -> Price | None:
        """The price of ``model``, or None for a local model."""
        table = {_normalize(k): v for k, v in self.prices.items()}
        return table.get(_normalize(model))

    def is_local(self, model: str) -> bool:
        return self.price(model) is None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollar cost of a number of tokens (0 for local models)."""
        price = self.price(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price.input + completion_tokens * price.output) / 1e6

    def priced(self, model: str, usage: ModelUsage) -> ModelUsage:
        """``usage`` with its cost from this table. A priced model is an API model; an unpriced one keeps the
        caller's ``local`` flag (an API model missing from the table costs $0 here: callers warn about it)."""
        return ModelUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            calls=usage.calls,
            cost=self.cost(model, usage.prompt_tokens, usage.completion_tokens),
            local=usage.local and self.is_local(model),
        )

    @classmethod
    def load(cls, path: str | Path | None) -> PriceTable:
        """The defaults, updated from ``path`` (JSON or TOML) when given."""
        table = dict(DEFAULT_PRICES)
        if path is None:
            return cls(table)
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            raw: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read price table {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"price table {path} must map model names to {{input, output}} prices")
        for model, entry in raw.items():
            if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
                raise ValueError(f'price table {path}: {model!r} must be {{"input": usd/M, "output": usd/M}}')
            values = (entry["input"], entry["output"])
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values):
                raise ValueError(f"price table {path}: {model!r} prices must be non-negative numbers")
            table[model] = Price(float(values[0]), float(values[1]))
        return cls(table)
