"""Lucene's English analysis chain as pyserini/Anserini use it (``DefaultEnglishAnalyzer``), in pure Python.

WebShop's search results come from pyserini, so reproducing its ranking needs the exact same terms:
``StandardTokenizer`` (UAX#29 word breaks plus Lucene's emoji rules) → ``EnglishPossessiveFilter`` →
``LowerCaseFilter`` → ``StopFilter`` (Lucene's 33 English stop words) → ``PorterStemFilter``.

The tokenizer is a transcription of the token rules of Lucene 9's ``StandardTokenizerImpl.jflex`` into one regular
expression over Unicode properties (the ``regex`` module knows Word_Break, Line_Break and the emoji properties),
arranged so that it finds the longest match as a JFlex scanner does, with per-code-point corrections for Lucene's
older Unicode tables (``_lucene_tables.py``). The Porter stemmer is the original algorithm with the two
"departures" of Porter's reference implementation that Lucene keeps (``bli → ble`` and ``logi → log`` in step 2)
and Lucene's rule of leaving words of one or two UTF-16 units alone. All of it was checked against Lucene itself
(tools/lucene_oracle).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

import regex

from langgraph_stl.envs.webshop._lucene_tables import LUCENE_CLASS_OVERRIDES

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET.
_STOP_WORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with"
)
ENGLISH_STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS.split())

# StandardTokenizer.DEFAULT_MAX_TOKEN_LENGTH: the scanner's buffer, so longer words come out in pieces this long.
MAX_TOKEN_LENGTH = 255


def _word_pattern(
    *,
    ahletter: str,
    numeric: str,
    midletter: str,
    midnum: str,
    enl: str,
    ext: str,
    hebrew: str = "",
    katakana: str = "",
) -> str:
    """The WORD rule of the JFlex grammar (its NUMERIC, HANGUL and KATAKANA rules match subsets of it).

    Empty ``hebrew``/``katakana`` drop those alternatives (the ASCII fast path has neither).
    """

    def ex(cls: str) -> str:  # UAX#29 WB4: X (Extend | Format | ZWJ)* → X
        return f"{cls}{ext}*" if ext else cls

    enl_x, num_x, let_x = ex(enl), ex(numeric), ex(ahletter)
    alternatives = [
        f"{num_x}(?:(?:{enl_x})*{num_x}|{ex(midnum)}{num_x})*",  # WB8, WB11, WB12, WB13a/b
        f"{let_x}(?:(?:{enl_x})*{let_x}|{ex(midletter)}{let_x})*",  # WB5, WB6, WB7, WB13a/b
    ]
    if hebrew:  # WB7a-c
        heb_x, squote_x, dquote_x = ex(hebrew), ex(_SINGLE_QUOTE), ex(_DOUBLE_QUOTE)
        alternatives.insert(0, f"{heb_x}(?:{squote_x}|{dquote_x}{heb_x})")
    segment = "(?:" + "|".join(alternatives) + ")+"  # WB9, WB10: letters and digits join
    if katakana:  # WB13
        kat_x = ex(katakana)
        segment = f"(?:{kat_x}(?:(?:{enl_x})*{kat_x})*|{segment})"
    return f"(?:{enl_x})*{segment}(?:(?:{enl_x})+{segment})*(?:{enl_x})*"


_SINGLE_QUOTE = r"\p{WB=Single_Quote}"
_DOUBLE_QUOTE = r"\p{WB=Double_Quote}"


def _range_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in ranges)


def build_token_pattern(
    overrides: Mapping[str, tuple[tuple[int, int], ...]] = LUCENE_CLASS_OVERRIDES,
) -> regex.Pattern[str]:
    """All token rules of Lucene's grammar as one pattern.

    A JFlex scanner takes the longest match among its rules. This pattern is written so that Python's leftmost-first
    backtracking finds the same match: WORD is tried before EMOJI (a keycap is a prefix of a number: "1\u20e32"),
    and a ZWJ joins the next element of an emoji sequence rather than trailing the current one. POSIX
    leftmost-longest matching would be exact by construction but is about seven times slower.

    ``regex`` knows a newer Unicode than Lucene 9 (Unicode 9.0 word breaks, emoji 11.0 pictographs). ``overrides``
    (code point ranges per Lucene class, measured against Lucene by tools/lucene_oracle) put Lucene's view back:
    each listed code point is taken out of every class and put into its Lucene class only.
    Anything no rule matches is skipped.
    """
    every = tuple(r for ranges in overrides.values() for r in ranges)
    listed = f"[{_range_class(every)}]" if every else ""

    def cls(body: str, lucene_class: str = "") -> str:
        extra = _range_class(overrides.get(lucene_class, ()))
        base = f"[[{body}]--{listed}]" if listed else f"[{body}]"
        return f"[{base}{extra}]" if extra else base

    ext = cls(r"\p{WB=Format}\p{WB=Extend}\p{WB=ZWJ}", "extend")
    # Emoji rule (TR#51 emoji_sequence as Lucene spells it). FE0E/FE0F are kept out of the attached Extend run so the
    # presentation selector is matched where the grammar puts it.
    zwj = r"\p{WB=ZWJ}"
    emoji_char = cls(
        r"\p{Extended_Pictographic}"
        r"[\p{Emoji}--[\p{WB=Regional_Indicator}0-9#*\u00A9\u00AE\u2122\u3030\u303D\p{Emoji_Modifier}]]",
        "emoji",
    )
    element_start = rf"{zwj}*[{emoji_char}\p{{Emoji_Modifier_Base}}\p{{Emoji_Modifier}}]"
    ext_no_vs = f"[{ext}--[\\uFE0E\\uFE0F\\p{{WB=ZWJ}}]]"
    ext_run = rf"(?:{ext_no_vs}|{zwj}(?!{element_start}))*"
    element = (
        rf"(?:(?:{zwj}*\p{{Emoji_Modifier_Base}}{ext_run})?\p{{Emoji_Modifier}}{ext_run}"
        rf"|{zwj}*{emoji_char}{ext_run}\uFE0F?)"
    )
    emoji = (
        rf"{element}(?:(?:{zwj}{element})*|[\U000E0020-\U000E007E]+\U000E007F)"
        rf"|[0-9#*]{ext_run}\uFE0F?\u20E3{ext_run}"
        rf"|\p{{WB=Regional_Indicator}}{ext}*\p{{WB=Regional_Indicator}}{ext}*"
    )
    word = _word_pattern(
        ahletter=cls(r"\p{WB=ALetter}\p{WB=Hebrew_Letter}", "aletter"),
        numeric=cls(r"\p{WB=Numeric}[\p{Block=Halfwidth_And_Fullwidth_Forms}&&\p{Nd}]"),
        midletter=cls(r"\p{WB=MidLetter}\p{WB=MidNumLet}\p{WB=Single_Quote}", "midletter"),
        midnum=cls(r"\p{WB=MidNum}\p{WB=MidNumLet}\p{WB=Single_Quote}", "midnum"),
        enl=cls(r"\p{WB=ExtendNumLet}"),
        ext=ext,
        hebrew=cls(r"\p{WB=Hebrew_Letter}"),
        katakana=cls(r"\p{WB=Katakana}"),
    )
    complex_context, han, hiragana = (
        cls(r"\p{Line_Break=Complex_Context}"),
        cls(r"\p{Script=Han}"),
        cls(r"\p{Script=Hiragana}"),
    )
    return regex.compile(
        rf"{word}|{emoji}|(?:{complex_context}{ext}*)+|{han}{ext}*|{hiragana}{ext}*",
        regex.V1,
    )


_UNICODE_TOKEN = build_token_pattern()
# In pure-ASCII text (most of the catalogue) the same rules reduce to these classes: ':' is MidLetter, ',' and ';'
# are MidNum, '.' and "'" are both, '_' is ExtendNumLet, and no emoji is possible (keycaps need U+20E3).
_ASCII_TOKEN = regex.compile(
    _word_pattern(ahletter="[A-Za-z]", numeric="[0-9]", midletter="[:.']", midnum="[,;.']", enl="_", ext="")
)


def tokenize(text: str) -> list[str]:
    """Lucene ``StandardTokenizer`` tokens of ``text`` (case preserved, punctuation and symbols dropped)."""
    pattern = _ASCII_TOKEN if text.isascii() else _UNICODE_TOKEN
    out: list[str] = []
    for match in pattern.finditer(text):
        token = match.group()
        if len(token) <= MAX_TOKEN_LENGTH:
            out.append(token)
        else:
            out.extend(_split_long(token, pattern))
    return out


def _split_long(token: str, pattern: regex.Pattern[str]) -> list[str]:
    """Lucene's scanner buffer holds 255 chars: it returns the longest match that fits and rescans after it."""
    pieces: list[str] = []
    pos = 0
    while pos < len(token):
        match = pattern.match(token, pos, pos + MAX_TOKEN_LENGTH)
        if match and match.end() > pos:
            pieces.append(match.group())
            pos = match.end()
        else:  # the cut left a character no rule starts with: the scanner skips it
            pos += 1
    return pieces


def _lower(token: str) -> str:
    """Java's per-code-point ``Character.toLowerCase`` (no final-sigma context, 'İ' → 'i')."""
    low = token.lower()
    if len(low) == len(token) and "ς" not in low:
        return low
    return "".join(c.lower()[0] for c in token)


def _strip_possessive(token: str) -> str:
    """EnglishPossessiveFilter: drop a trailing 's after ASCII, right-single or fullwidth apostrophe."""
    if len(token) >= 2 and token[-1] in "sS" and token[-2] in "'\u2019\uff07":
        return token[:-2]
    return token


# Spaces that no token rule can contain (U+202F is absent: Lucene joins words across it). Splitting on them first
# lets the analysis of each whitespace-free chunk be cached, which makes indexing several times faster.
_SEPARATORS = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u205f\u3000]+")


def split_chunks(text: str) -> list[str]:
    """``text`` cut at separators no token spans; analyzing the chunks one by one gives the terms of the whole."""
    if text.isascii():  # str.split's ASCII whitespace is exactly the ASCII part of _SEPARATORS
        return text.split()
    return [chunk for chunk in _SEPARATORS.split(text) if chunk]


def analyze(text: str) -> list[str]:
    """Index/query terms of ``text`` exactly as Anserini's default English analyzer produces them."""
    return [term for chunk in split_chunks(text) for term in analyze_chunk(chunk)]


@lru_cache(maxsize=1 << 18)
def analyze_chunk(chunk: str) -> tuple[str, ...]:
    """Terms of a separator-free piece of text (cached: product texts repeat words a lot)."""
    return tuple(filter_tokens(tokenize(chunk)))


def filter_tokens(tokens: list[str]) -> list[str]:
    """The filters after the tokenizer: possessive, lowercase, stop words, Porter stemming."""
    terms: list[str] = []
    for tok in tokens:
        low = _lower(_strip_possessive(tok))
        if low and low not in ENGLISH_STOP_WORDS:
            terms.append(porter_stem(low))
    return terms


# --------------------------------------------------------------------------------------------------------------------
# Porter stemmer (M.F. Porter, 1980, "An algorithm for suffix stripping"), as in Lucene's PorterStemmer.


def _is_cons(w: str, i: int) -> bool:
    ch = w[i]
    if ch in "aeiou":
        return False
    if ch == "y":
        return i == 0 or not _is_cons(w, i - 1)
    return True


def _measure(w: str, end: int) -> int:
    """m() of the stem w[:end]: the number of vowel-consonant sequences [C](VC)^m[V]."""
    n, i = 0, 0
    while i < end and _is_cons(w, i):
        i += 1
    while i < end:
        while i < end and not _is_cons(w, i):
            i += 1
        if i >= end:
            return n
        n += 1
        while i < end and _is_cons(w, i):
            i += 1
    return n


def _has_vowel(w: str, end: int) -> bool:
    return any(not _is_cons(w, i) for i in range(end))


def _double_cons(w: str, j: int) -> bool:
    """w[j-1:j+1] is a double consonant."""
    return j >= 1 and w[j] == w[j - 1] and _is_cons(w, j)


def _cvc(w: str, i: int) -> bool:
    """w[i-2:i+1] is consonant-vowel-consonant and the last is not w, x or y (the *o condition)."""
    if i < 2 or not _is_cons(w, i) or _is_cons(w, i - 1) or not _is_cons(w, i - 2):
        return False
    return w[i] not in "wxy"


# Steps 2-4: (suffix, replacement) lists keyed by the penultimate (steps 2, 4) or last (step 3) letter, tried in order;
# the first suffix that matches decides, even when its measure condition then fails.
_STEP2 = {
    "a": (("ational", "ate"), ("tional", "tion")),
    "c": (("enci", "ence"), ("anci", "ance")),
    "e": (("izer", "ize"),),
    "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
    "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
    "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
    "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
    "g": (("logi", "log"),),
}
_STEP3 = {
    "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
    "i": (("iciti", "ic"),),
    "l": (("ical", "ic"), ("ful", "")),
    "s": (("ness", ""),),
}
_STEP4 = {
    "a": ("al",),
    "c": ("ance", "ence"),
    "e": ("er",),
    "i": ("ic",),
    "l": ("able", "ible"),
    "n": ("ant", "ement", "ment", "ent"),
    "o": ("ion", "ou"),
    "s": ("ism",),
    "t": ("ate", "iti"),
    "u": ("ous",),
    "v": ("ive",),
    "z": ("ize",),
}


def _replace(w: str, rules: tuple[tuple[str, str], ...]) -> str:
    for suffix, repl in rules:
        if w.endswith(suffix):
            stem_len = len(w) - len(suffix)
            return w[:stem_len] + repl if _measure(w, stem_len) > 0 else w
    return w


def _step1ab(w: str) -> str:
    if w[-1] == "s":
        if w.endswith("sses") or w.endswith("ies"):
            w = w[:-2]
        elif w[-2] != "s":
            w = w[:-1]
    if w.endswith("eed"):
        return w[:-1] if _measure(w, len(w) - 3) > 0 else w
    for suffix in ("ed", "ing"):
        if w.endswith(suffix) and _has_vowel(w, len(w) - len(suffix)):
            w = w[: -len(suffix)]
            if w.endswith(("at", "bl", "iz")):
                return w + "e"
            if _double_cons(w, len(w) - 1):
                return w if w[-1] in "lsz" else w[:-1]
            if _measure(w, len(w)) == 1 and _cvc(w, len(w) - 1):
                return w + "e"
            return w
    return w


def _step4(w: str) -> str:
    if len(w) < 2:
        return w
    for suffix in _STEP4.get(w[-2], ()):
        if w.endswith(suffix):
            stem_len = len(w) - len(suffix)
            if suffix == "ion" and not (stem_len >= 1 and w[stem_len - 1] in "st"):
                continue
            return w[:stem_len] if _measure(w, stem_len) > 1 else w
    return w


def _step5(w: str) -> str:
    if w[-1] == "e":
        m = _measure(w, len(w) - 1)
        if m > 1 or (m == 1 and not _cvc(w, len(w) - 2)):
            w = w[:-1]
    if w[-1] == "l" and _double_cons(w, len(w) - 1) and _measure(w, len(w) - 1) > 1:
        w = w[:-1]
    return w


@lru_cache(maxsize=200_000)
def porter_stem(word: str) -> str:
    """Porter stem of a lowercased word, as Lucene's ``PorterStemFilter`` computes it.

    Lucene works on UTF-16 code units, so a character outside the BMP counts as two consonants.
    """
    if not word.isascii() and any(ord(c) > 0xFFFF for c in word):
        units = word.encode("utf-16-le", "surrogatepass")
        as_units = "".join(chr(int.from_bytes(units[i : i + 2], "little")) for i in range(0, len(units), 2))
        return _stem_units(as_units).encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    return _stem_units(word)


def _stem_units(w: str) -> str:
    if len(w) <= 2:
        return w
    w = _step1ab(w)
    if w[-1] == "y" and _has_vowel(w, len(w) - 1):  # step 1c
        w = w[:-1] + "i"
    if len(w) > 1:
        w = _replace(w, _STEP2.get(w[-2], ()))
    w = _replace(w, _STEP3.get(w[-1], ()))
    w = _step4(w)
    return _step5(w)
