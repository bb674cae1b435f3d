"""Before the passes and after them.

:func:`clean`: NFC, HTML entities, newlines, control characters, odd spaces, tags (removed, never
interpreted) and old-style tone placement ("hoà" → "hòa"). :func:`tidy`: symbols read as words, brackets and
dashes as pauses, everything else unspeakable dropped, punctuation runs and spaces collapsed.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["clean", "fix_tones", "tidy"]

_TONED_SECOND = {
    "o": "àáảãạèéẻẽẹ",
    "u": "ỳýỷỹỵ",
}


def _build_tone_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for first, seconds in _TONED_SECOND.items():
        for second in seconds:
            decomposed = unicodedata.normalize("NFD", second)
            base, mark = decomposed[0], decomposed[1:]
            for f, s, b in ((first, second, base), (first.upper(), second.upper(), base.upper())):
                table[f + s] = unicodedata.normalize("NFC", f + mark) + b
            # Mixed case ("Oà" at a capitalised word start).
            table[first.upper() + second] = unicodedata.normalize("NFC", first.upper() + mark) + base
    return table


_TONE_TABLE = _build_tone_table()
# Only a word-final oa/oe/uy moves its mark ("hoàng" and "quý" are the same in both styles).
_TONE_RE = re.compile(r"(?<![qQ])(?:" + "|".join(sorted(_TONE_TABLE)) + r")(?![^\W\d_])")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ufe0f\u00ad]")
_SPACEISH_RE = re.compile(r"[\t\x0b\x0c\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_NEWLINE_RE = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_TAG_RE = re.compile(r"<[^<>\n]{0,500}>")


def fix_tones(text: str) -> str:
    """Old-style tone placement on a word-final oa/oe/uy rewritten to the traditional one."""
    return _TONE_RE.sub(lambda m: _TONE_TABLE[m.group(0)], text)


def clean(text: str) -> str:
    """The officer's text made plain for the passes (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    if "&" in text:
        text = html.unescape(text)  # entities are text encoding, not markup
    text = _NEWLINE_RE.sub("\n", text)
    text = _CONTROL_RE.sub("", text)
    text = _SPACEISH_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)  # tags are never interpreted, only removed
    return fix_tones(text)


_SYMBOLS = {"&": " và ", "@": " a còng ", "+": " cộng ", "=": " bằng "}
_SYMBOL_RE = re.compile(r"[&@+=]")
_ELLIPSIS_RE = re.compile(r"\.{2,}|…")
_BRACKET_RE = re.compile(r"[()\[\]{}]")
_SPACED_DASH_RE = re.compile(r"(?:^|(?<=\s))[-–—]+(?=\s|$)", re.MULTILINE)
_OTHER_RE = re.compile(r"[^\w\s,.;:?!]|_")
_SPACES_RE = re.compile(r"[^\S\n]+")
_PUNCT_RUN_RE = re.compile(r" *([,.;:?!](?: *[,.;:?!])*) *")
_LINE_EDGE_RE = re.compile(r"^[ ,.;:?!]+|[ ,]+$", re.MULTILINE)
_NEWLINES_RE = re.compile(r"\n(?:[ \n])*")
_HAS_WORD_RE = re.compile(r"[^\W_]")


def _pick_punct(m: re.Match[str]) -> str:
    run = m.group(1)
    for strong in "?!.;:":
        if strong in run:
            return strong + " "
    return ", "


def tidy(text: str) -> str:
    """The passes' output as the engine gets it; "" when no word is left."""
    text = _SYMBOL_RE.sub(lambda m: _SYMBOLS[m.group(0)], text)
    text = _ELLIPSIS_RE.sub(".", text)
    text = _BRACKET_RE.sub(",", text)
    text = _SPACED_DASH_RE.sub(",", text)
    text = _OTHER_RE.sub(" ", text)
    text = _SPACES_RE.sub(" ", text)
    text = _PUNCT_RUN_RE.sub(_pick_punct, text)
    text = _LINE_EDGE_RE.sub("", text)
    text = _NEWLINES_RE.sub("\n", text).strip()
    return text if _HAS_WORD_RE.search(text) else ""
