"""Numbers read aloud: integers in either dialect, written numbers ("1.500.000", "2,5"), digit strings,
and the two words that differ after "thứ" and "tháng" (ordinals, month names)."""

from __future__ import annotations

import re

__all__ = ["NORTH", "NUMBER_RE", "SOUTH", "Numbers", "month_word", "ordinal_word", "read_number", "spell_digits"]

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


class Numbers:
    """Reads integers; one instance per dialect so the hot path has no option checks."""

    def __init__(self, *, southern: bool) -> None:
        self.thousand = "ngàn" if southern else "nghìn"
        self.zero_tens = "lẻ" if southern else "linh"

    def _triple(self, n: int, full: bool) -> list[str]:
        hundreds, rest = divmod(n, 100)
        tens, units = divmod(rest, 10)
        words: list[str] = []
        if full or hundreds:
            words += [DIGITS[hundreds], "trăm"]
        if tens == 0:
            if units:
                if words:
                    words.append(self.zero_tens)
                words.append(DIGITS[units])
        elif tens == 1:
            words.append("mười")
            if units:
                words.append("lăm" if units == 5 else DIGITS[units])
        else:
            words += [DIGITS[tens], "mươi"]
            if units == 1:
                words.append("mốt")
            elif units == 5:
                words.append("lăm")
            elif units:
                words.append(DIGITS[units])
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
            return spell_digits(digits)
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
        head = " ".join(self.words(int(whole))) if len(whole) <= 15 else spell_digits(whole)
        if not frac:
            return head
        stripped = frac.lstrip("0")
        zeros = ["không"] * (len(frac) - len(stripped))
        if not stripped:
            tail = zeros
        elif len(stripped) <= 2:
            tail = [*zeros, *self.words(int(stripped))]
        else:
            tail = [*zeros, spell_digits(stripped)]
        return f"{head} phẩy {' '.join(tail)}"


NORTH = Numbers(southern=False)
SOUTH = Numbers(southern=True)
_THOUSANDS_RE = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
#: Any number left after the specific passes, read as a quantity by :meth:`Numbers.number`.
NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")


def spell_digits(digits: str) -> str:
    """Digit by digit: "090" → "không chín không"; anything but ASCII digits is skipped."""
    return " ".join(DIGITS[ord(c) - 48] for c in digits if "0" <= c <= "9")


def read_number(n: int, *, southern: bool = False) -> str:
    """Vietnamese words for a non-negative integer (e.g. 21 → "hai mươi mốt")."""
    if n < 0:
        return "âm " + read_number(-n, southern=southern)
    return " ".join((SOUTH if southern else NORTH).words(n))


def ordinal_word(n: int, nums: Numbers) -> str:
    """What follows "thứ": "nhất", "tư" for 4, otherwise the number."""
    if n == 1:
        return "nhất"
    if n == 4:
        return "tư"
    return " ".join(nums.words(n))


def month_word(n: int, nums: Numbers) -> str:
    """What follows "tháng": "tư" for April, otherwise the number ("tháng một", never "giêng")."""
    return "tư" if n == 4 else " ".join(nums.words(n))

