"""Colour normalization for option matching (WebShop's ``engine/normalize.py::normalize_color``).

The reward compares purchased and goal option values after mapping any value that *contains* a known colour name
to that colour. The original is a plain substring scan in ``COLOR_SET`` order, quirks included (``'light blue'``
-> ``'blue'``, ``'dark grey'`` -> ``'dark'``, ``'standard'`` -> ``'tan'``, ``'washed'`` -> ``'ash'``); they are kept
because rewards must match the original exactly.
"""

from __future__ import annotations

from typing import TypeVar

COLOR_SET: tuple[str, ...] = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue", "blush",
    "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne", "charcoal", "cheetah",
    "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper", "coral", "cranberry", "cream", "crystal",
    "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite", "grape", "graphite", "grass",
    "gray", "green", "grey", "heather", "indigo", "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light",
    "lilac", "lime", "magenta", "maroon", "mauve", "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom",
    "mustard", "natural", "navy", "nude", "olive", "orange", "peach", "pewter", "pink", "plum", "purple", "rainbow",
    "red", "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull", "slate", "steel", "stone",
    "stonewash", "sunflower", "tan", "taupe", "teal", "tiger", "turquoise", "violet", "walnut", "wheat", "white",
    "wine", "yellow",
)  # fmt: skip
"""WebShop's colour list, in its order (the first hit wins)."""

_T = TypeVar("_T", str, tuple[str, ...])


def normalize_color(value: _T) -> str | _T:
    """The first colour of :data:`COLOR_SET` found in ``value``, else ``value`` unchanged.

    For a string this is a substring test. For a tuple (synthetic goals pass ``(name, value)`` pairs) Python's
    ``in`` is element membership, so ``('color', 'black')`` -> ``'black'`` but ``('color', 'jet black')`` stays a
    tuple; the original behaves the same way.
    """
    for color in COLOR_SET:
        if color in value:
            return color
    return value
