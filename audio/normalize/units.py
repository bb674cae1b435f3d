"""Quantities: a number with its unit ("25°C", "1.500.000 đ", "2-3 km"), "$", "°C" and "per unit" ("/hộ")."""

from __future__ import annotations

import re

from audio.normalize.numbers import Numbers

__all__ = ["DEGREE_C_RE", "DOLLAR_RE", "DO_C_RE", "PER_RE", "UNIT_RE", "UnitReader", "per"]

_NUM = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"

_UNITS = {
    "km/h": "ki lô mét trên giờ", "km²": "ki lô mét vuông", "km2": "ki lô mét vuông", "m²": "mét vuông",
    "m2": "mét vuông", "m³": "mét khối", "m3": "mét khối", "km": "ki lô mét", "cm": "xăng ti mét",
    "mm": "mi li mét", "m": "mét", "ha": "héc ta", "kg": "ki lô gam", "mg": "mi li gam", "g": "gam",
    "ml": "mi li lít", "l": "lít", "°C": "độ xê", "độ C": "độ xê", "°": "độ", "kWh": "ki lô oát giờ",
    "kW": "ki lô oát", "W": "oát", "V": "vôn", "đ": "đồng", "VNĐ": "đồng", "VND": "đồng", "vnđ": "đồng",
    "vnd": "đồng", "USD": "đô la Mỹ", "$": "đô la", "%": "phần trăm",
}  # fmt: skip
UNIT_RE = re.compile(
    r"(?<![\w.,])("
    + _NUM
    + r")(?:\s*[-–]\s*("
    + _NUM
    + r"))?\s?("
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![^\W_])"
)
DOLLAR_RE = re.compile(r"\$\s?(" + _NUM + r")(?![\d])")
DEGREE_C_RE = re.compile(r"°\s?C(?![^\W\d_])")
DO_C_RE = re.compile(r"(?<=độ )C(?![^\W\d_])")
PER_RE = re.compile(
    r"(?<=[^\W\d_])\s?/\s?(kg|km|m2|m²|m3|m³|ha|l|hộ|người|tháng|năm|ngày|tuần|giờ|lít|tấn|suất|lần|học sinh|xe)"
    r"(?![^\W\d_])"
)


def per(m: re.Match[str]) -> str:
    """:data:`PER_RE`: "đồng/hộ" → "đồng một hộ"."""
    return f" một {_UNITS.get(m.group(1), m.group(1))} "


class UnitReader:
    """The replacements that read a number, in one dialect."""

    def __init__(self, nums: Numbers) -> None:
        self.nums = nums

    def unit(self, m: re.Match[str]) -> str:
        """:data:`UNIT_RE`: the number (or range) and the unit's name."""
        low, high, name = m.groups()
        span = self.nums.number(low) + (f" đến {self.nums.number(high)}" if high else "")
        return f" {span} {_UNITS[name]} "

    def dollar(self, m: re.Match[str]) -> str:
        """:data:`DOLLAR_RE`: "$5" → "năm đô la"."""
        return f" {self.nums.number(m.group(1))} đô la "
