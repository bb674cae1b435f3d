"""Phone numbers, hotlines and emergency numbers, read digit by digit.

In the groups written ("0903 123 456"), or 4-3-3 / 3-4-4 when unspaced, with a comma between groups so the
voice pauses; "+84" is "cộng tám bốn". A number starting with 0 is a phone number only with 10 or 11 digits.
"""

from __future__ import annotations

import re

from audio.normalize.numbers import spell_digits

__all__ = ["EMERGENCY_RE", "HOTLINE_RE", "PHONE_INTL_RE", "PHONE_RE", "emergency", "phone"]

PHONE_INTL_RE = re.compile(r"(?<![\w+])\+84[\s.-]?\d{2,3}(?:[\s.-]?\d{3,4}){2}(?!\d)")
PHONE_RE = re.compile(r"(?<![\w.,/:-])0\d{2,3}(?:[\s.-]?\d{3,4}){1,2}(?![\d/]|[.,]\d)")
HOTLINE_RE = re.compile(r"(?<![\w.,/:-])1[89]00[\s.-]?\d{2,4}(?:[\s.-]?\d{2,4})?(?![\d/]|[.,]\d)")
EMERGENCY_RE = re.compile(r"((?i:gọi(?:\s+số)?|số|đường dây nóng|hotline|tổng đài)\s+)(11[1345])(?!\d)")


def _spoken(raw: str) -> str:
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
    spoken = [spell_digits(g) for g in groups if g]
    if intl:
        spoken.insert(0, "cộng tám bốn")
    return " " + ", ".join(spoken) + ", "


def phone(m: re.Match[str]) -> str:
    """A :data:`PHONE_INTL_RE`, :data:`PHONE_RE` or :data:`HOTLINE_RE` match read aloud (or left as written)."""
    raw = m.group(0)
    count = sum(c.isdigit() for c in raw)
    if raw.startswith("0") and count not in (10, 11):
        return raw
    return _spoken(raw)


def emergency(m: re.Match[str]) -> str:
    """:data:`EMERGENCY_RE`: "gọi 113" → "gọi một một ba"."""
    return m.group(1) + spell_digits(m.group(2))
