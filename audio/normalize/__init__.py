"""Vietnamese text normalisation: turn an officer's announcement into words espeak-ng reads well.

The pipeline is a fixed sequence of pre-compiled regular-expression passes, most specific first
(phone numbers before plain numbers, dates before ranges, units before the letter/digit split), so
each pass sees only what earlier passes left. Every pass is linear: no nested quantifiers.

Reading conventions (chosen once, used everywhere):

* units after "mươi": 1 → "mốt", 5 → "lăm", 4 → "bốn" (never "tư"): 24 → "hai mươi bốn";
  "tư" is kept only where Vietnamese requires it: "tháng tư" and ordinals ("thứ tư", "lần thứ tư");
  ordinal 1 is "thứ nhất".
* month 1 is "tháng một" ("giêng" belongs to the lunar calendar).
* 0 inside a number group: "linh" (105 → "một trăm linh năm"); ``southern=True`` says "lẻ" and "ngàn".
* "/" between numbers (house numbers, document numbers) is "trên"; "-" between numbers is "đến".
* document numbers: "57/2024/NQ-TW" → "số năm mươi bảy trên hai nghìn không trăm hai mươi bốn, nghị quyết
  trung ương" — number, "trên" year, a comma, then each code part expanded from the dictionary.
* numbers written with a leading zero ("01", "007") are read digit by digit, except in dates and times.
* phone numbers are read digit by digit in the groups written (or 4-3-3 / 3-4-4 when unspaced),
  with a comma between groups so the voice pauses.
* an unknown ALL-CAPS token that is not a pronounceable Vietnamese syllable is spelt with Vietnamese
  letter names ("HTX" unknown → "hát tê ích xì"); one that is ("THÔNG", "BÁO") is kept.
* old-style tone placement is rewritten to the traditional one: "hoà" → "hòa", "thuỷ" → "thủy".

This module runs the passes in their order; each family of them lives in its own module: ``numbers``
(reading numbers), ``dates`` (dates, times, months, ordinals, Roman numerals), ``phones``, ``units``,
``abbreviations`` (the dictionary, acronyms, document numbers, addresses) and ``cleanup`` (before and after).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeAlias

from audio.normalize.abbreviations import (
    ABBR_DOT_DIGIT_RE,
    ADDRESS_RE,
    DOC_RE,
    URL_DOT_RE,
    NormalizeError,
    WordReader,
    address,
    builtin,
    load_abbreviations,
)
from audio.normalize.cleanup import clean, tidy
from audio.normalize.dates import (
    DAY_RANGE_RE,
    DM_RE,
    DMY_RE,
    MONTH_RE,
    MONTH_YEAR_RE,
    ORDINAL_RE,
    ROMAN_RE,
    TIME_RANGE_RE,
    TIME_RE,
    ZERO_CLOCK_RE,
    ZERO_DAY_RE,
    DateReader,
)
from audio.normalize.numbers import NORTH, NUMBER_RE, SOUTH, Numbers, read_number
from audio.normalize.phones import EMERGENCY_RE, HOTLINE_RE, PHONE_INTL_RE, PHONE_RE, emergency, phone
from audio.normalize.units import DEGREE_C_RE, DO_C_RE, DOLLAR_RE, PER_RE, UNIT_RE, UnitReader, per

__all__ = ["NormalizeError", "load_abbreviations", "normalize", "read_number"]

_DIGIT_RE = re.compile(r"\d")
_LETTER_DIGIT_RE = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_SLASH_RE = re.compile(r"(?<=\d)\s*/\s*(?=\d)")
_DASH_RE = re.compile(r"(?<=\d)\s*[-–]\s*(?=\d)")

# A pass: pattern, replacement, and whether it can only match text that contains a digit.
_Pass: TypeAlias = tuple[re.Pattern[str], Callable[[re.Match[str]], str], bool]


def _make_passes(nums: Numbers, abbr: Mapping[str, str]) -> list[_Pass]:
    dates = DateReader(nums)
    units = UnitReader(nums)
    words = WordReader(nums, abbr)

    def number(m: re.Match[str]) -> str:
        return f" {nums.number(m.group(0))} "

    return [
        (URL_DOT_RE, lambda m: " chấm ", False),
        (PHONE_INTL_RE, phone, True),
        (PHONE_RE, phone, True),
        (HOTLINE_RE, phone, True),
        (EMERGENCY_RE, emergency, True),
        (DOC_RE, words.document, True),
        (DMY_RE, dates.dmy, True),
        (DAY_RANGE_RE, dates.day_range, True),
        (MONTH_YEAR_RE, dates.month_year, True),
        (TIME_RANGE_RE, dates.time_range, True),
        (TIME_RE, dates.time, True),
        (DM_RE, dates.dm, True),
        (DEGREE_C_RE, lambda m: " độ xê ", False),
        (DO_C_RE, lambda m: "xê", False),
        (DOLLAR_RE, units.dollar, True),
        (UNIT_RE, units.unit, True),
        (PER_RE, per, False),
        (ZERO_DAY_RE, dates.zero_day, True),
        (ZERO_CLOCK_RE, dates.zero_clock, True),
        (MONTH_RE, dates.month, True),
        (ORDINAL_RE, dates.ordinal, True),
        (ROMAN_RE, dates.roman, False),
        (ADDRESS_RE, address, True),
        (ABBR_DOT_DIGIT_RE, lambda m: " ", True),
        (_LETTER_DIGIT_RE, lambda m: " ", True),
        (words.token_re, words.token, False),
        (_SLASH_RE, lambda m: " trên ", True),
        (_DASH_RE, lambda m: " đến ", True),
        (NUMBER_RE, number, True),
    ]


def normalize(text: str, abbreviations: Mapping[str, str] | None = None, *, southern: bool = False) -> str:
    """Rewrite an announcement as plain spoken Vietnamese for the TTS engine.

    Numbers, dates, times, phone and document numbers, units and abbreviations become words; sentence
    punctuation and newlines stay so the voice pauses; tags, emoji and other symbols go. ``abbreviations``
    defaults to the built-in dictionary (see ``load_abbreviations``); ``southern`` says "ngàn"/"lẻ".
    Never raises on any ``str``; returns "" when nothing speakable remains.
    """
    abbr = builtin() if abbreviations is None else abbreviations
    passes = _passes(southern, abbr)
    text = _run(text, passes)
    # Tidying can join what a pass left apart ("P ." → "P.", a dictionary key), so run again until the
    # text is a fixed point: normalising normalised text must change nothing. On spoken text the extra
    # run is cheap (no digits left) and it almost always settles at once.
    for _ in range(3):
        again = _run(text, passes)
        if again == text:
            break
        text = again
    return text


def _run(text: str, passes: list[_Pass]) -> str:
    text = clean(text)
    has_digit = _DIGIT_RE.search(text) is not None
    for pattern, repl, needs_digit in passes:
        if has_digit or not needs_digit:
            text = pattern.sub(repl, text)
    return tidy(text)


_PASS_CACHE: dict[bool, list[_Pass]] = {}


def _passes(southern: bool, abbr: Mapping[str, str]) -> list[_Pass]:
    if abbr is builtin():
        cached = _PASS_CACHE.get(southern)
        if cached is None:
            cached = _PASS_CACHE[southern] = _make_passes(SOUTH if southern else NORTH, abbr)
        return cached
    return _make_passes(SOUTH if southern else NORTH, abbr)
