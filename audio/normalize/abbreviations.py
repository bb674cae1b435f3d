"""Everything written short that the voice must read long: the abbreviation dictionary (built in, plus a
site's own TSV file), acronyms, document numbers ("57/2024/NQ-TW"), "P."/"Q." before a number, and the dots
of web addresses.

An unknown ALL-CAPS token that is not a pronounceable Vietnamese syllable is spelt with Vietnamese letter
names ("HTX" unknown → "hát tê ích xì"); one that is ("THÔNG", "BÁO") is kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from audio.normalize.cleanup import fix_tones
from audio.normalize.numbers import Numbers

__all__ = ["ABBR_DOT_DIGIT_RE", "ADDRESS_RE", "DOC_RE", "URL_DOT_RE", "NormalizeError", "WordReader", "address",
           "builtin", "load_abbreviations"]

#: The dictionary shipped with the package; it stays at ``audio/abbreviations.tsv`` (the package data).
_BUILTIN_TSV = Path(__file__).parent.parent / "abbreviations.tsv"


class NormalizeError(ValueError):
    """A site abbreviation file is malformed (the message names the file and line)."""


def _parse_tsv(path: Path, *, strict: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    with path.open(encoding="utf-8-sig") as fh:  # tolerate a BOM from Windows editors
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            key = fields[0].strip() if fields else ""
            value = fields[1].strip() if len(fields) == 2 else ""
            if len(fields) != 2 or not key or not value or any(c.isspace() for c in key):
                if strict:
                    raise NormalizeError(f"{path}:{lineno}: expected 'ABBREVIATION<TAB>expansion', got {line[:80]!r}")
                continue
            out[unicodedata.normalize("NFC", key)] = fix_tones(unicodedata.normalize("NFC", value))
    return out


@lru_cache(maxsize=1)
def builtin() -> dict[str, str]:
    """The built-in dictionary, read once (callers must not change it)."""
    return _parse_tsv(_BUILTIN_TSV, strict=True)


def load_abbreviations(site_file: Path | None = None) -> dict[str, str]:
    """The built-in abbreviation dictionary merged with a site's own TSV file (the site's entries win).

    Raises ``NormalizeError`` (a ``ValueError``) naming the file and line when the site file is malformed.
    """
    merged = dict(builtin())
    if site_file is not None:
        merged.update(_parse_tsv(Path(site_file), strict=True))
    return merged


_LETTER_NAMES = {
    "a": "a", "ă": "á", "â": "ớ", "b": "bê", "c": "xê", "d": "dê", "đ": "đê", "e": "e", "ê": "ê",
    "f": "ép", "g": "giê", "h": "hát", "i": "i", "j": "gi", "k": "ca", "l": "e lờ", "m": "em mờ",
    "n": "en nờ", "o": "o", "ô": "ô", "ơ": "ơ", "p": "pê", "q": "quy", "r": "e rờ", "s": "ét xì",
    "t": "tê", "u": "u", "ư": "ư", "v": "vê", "w": "vê kép", "x": "ích xì", "y": "i dài", "z": "dét",
}  # fmt: skip


def _vowel_class() -> str:
    chars = [chr(c) for c in range(0x61, 0x7B)] + [chr(c) for c in range(0xC0, 0x1EFA)]
    vowels = {c for c in chars if c.islower() and unicodedata.normalize("NFD", c)[0] in "aeiouy"}
    return "".join(sorted(vowels))


_SYLLABLE_RE = re.compile(
    r"(?:ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|[bcdđghklmnprstvx])?[" + _vowel_class() + r"]{1,3}(?:ng|nh|ch|[cmnpt])?"
)


def _spell(token: str) -> str:
    # Separators in "V.I.P" or "A-B" are not read; the letters are.
    return " ".join(_LETTER_NAMES.get(c, c) for c in token.lower() if c.isalpha())


def _expand_token(token: str, abbr: Mapping[str, str]) -> str | None:
    hit = abbr.get(token)
    if hit is not None:
        return hit
    if len(token) >= 2 and token.isupper():
        if _SYLLABLE_RE.fullmatch(token.lower()):
            return token
        return _spell(token)
    return None


DOC_RE = re.compile(
    r"(?<![\w/])((?i:số)\s*:?\s*)?(\d{1,5})([a-z]?)(?:/(\d{4}))?/([A-ZĐ][A-Za-zĐđ]*(?:-[A-ZĐ][A-Za-zĐđ]*)*)(?![\w/])"
)
ABBR_DOT_DIGIT_RE = re.compile(r"(?<=[A-ZĐ])\.(?=\d)")
ADDRESS_RE = re.compile(r"(?<![\w.])([PQ])\.\s?(?=\d)|(?<![\w.])Q(?=\d{1,2}(?!\d))")
URL_DOT_RE = re.compile(r"(?<=[a-z0-9])\.(?=(?:vn|com|net|org|gov|edu|info|www)(?![^\W_]))|(?<=www)\.")

_UPPER_CLASS = "".join(c for c in map(chr, range(0x41, 0x1EFA)) if c.isupper() and c.isalpha())
_UPPER_RE = re.compile("[" + _UPPER_CLASS + "]")
_CAPS_TOKEN_RE = re.compile(r"(?<!\w)(?=[^\W\d_]*[" + _UPPER_CLASS + r"])([^\W\d_]+(?:[.&-][^\W\d_]+)*)(\.?)")
_TOKEN_RE = re.compile(r"(?<!\w)([^\W\d_]+(?:[.&-][^\W\d_]+)*)(\.?)")


def address(m: re.Match[str]) -> str:
    """:data:`ADDRESS_RE`: "P.5" → "phường 5", "Q.1" / "Q1" → "quận 1"."""
    letter = m.group(1) or "Q"
    return "phường " if letter == "P" else "quận "


class WordReader:
    """The replacements that need the dictionary: tokens and document numbers, in one dialect."""

    def __init__(self, nums: Numbers, abbr: Mapping[str, str]) -> None:
        self.nums = nums
        self.abbr = abbr
        # With only capitalised keys (the built-in case) a word without a capital cannot be a key or an
        # acronym, so the cheaper pattern skips the Python callback for ordinary words.
        self.token_re = _CAPS_TOKEN_RE if all(_UPPER_RE.search(k) for k in abbr) else _TOKEN_RE

    def document(self, m: re.Match[str]) -> str:
        """:data:`DOC_RE`: number, "trên" year, a comma, then each code part expanded from the dictionary."""
        so, number, suffix, year, codes = m.groups()
        parts = [so.strip() if so else "số", self.nums.integer(number)]
        if suffix:
            parts.append(suffix.upper())
        if year:
            parts += ["trên", self.nums.value(year)]
        spoken_codes = []
        for code in codes.split("-"):
            hit = _expand_token(code, self.abbr)
            spoken_codes.append(hit if hit is not None else _spell(code))
        return " " + " ".join(parts) + ", " + " ".join(spoken_codes) + " "

    def token(self, m: re.Match[str]) -> str:
        """A :attr:`token_re` match: a dictionary entry, an acronym spelt, or the word unchanged."""
        tok, dot = m.groups()
        abbr = self.abbr
        if dot:
            hit = abbr.get(tok + ".")
            if hit is not None:
                return hit + " "
        hit = _expand_token(tok, abbr)
        if hit is None and any(c in tok for c in ".&-"):
            # "Tp.HCM", "NĐ-CP", "TP.km": expand the known parts; if none is known, leave the token alone.
            pieces = re.split(r"[.&-]", tok)
            found = [_expand_token(piece, abbr) for piece in pieces]
            if any(f is not None for f in found):
                hit = " ".join(p if f is None else f for p, f in zip(pieces, found, strict=True))
        return (tok if hit is None else hit) + dot
