"""Dates, day ranges, months, clock times, ordinals, and Roman numerals after a counting word.

"08/01/2026" → "ngày tám tháng một năm hai nghìn không trăm hai mươi sáu"; "7h30-11h" → "bảy giờ ba mươi phút
đến mười một giờ"; "thứ 4" → "thứ tư"; "quý II" → "quý hai". A date-like pair that is an address or a count
("hẻm 3/2", "3/4 số hộ") is left to the later passes; a street named after a date ("đường 3/2") is read as its
name, without "ngày".
"""

from __future__ import annotations

import re

from audio.normalize.numbers import Numbers, month_word, ordinal_word

__all__ = ["DAY_RANGE_RE", "DMY_RE", "DM_RE", "MONTH_RE", "MONTH_YEAR_RE", "ORDINAL_RE", "ROMAN_RE", "TIME_RANGE_RE",
           "TIME_RE", "ZERO_CLOCK_RE", "ZERO_DAY_RE", "DateReader"]

_NGAY = r"(?:((?i:ngày)\s+))?"
_NOT_BEFORE = r"(?<![\w/.,:+-])"

DMY_RE = re.compile(
    _NOT_BEFORE + _NGAY + r"(\d{1,2})([/.-])(\d{1,2})\3(\d{4})(?![\w/])(\s*[-–]\s*(?=\d{1,2}[/.-]\d))?"
)
DAY_RANGE_RE = re.compile(
    _NOT_BEFORE + _NGAY + r"(\d{1,2})\s*[-–]\s*(\d{1,2})([/.])(\d{1,2})(?:\4(\d{4}))?(?![\w/]|[.,]\d)"
)
MONTH_YEAR_RE = re.compile(r"((?i:tháng)\s+)(\d{1,2})[/.-](\d{4})(?![\w/])")
DM_RE = re.compile(_NOT_BEFORE + _NGAY + r"(\d{1,2})([/-])(\d{1,2})(?![\w/]|[.,]\d)(\s*[-–]\s*(?=\d{1,2}[/-]\d))?")
_DM_BLOCK_BEFORE = re.compile(r"(?i:số|hẻm|ngõ|ngách|kiệt|tổ|khu phố|nhà|phòng|lớp|ấp|khóm|thôn|đội|lô|căn|kp|km)\s*$")
_STREET_BEFORE = re.compile(r"(?i:đường|(?<!khu )phố|cầu|quảng trường|công viên)\s*$")
_DM_BLOCK_AFTER = re.compile(
    r"\s*(?:giờ|h|g|phút|ngày|tuần|tháng|năm|người|hộ|nhà|xe|con|lần|km|m|cm|kg|tấn|ha|%|tuổi|trên|số)(?![^\W\d_])"
)

_T = r"(\d{1,2})(?:[hH](?:(\d{2})(?:p|')?)?|[gG](\d{2})(?:p|')?|:(\d{2}))"
TIME_RANGE_RE = re.compile(r"(?<![\w:.,/])(\d{1,2})(?:[hH](?:(\d{2}))?|:(\d{2}))?\s*[-–]\s*" + _T + r"(?![\w:])")
TIME_RE = re.compile(r"(?<![\w:.,/])" + _T + r"(?![\w:])")

# "ngày 08 tháng 01", "08 giờ": a leading zero here is a written habit, not an identifier.
ZERO_DAY_RE = re.compile(r"((?i:ngày|mùng|mồng)\s+)(0\d)(?!\d|[/.,-]\d)")
ZERO_CLOCK_RE = re.compile(r"(?<![\w.,])(0\d)(?=\s*(?:giờ|phút|tháng)(?![^\W\d_]))")
MONTH_RE = re.compile(r"((?i:tháng)\s+)(\d{1,2})(?![\d/.,]\d|\d)")
ORDINAL_RE = re.compile(r"((?i:thứ)\s+)(\d{1,2})(?!\d|[.,]\d)")
ROMAN_RE = re.compile(
    r"(?<![^\W\d_])((?i:khóa|thế kỷ|thế kỉ|đại hội|lần thứ|thứ|quý|tháng|kỳ|kì|phần|chương|mục|đợt|giai đoạn|vòng"
    r"|tập|cấp|hạng|loại|quốc hội khóa)\s+)([IVXLCDM]+)(?![^\W\d_])"
)
_ROMAN_VALID = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def _roman_value(s: str) -> int:
    total = 0
    for a, b in zip(s, [*s[1:], ""], strict=True):
        v = _ROMAN_VALUES[a]
        total += -v if b and _ROMAN_VALUES[b] > v else v
    return total


def _valid_date(day: str, month: str) -> bool:
    return 1 <= int(day) <= 31 and 1 <= int(month) <= 12


class DateReader:
    """The replacements for this module's patterns, in one dialect; a match that is no valid date or time is
    returned unchanged."""

    def __init__(self, nums: Numbers) -> None:
        self.nums = nums
        self.val = nums.value

    def _date(self, day: str, month: str, year: str | None) -> str:
        out = f"ngày {self.val(day)} tháng {month_word(int(month), self.nums)}"
        return f"{out} năm {self.val(year)}" if year else out

    @staticmethod
    def _ngay(prefix: str | None, spoken: str) -> str:
        # Keep the officer's own "ngày"/"Ngày" instead of doubling it.
        return prefix.rstrip() + spoken[4:] + " " if prefix else " " + spoken + " "

    def dmy(self, m: re.Match[str]) -> str:
        """:data:`DMY_RE`: day/month/year, "đến" when a range continues."""
        pre, d, _sep, mo, y, dash = m.groups()
        if not _valid_date(d, mo):
            return m.group(0)
        return self._ngay(pre, self._date(d, mo, y)) + ("đến " if dash else "")

    def day_range(self, m: re.Match[str]) -> str:
        """:data:`DAY_RANGE_RE`: "8-10/1" → "ngày tám đến mười tháng một"."""
        pre, d1, d2, _sep, mo, y = m.groups()
        if not (_valid_date(d1, mo) and _valid_date(d2, mo)):
            return m.group(0)
        spoken = f"ngày {self.val(d1)} đến {self._date(d2, mo, y)[5:]}"
        return self._ngay(pre, spoken)

    def month_year(self, m: re.Match[str]) -> str:
        """:data:`MONTH_YEAR_RE`: "tháng 3/2025"."""
        pre, mo, y = m.groups()
        if not 1 <= int(mo) <= 12:
            return m.group(0)
        return f"{pre}{month_word(int(mo), self.nums)} năm {self.val(y)}"

    def dm(self, m: re.Match[str]) -> str:
        """:data:`DM_RE`: day/month without a year, unless the words around it make it an address or a count."""
        pre, d, _sep, mo, dash = m.groups()
        if not _valid_date(d, mo):
            return m.group(0)
        if not pre:
            before = m.string[max(0, m.start() - 12) : m.start()]
            if _DM_BLOCK_BEFORE.search(before) or _DM_BLOCK_AFTER.match(m.string, m.end()):
                return m.group(0)
            if _STREET_BEFORE.search(before):
                # Streets named after a date ("đường 3/2") are read as the name, without "ngày".
                return f" {self.val(d)} tháng {month_word(int(mo), self.nums)} "
        return self._ngay(pre, self._date(d, mo, None)) + ("đến " if dash else "")

    def _clock(self, h: str, mins: str | None) -> str | None:
        if int(h) > 24 or (mins is not None and int(mins) > 59):
            return None
        out = f"{self.val(h)} giờ"
        if mins and int(mins):
            out += f" {self.val(mins)} phút"
        return out

    def time(self, m: re.Match[str]) -> str:
        """:data:`TIME_RE`: "14h30", "8g30", "07:05"."""
        h, m1, m2, m3 = m.groups()
        spoken = self._clock(h, m1 or m2 or m3)
        return m.group(0) if spoken is None else f" {spoken} "

    def time_range(self, m: re.Match[str]) -> str:
        """:data:`TIME_RANGE_RE`: "7h30-11h", "7-11h"."""
        h1, a1, a2, h2, b1, b2, b3 = m.groups()
        first = self._clock(h1, a1 or a2)
        second = self._clock(h2, b1 or b2 or b3)
        if first is None or second is None:
            return m.group(0)
        if not (a1 or a2) and m.group(0)[len(h1) :].lstrip()[:1] in "-–":
            first = self.val(h1)  # "7-11h": the hour word is said once, at the end
        return f" {first} đến {second} "

    def zero_day(self, m: re.Match[str]) -> str:
        """:data:`ZERO_DAY_RE`: "ngày 08" → "ngày tám"."""
        return m.group(1) + self.val(m.group(2))

    def zero_clock(self, m: re.Match[str]) -> str:
        """:data:`ZERO_CLOCK_RE`: "08 giờ" → "tám giờ"."""
        return self.val(m.group(1))

    def month(self, m: re.Match[str]) -> str:
        """:data:`MONTH_RE`: "tháng 4" → "tháng tư"."""
        n = int(m.group(2))
        return f"{m.group(1)}{month_word(n, self.nums)}" if 1 <= n <= 12 else m.group(0)

    def ordinal(self, m: re.Match[str]) -> str:
        """:data:`ORDINAL_RE`: "thứ 1" → "thứ nhất"."""
        return f"{m.group(1)}{ordinal_word(int(m.group(2)), self.nums)}"

    def roman(self, m: re.Match[str]) -> str:
        """:data:`ROMAN_RE`: "khóa IV" → "khóa bốn", "tháng IV" → "tháng tư", "lần thứ IV" → "lần thứ tư"."""
        word, numeral = m.groups()
        if not _ROMAN_VALID.fullmatch(numeral):
            return m.group(0)
        n = _roman_value(numeral)
        key = word.strip().lower()
        if key == "tháng":
            return word + month_word(n, self.nums) if n <= 12 else m.group(0)
        if key.endswith("thứ"):
            return word + ordinal_word(n, self.nums)
        return word + " ".join(self.nums.words(n))
