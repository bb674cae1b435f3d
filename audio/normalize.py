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
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TypeAlias

__all__ = ["NormalizeError", "load_abbreviations", "normalize", "read_number"]

_BUILTIN_TSV = Path(__file__).with_name("abbreviations.tsv")


class NormalizeError(ValueError):
    """A site abbreviation file is malformed (the message names the file and line)."""


# --------------------------------------------------------------------------------------------------
# Numbers

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


class _Numbers:
    """Reads integers; one instance per dialect so the hot path has no option checks."""

    def __init__(self, *, southern: bool) -> None:
        self.thousand = "ngàn" if southern else "nghìn"
        self.zero_tens = "lẻ" if southern else "linh"

    def _triple(self, n: int, full: bool) -> list[str]:
        hundreds, rest = divmod(n, 100)
        tens, units = divmod(rest, 10)
        words: list[str] = []
        if full or hundreds:
            words += [_DIGITS[hundreds], "trăm"]
        if tens == 0:
            if units:
                if words:
                    words.append(self.zero_tens)
                words.append(_DIGITS[units])
        elif tens == 1:
            words.append("mười")
            if units:
                words.append("lăm" if units == 5 else _DIGITS[units])
        else:
            words += [_DIGITS[tens], "mươi"]
            if units == 1:
                words.append("mốt")
            elif units == 5:
                words.append("lăm")
            elif units:
                words.append(_DIGITS[units])
        return words

    def _below_billion(self, n: int, full: bool) -> list[str]:
        words: list[str] = []
        started = full
        for value, scale in ((n // 1_000_000, "triệu"), (n // 1000 % 1000, self.thousand), (n % 1000, "")):
            if value == 0:
                continue
            words += self._triple(value, started)
            if scale:
                words.append(scale)
            started = True
        return words

    def words(self, n: int) -> list[str]:
        """Word list for a non-negative integer."""
        if n == 0:
            return ["không"]
        if n >= 1_000_000_000:
            high, low = divmod(n, 1_000_000_000)
            out = [*self.words(high), "tỷ"]
            if low:
                out += self._below_billion(low, True)
            return out
        return self._below_billion(n, False)

    def integer(self, digits: str) -> str:
        """Read a digit string: leading zeros and very long strings digit by digit."""
        if (len(digits) > 1 and digits[0] == "0") or len(digits) > 15:
            return _spell_digits(digits)
        return " ".join(self.words(int(digits)))

    def value(self, digits: str) -> str:
        """Read a digit string as a quantity (dates, times): leading zeros ignored."""
        return " ".join(self.words(int(digits)))

    def number(self, text: str) -> str:
        """Read a written number: "1.500.000", "2,5", "0,75", "1.5", "007"."""
        if _THOUSANDS_RE.fullmatch(text):
            whole, _, frac = text.partition(",")
            return self._with_fraction(whole.replace(".", ""), frac)
        if "." in text and "," not in text:
            return " chấm ".join(self.integer(part) for part in text.split("."))
        parts = text.split(",")
        if len(parts) == 2 and "." not in text:
            return self._with_fraction(parts[0], parts[1])
        # "1,2,3" or mixed separators: a list, read item by item with pauses.
        return ", ".join(self.integer(p) for p in re.split(r"[.,]", text) if p)

    def _with_fraction(self, whole: str, frac: str) -> str:
        head = " ".join(self.words(int(whole))) if len(whole) <= 15 else _spell_digits(whole)
        if not frac:
            return head
        stripped = frac.lstrip("0")
        zeros = ["không"] * (len(frac) - len(stripped))
        if not stripped:
            tail = zeros
        elif len(stripped) <= 2:
            tail = [*zeros, *self.words(int(stripped))]
        else:
            tail = [*zeros, _spell_digits(stripped)]
        return f"{head} phẩy {' '.join(tail)}"


_NORTH = _Numbers(southern=False)
_SOUTH = _Numbers(southern=True)
_THOUSANDS_RE = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")


def _spell_digits(digits: str) -> str:
    return " ".join(_DIGITS[ord(c) - 48] for c in digits if "0" <= c <= "9")


def read_number(n: int, *, southern: bool = False) -> str:
    """Vietnamese words for a non-negative integer (e.g. 21 → "hai mươi mốt")."""
    if n < 0:
        return "âm " + read_number(-n, southern=southern)
    return " ".join((_SOUTH if southern else _NORTH).words(n))


def _ordinal(n: int, nums: _Numbers) -> str:
    if n == 1:
        return "nhất"
    if n == 4:
        return "tư"
    return " ".join(nums.words(n))


def _month(n: int, nums: _Numbers) -> str:
    return "tư" if n == 4 else " ".join(nums.words(n))


# --------------------------------------------------------------------------------------------------
# Cleaning: NFC, tone placement, control characters, tags

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


def _fix_tones(text: str) -> str:
    return _TONE_RE.sub(lambda m: _TONE_TABLE[m.group(0)], text)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    if "&" in text:
        text = html.unescape(text)  # entities are text encoding, not markup
    text = _NEWLINE_RE.sub("\n", text)
    text = _CONTROL_RE.sub("", text)
    text = _SPACEISH_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)  # tags are never interpreted, only removed
    return _fix_tones(text)


# --------------------------------------------------------------------------------------------------
# Abbreviations


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
            out[unicodedata.normalize("NFC", key)] = _fix_tones(unicodedata.normalize("NFC", value))
    return out


@lru_cache(maxsize=1)
def _builtin() -> dict[str, str]:
    return _parse_tsv(_BUILTIN_TSV, strict=True)


def load_abbreviations(site_file: Path | None = None) -> dict[str, str]:
    """The built-in abbreviation dictionary merged with a site's own TSV file (the site's entries win).

    Raises ``NormalizeError`` (a ``ValueError``) naming the file and line when the site file is malformed.
    """
    merged = dict(_builtin())
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


# --------------------------------------------------------------------------------------------------
# Patterns (all compiled once)

_NUM = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"
_NGAY = r"(?:((?i:ngày)\s+))?"
_NOT_BEFORE = r"(?<![\w/.,:+-])"

_PHONE_INTL_RE = re.compile(r"(?<![\w+])\+84[\s.-]?\d{2,3}(?:[\s.-]?\d{3,4}){2}(?!\d)")
_PHONE_RE = re.compile(r"(?<![\w.,/:-])0\d{2,3}(?:[\s.-]?\d{3,4}){1,2}(?![\d/]|[.,]\d)")
_HOTLINE_RE = re.compile(r"(?<![\w.,/:-])1[89]00[\s.-]?\d{2,4}(?:[\s.-]?\d{2,4})?(?![\d/]|[.,]\d)")
_EMERGENCY_RE = re.compile(r"((?i:gọi(?:\s+số)?|số|đường dây nóng|hotline|tổng đài)\s+)(11[1345])(?!\d)")

_DOC_RE = re.compile(
    r"(?<![\w/])((?i:số)\s*:?\s*)?(\d{1,5})([a-z]?)(?:/(\d{4}))?/([A-ZĐ][A-Za-zĐđ]*(?:-[A-ZĐ][A-Za-zĐđ]*)*)(?![\w/])"
)

_DMY_RE = re.compile(
    _NOT_BEFORE + _NGAY + r"(\d{1,2})([/.-])(\d{1,2})\3(\d{4})(?![\w/])(\s*[-–]\s*(?=\d{1,2}[/.-]\d))?"
)
_DAY_RANGE_RE = re.compile(
    _NOT_BEFORE + _NGAY + r"(\d{1,2})\s*[-–]\s*(\d{1,2})([/.])(\d{1,2})(?:\4(\d{4}))?(?![\w/]|[.,]\d)"
)
_MONTH_YEAR_RE = re.compile(r"((?i:tháng)\s+)(\d{1,2})[/.-](\d{4})(?![\w/])")
_DM_RE = re.compile(_NOT_BEFORE + _NGAY + r"(\d{1,2})([/-])(\d{1,2})(?![\w/]|[.,]\d)(\s*[-–]\s*(?=\d{1,2}[/-]\d))?")
_DM_BLOCK_BEFORE = re.compile(r"(?i:số|hẻm|ngõ|ngách|kiệt|tổ|khu phố|nhà|phòng|lớp|ấp|khóm|thôn|đội|lô|căn|kp|km)\s*$")
_STREET_BEFORE = re.compile(r"(?i:đường|(?<!khu )phố|cầu|quảng trường|công viên)\s*$")
_DM_BLOCK_AFTER = re.compile(
    r"\s*(?:giờ|h|g|phút|ngày|tuần|tháng|năm|người|hộ|nhà|xe|con|lần|km|m|cm|kg|tấn|ha|%|tuổi|trên|số)(?![^\W\d_])"
)

_T = r"(\d{1,2})(?:[hH](?:(\d{2})(?:p|')?)?|[gG](\d{2})(?:p|')?|:(\d{2}))"
_TIME_RANGE_RE = re.compile(r"(?<![\w:.,/])(\d{1,2})(?:[hH](?:(\d{2}))?|:(\d{2}))?\s*[-–]\s*" + _T + r"(?![\w:])")
_TIME_RE = re.compile(r"(?<![\w:.,/])" + _T + r"(?![\w:])")

# "ngày 08 tháng 01", "08 giờ": a leading zero here is a written habit, not an identifier.
_ZERO_DAY_RE = re.compile(r"((?i:ngày|mùng|mồng)\s+)(0\d)(?!\d|[/.,-]\d)")
_ZERO_CLOCK_RE = re.compile(r"(?<![\w.,])(0\d)(?=\s*(?:giờ|phút|tháng)(?![^\W\d_]))")
_MONTH_RE = re.compile(r"((?i:tháng)\s+)(\d{1,2})(?![\d/.,]\d|\d)")
_ORDINAL_RE = re.compile(r"((?i:thứ)\s+)(\d{1,2})(?!\d|[.,]\d)")
_ROMAN_RE = re.compile(
    r"(?<![^\W\d_])((?i:khóa|thế kỷ|thế kỉ|đại hội|lần thứ|thứ|quý|tháng|kỳ|kì|phần|chương|mục|đợt|giai đoạn|vòng"
    r"|tập|cấp|hạng|loại|quốc hội khóa)\s+)([IVXLCDM]+)(?![^\W\d_])"
)
_ROMAN_VALID = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}

_UNITS = {
    "km/h": "ki lô mét trên giờ", "km²": "ki lô mét vuông", "km2": "ki lô mét vuông", "m²": "mét vuông",
    "m2": "mét vuông", "m³": "mét khối", "m3": "mét khối", "km": "ki lô mét", "cm": "xăng ti mét",
    "mm": "mi li mét", "m": "mét", "ha": "héc ta", "kg": "ki lô gam", "mg": "mi li gam", "g": "gam",
    "ml": "mi li lít", "l": "lít", "°C": "độ xê", "độ C": "độ xê", "°": "độ", "kWh": "ki lô oát giờ",
    "kW": "ki lô oát", "W": "oát", "V": "vôn", "đ": "đồng", "VNĐ": "đồng", "VND": "đồng", "vnđ": "đồng",
    "vnd": "đồng", "USD": "đô la Mỹ", "$": "đô la", "%": "phần trăm",
}  # fmt: skip
_UNIT_RE = re.compile(
    r"(?<![\w.,])("
    + _NUM
    + r")(?:\s*[-–]\s*("
    + _NUM
    + r"))?\s?("
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![^\W_])"
)
_DOLLAR_RE = re.compile(r"\$\s?(" + _NUM + r")(?![\d])")
_DEGREE_C_RE = re.compile(r"°\s?C(?![^\W\d_])")
_DO_C_RE = re.compile(r"(?<=độ )C(?![^\W\d_])")
_PER_RE = re.compile(
    r"(?<=[^\W\d_])\s?/\s?(kg|km|m2|m²|m3|m³|ha|l|hộ|người|tháng|năm|ngày|tuần|giờ|lít|tấn|suất|lần|học sinh|xe)"
    r"(?![^\W\d_])"
)
_ABBR_DOT_DIGIT_RE = re.compile(r"(?<=[A-ZĐ])\.(?=\d)")
_ADDRESS_RE = re.compile(r"(?<![\w.])([PQ])\.\s?(?=\d)|(?<![\w.])Q(?=\d{1,2}(?!\d))")

_LETTER_DIGIT_RE = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_UPPER_CLASS = "".join(c for c in map(chr, range(0x41, 0x1EFA)) if c.isupper() and c.isalpha())
_UPPER_RE = re.compile("[" + _UPPER_CLASS + "]")
_CAPS_TOKEN_RE = re.compile(r"(?<!\w)(?=[^\W\d_]*[" + _UPPER_CLASS + r"])([^\W\d_]+(?:[.&-][^\W\d_]+)*)(\.?)")
_DIGIT_RE = re.compile(r"\d")
_TOKEN_RE = re.compile(r"(?<!\w)([^\W\d_]+(?:[.&-][^\W\d_]+)*)(\.?)")
_SLASH_RE = re.compile(r"(?<=\d)\s*/\s*(?=\d)")
_DASH_RE = re.compile(r"(?<=\d)\s*[-–]\s*(?=\d)")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")

_URL_DOT_RE = re.compile(r"(?<=[a-z0-9])\.(?=(?:vn|com|net|org|gov|edu|info|www)(?![^\W_]))|(?<=www)\.")
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


# --------------------------------------------------------------------------------------------------
# Passes


def _phone(raw: str) -> str:
    intl = raw.startswith("+84")
    body = raw[3:] if intl else raw
    groups = [g for g in re.split(r"[\s.-]+", body) if g]
    if len(groups) == 1:
        digits = groups[0]
        if digits.startswith("1"):
            groups = [digits[:4], digits[4:]]
        elif len(digits) == 11 or digits.startswith("02"):
            groups = [digits[:3], digits[3:7], digits[7:]]
        else:
            groups = [digits[:4], digits[4:7], digits[7:]]
    spoken = [_spell_digits(g) for g in groups if g]
    if intl:
        spoken.insert(0, "cộng tám bốn")
    return " " + ", ".join(spoken) + ", "


def _phone_sub(m: re.Match[str]) -> str:
    raw = m.group(0)
    count = sum(c.isdigit() for c in raw)
    if raw.startswith("0") and count not in (10, 11):
        return raw
    return _phone(raw)


def _roman_value(s: str) -> int:
    total = 0
    for a, b in zip(s, [*s[1:], ""], strict=True):
        v = _ROMAN_VALUES[a]
        total += -v if b and _ROMAN_VALUES[b] > v else v
    return total


def _valid_date(day: str, month: str) -> bool:
    return 1 <= int(day) <= 31 and 1 <= int(month) <= 12


# A pass: pattern, replacement, and whether it can only match text that contains a digit.
_Pass: TypeAlias = tuple[re.Pattern[str], Callable[[re.Match[str]], str], bool]


def _make_passes(nums: _Numbers, abbr: Mapping[str, str]) -> list[_Pass]:
    val = nums.value

    def date(day: str, month: str, year: str | None) -> str:
        out = f"ngày {val(day)} tháng {_month(int(month), nums)}"
        return f"{out} năm {val(year)}" if year else out

    def ngay(prefix: str | None, spoken: str) -> str:
        # Keep the officer's own "ngày"/"Ngày" instead of doubling it.
        return prefix.rstrip() + spoken[4:] + " " if prefix else " " + spoken + " "

    def doc(m: re.Match[str]) -> str:
        so, number, suffix, year, codes = m.groups()
        parts = [so.strip() if so else "số", nums.integer(number)]
        if suffix:
            parts.append(suffix.upper())
        if year:
            parts += ["trên", val(year)]
        spoken_codes = []
        for code in codes.split("-"):
            hit = _expand_token(code, abbr)
            spoken_codes.append(hit if hit is not None else _spell(code))
        return " " + " ".join(parts) + ", " + " ".join(spoken_codes) + " "

    def dmy(m: re.Match[str]) -> str:
        pre, d, _sep, mo, y, dash = m.groups()
        if not _valid_date(d, mo):
            return m.group(0)
        return ngay(pre, date(d, mo, y)) + ("đến " if dash else "")

    def day_range(m: re.Match[str]) -> str:
        pre, d1, d2, _sep, mo, y = m.groups()
        if not (_valid_date(d1, mo) and _valid_date(d2, mo)):
            return m.group(0)
        spoken = f"ngày {val(d1)} đến {date(d2, mo, y)[5:]}"
        return ngay(pre, spoken)

    def month_year(m: re.Match[str]) -> str:
        pre, mo, y = m.groups()
        if not 1 <= int(mo) <= 12:
            return m.group(0)
        return f"{pre}{_month(int(mo), nums)} năm {val(y)}"

    def dm(m: re.Match[str]) -> str:
        pre, d, _sep, mo, dash = m.groups()
        if not _valid_date(d, mo):
            return m.group(0)
        if not pre:
            before = m.string[max(0, m.start() - 12) : m.start()]
            if _DM_BLOCK_BEFORE.search(before) or _DM_BLOCK_AFTER.match(m.string, m.end()):
                return m.group(0)
            if _STREET_BEFORE.search(before):
                # Streets named after a date ("đường 3/2") are read as the name, without "ngày".
                return f" {val(d)} tháng {_month(int(mo), nums)} "
        return ngay(pre, date(d, mo, None)) + ("đến " if dash else "")

    def clock(h: str, mins: str | None) -> str | None:
        if int(h) > 24 or (mins is not None and int(mins) > 59):
            return None
        out = f"{val(h)} giờ"
        if mins and int(mins):
            out += f" {val(mins)} phút"
        return out

    def time(m: re.Match[str]) -> str:
        h, m1, m2, m3 = m.groups()
        spoken = clock(h, m1 or m2 or m3)
        return m.group(0) if spoken is None else f" {spoken} "

    def time_range(m: re.Match[str]) -> str:
        h1, a1, a2, h2, b1, b2, b3 = m.groups()
        first = clock(h1, a1 or a2)
        second = clock(h2, b1 or b2 or b3)
        if first is None or second is None:
            return m.group(0)
        if not (a1 or a2) and m.group(0)[len(h1) :].lstrip()[:1] in "-–":
            first = val(h1)  # "7-11h": the hour word is said once, at the end
        return f" {first} đến {second} "

    def month(m: re.Match[str]) -> str:
        n = int(m.group(2))
        return f"{m.group(1)}{_month(n, nums)}" if 1 <= n <= 12 else m.group(0)

    def ordinal(m: re.Match[str]) -> str:
        return f"{m.group(1)}{_ordinal(int(m.group(2)), nums)}"

    def roman(m: re.Match[str]) -> str:
        word, numeral = m.groups()
        if not _ROMAN_VALID.fullmatch(numeral):
            return m.group(0)
        n = _roman_value(numeral)
        key = word.strip().lower()
        if key == "tháng":
            return word + _month(n, nums) if n <= 12 else m.group(0)
        if key.endswith("thứ"):
            return word + _ordinal(n, nums)
        return word + " ".join(nums.words(n))

    def unit(m: re.Match[str]) -> str:
        low, high, name = m.groups()
        span = nums.number(low) + (f" đến {nums.number(high)}" if high else "")
        return f" {span} {_UNITS[name]} "

    def per(m: re.Match[str]) -> str:
        return f" một {_UNITS.get(m.group(1), m.group(1))} "

    def dollar(m: re.Match[str]) -> str:
        return f" {nums.number(m.group(1))} đô la "

    def address(m: re.Match[str]) -> str:
        letter = m.group(1) or "Q"
        return "phường " if letter == "P" else "quận "

    # With only capitalised keys (the built-in case) a word without a capital cannot be a key or an
    # acronym, so the cheaper pattern skips the Python callback for ordinary words.
    token_re = _CAPS_TOKEN_RE if all(_UPPER_RE.search(k) for k in abbr) else _TOKEN_RE

    def token(m: re.Match[str]) -> str:
        tok, dot = m.groups()
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

    def emergency(m: re.Match[str]) -> str:
        return m.group(1) + _spell_digits(m.group(2))

    def number(m: re.Match[str]) -> str:
        return f" {nums.number(m.group(0))} "

    return [
        (_URL_DOT_RE, lambda m: " chấm ", False),
        (_PHONE_INTL_RE, _phone_sub, True),
        (_PHONE_RE, _phone_sub, True),
        (_HOTLINE_RE, _phone_sub, True),
        (_EMERGENCY_RE, emergency, True),
        (_DOC_RE, doc, True),
        (_DMY_RE, dmy, True),
        (_DAY_RANGE_RE, day_range, True),
        (_MONTH_YEAR_RE, month_year, True),
        (_TIME_RANGE_RE, time_range, True),
        (_TIME_RE, time, True),
        (_DM_RE, dm, True),
        (_DEGREE_C_RE, lambda m: " độ xê ", False),
        (_DO_C_RE, lambda m: "xê", False),
        (_DOLLAR_RE, dollar, True),
        (_UNIT_RE, unit, True),
        (_PER_RE, per, False),
        (_ZERO_DAY_RE, lambda m: m.group(1) + val(m.group(2)), True),
        (_ZERO_CLOCK_RE, lambda m: val(m.group(1)), True),
        (_MONTH_RE, month, True),
        (_ORDINAL_RE, ordinal, True),
        (_ROMAN_RE, roman, False),
        (_ADDRESS_RE, address, True),
        (_ABBR_DOT_DIGIT_RE, lambda m: " ", True),
        (_LETTER_DIGIT_RE, lambda m: " ", True),
        (token_re, token, False),
        (_SLASH_RE, lambda m: " trên ", True),
        (_DASH_RE, lambda m: " đến ", True),
        (_NUMBER_RE, number, True),
    ]


def _pick_punct(m: re.Match[str]) -> str:
    run = m.group(1)
    for strong in "?!.;:":
        if strong in run:
            return strong + " "
    return ", "


def _tidy(text: str) -> str:
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


def normalize(text: str, abbreviations: Mapping[str, str] | None = None, *, southern: bool = False) -> str:
    """Rewrite an announcement as plain spoken Vietnamese for the TTS engine.

    Numbers, dates, times, phone and document numbers, units and abbreviations become words; sentence
    punctuation and newlines stay so the voice pauses; tags, emoji and other symbols go. ``abbreviations``
    defaults to the built-in dictionary (see ``load_abbreviations``); ``southern`` says "ngàn"/"lẻ".
    Never raises on any ``str``; returns "" when nothing speakable remains.
    """
    abbr = _builtin() if abbreviations is None else abbreviations
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
    text = _clean(text)
    has_digit = _DIGIT_RE.search(text) is not None
    for pattern, repl, needs_digit in passes:
        if has_digit or not needs_digit:
            text = pattern.sub(repl, text)
    return _tidy(text)


_PASS_CACHE: dict[bool, list[_Pass]] = {}


def _passes(southern: bool, abbr: Mapping[str, str]) -> list[_Pass]:
    if abbr is _builtin():
        cached = _PASS_CACHE.get(southern)
        if cached is None:
            cached = _PASS_CACHE[southern] = _make_passes(_SOUTH if southern else _NORTH, abbr)
        return cached
    return _make_passes(_SOUTH if southern else _NORTH, abbr)
