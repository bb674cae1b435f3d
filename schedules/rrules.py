"""RFC 5545 RRULE text: parsing, the limits we impose, and expansion from a start near a window.

dateutil does the calendar arithmetic; this module decides what we accept and how to call it cheaply.

What we accept is one RRULE value (optionally prefixed ``RRULE:``) with the RFC's rule parts only; the
start is always the schedule item's own naive local ``start`` field, so ``DTSTART`` inside the text is
refused, as are ``FREQ=SECONDLY``, rules firing more than 288 times a day (one every five minutes), UNTIL
in UTC (``…Z``: the start is a local wall time, so UTC would be ambiguous) and COUNT together with UNTIL
(RFC 5545 forbids it). A date-only UNTIL (``UNTIL=20250131``) means the whole of that day.

Why the expansion is more than ``rrule.between``: dateutil always iterates from DTSTART, so a daily rule
begun three years ago would walk a thousand days on every call. Instead the rule is first made
*explicit* — every default dateutil would take from DTSTART (time of day, weekday, day of month, month,
week start) is written into the rule — and then DTSTART is moved forward by whole multiples of
INTERVAL periods to just before the window; the lattice of periods is unchanged, so the occurrences are
the same (a yearly or monthly rule that judges each day on its own may even start at the window's
day). A rule with COUNT counts from its real start, so its COUNT-th occurrence is found once (cached)
and the rule is then treated as one ending there. HOURLY/MINUTELY rules whose times repeat every day
are rewritten as the equivalent DAILY rule, which dateutil expands about ten times faster.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final

from dateutil.rrule import rrule, rrulestr

from schedules.errors import ScheduleError

FIELD: Final = "rrule"
#: Densest rule accepted: one occurrence every five minutes, all day.
MAX_PER_DAY: Final = 288
MAX_COUNT: Final = 10_000
#: Interval caps per frequency. They keep the emptiness probe (100 years) meaningful: it then always
#: spans several periods of the rule.
_MAX_INTERVAL: Final = {"YEARLY": 10, "MONTHLY": 120, "WEEKLY": 1000, "DAILY": 1000, "HOURLY": 1000, "MINUTELY": 1000}
_FREQS: Final = tuple(_MAX_INTERVAL)
_WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: Numeric list parts and their allowed ranges; signed ones also allow the negative range, never 0.
_INT_LISTS: Final = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_KNOWN: Final = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST", *_INT_LISTS}
_BYDAY_RE: Final = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL_RE: Final = re.compile(r"^\d{8}(T\d{6})?$")
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # leap February: 29 can happen
#: Where the emptiness probe starts. dateutil stops by itself at year 9999, so a rule that never fires
#: costs at most a century of iteration there instead of running for ever from its real start.
_PROBE_FROM: Final = datetime(9899, 1, 1)


def _fail(message: str) -> ScheduleError:
    return ScheduleError(FIELD, message)


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated RRULE as ordered ``(NAME, VALUE)`` parts, ``FREQ`` first, names upper-case."""

    parts: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The value of one part, or None when the rule does not have it."""
        for key, value in self.parts:
            if key == name:
                return value
        return None

    @property
    def freq(self) -> str:
        """``YEARLY`` … ``MINUTELY``."""
        return self.parts[0][1]

    @property
    def interval(self) -> int:
        """INTERVAL, 1 when absent."""
        value = self.get("INTERVAL")
        return int(value) if value is not None else 1

    @property
    def count(self) -> int | None:
        """COUNT, None when absent."""
        value = self.get("COUNT")
        return int(value) if value is not None else None

    @property
    def wkst(self) -> int:
        """Week start as 0=Monday …; RFC 5545's default is Monday."""
        value = self.get("WKST")
        return _WEEKDAYS.index(value) if value is not None else 0

    @property
    def text(self) -> str:
        """The rule as RRULE value text, without the ``RRULE:`` prefix."""
        return ";".join(f"{key}={value}" for key, value in self.parts)

    def with_parts(self, **changes: str | None) -> Rule:
        """A copy with parts replaced, added (at the end) or, when given None, removed."""
        parts = [(k, changes.get(k, v)) for k, v in self.parts]
        present = {k for k, _ in self.parts}
        parts += [(k, v) for k, v in changes.items() if k not in present]
        return Rule(tuple((k, v) for k, v in parts if v is not None))


def validate_rrule(text: str) -> str:
    """Check one RRULE value and return its normalised text (upper-case, ``FREQ`` first, no prefix).

    Raises ``ScheduleError(field="rrule")`` with a message saying what is wrong, quoting dateutil's
    complaint when dateutil refuses the rule.
    """
    return parse_rule(text).text


def parse_rule(text: str) -> Rule:
    """Parse and check an RRULE value (see the module docstring for what is accepted)."""
    if not isinstance(text, str) or not text.strip():
        raise _fail("rrule is empty; leave it out for a one-off item")
    if len(text) > 1000:
        raise _fail("rrule is longer than 1000 characters")
    body = text.strip()
    if "DTSTART" in body.upper():
        raise _fail("rrule must not contain DTSTART: the item's start field is the start of the recurrence")
    if any(ch.isspace() for ch in body):
        raise _fail("rrule must be a single RRULE value without spaces or line breaks")
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if ":" in body:
        raise _fail("rrule must be one RRULE value (e.g. FREQ=DAILY;BYHOUR=6), not other iCalendar properties")

    parts: dict[str, str] = {}
    for piece in body.upper().split(";"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        if not sep or not name or not value:
            raise _fail(f"rrule part {piece!r} is not NAME=VALUE")
        if name not in _KNOWN:
            raise _fail(f"rrule part {name} is not supported")
        if name in parts:
            raise _fail(f"rrule part {name} is given twice")
        parts[name] = value

    freq = parts.pop("FREQ", None)
    if freq is None:
        raise _fail("rrule has no FREQ")
    if freq == "SECONDLY":
        raise _fail("FREQ=SECONDLY is not allowed: the densest schedule is one occurrence every 5 minutes")
    if freq not in _FREQS:
        raise _fail(f"FREQ={freq} is not one of {', '.join(_FREQS)}")
    if "UNTIL" in parts:
        parts["UNTIL"] = _normalize_until(parts["UNTIL"])
    rule = Rule((("FREQ", freq), *parts.items()))
    _check_values(rule)
    # dateutil has the last word on syntax; its message is quoted because it names the bad part. The
    # reference start sits on the first BYHOUR/BYMINUTE so that an HOURLY/MINUTELY rule with an INTERVAL
    # is not refused for a phase that only the item's real start decides (check_fires judges that).
    hour = int((rule.get("BYHOUR") or "0").split(",")[0])
    minute = int((rule.get("BYMINUTE") or "0").split(",")[0])
    try:
        compile_rule(rule.text, datetime(2000, 1, 3, hour, minute))
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise _fail(f"rrule is not a valid RFC 5545 rule: {exc}") from exc
    per_day = max_per_day(rule)
    if per_day > MAX_PER_DAY:
        raise _fail(f"rrule fires up to {per_day} times a day; at most {MAX_PER_DAY} (one every 5 minutes) are allowed")
    return rule


def _normalize_until(value: str) -> str:
    if value.endswith("Z"):
        raise _fail("rrule UNTIL must be a local time without Z (the start is local wall time); or use the until field")
    if not _UNTIL_RE.match(value):
        raise _fail(f"rrule UNTIL={value} is not a date (YYYYMMDD) or local date-time (YYYYMMDDTHHMMSS)")
    # A date alone means "up to and including that day", which is what an officer typing it means.
    return value if "T" in value else value + "T235959"


def _check_values(rule: Rule) -> None:
    for name, value in rule.parts:
        if name == "INTERVAL":
            limit = _MAX_INTERVAL[rule.freq]
            if not value.isdigit() or not 1 <= int(value) <= limit:
                raise _fail(f"rrule INTERVAL must be a whole number from 1 to {limit} for FREQ={rule.freq}")
        elif name == "COUNT":
            if not value.isdigit() or not 1 <= int(value) <= MAX_COUNT:
                raise _fail(f"rrule COUNT must be a whole number from 1 to {MAX_COUNT}")
        elif name == "WKST":
            if value not in _WEEKDAYS:
                raise _fail(f"rrule WKST={value} is not a weekday (MO … SU)")
        elif name == "BYDAY":
            _check_byday(rule.freq, value)
        elif name in _INT_LISTS:
            low, high, signed = _INT_LISTS[name]
            for item in value.split(","):
                if not re.fullmatch(r"[+-]?\d{1,3}", item):
                    raise _fail(f"rrule {name} value {item!r} is not a whole number")
                number = int(item)
                if not (low <= number <= high or (signed and -high <= number <= -low)):
                    bounds = f"{low}..{high}" + (f" or -{high}..-{low}" if signed else "")
                    raise _fail(f"rrule {name} value {number} is outside {bounds}")
    if rule.get("COUNT") is not None and rule.get("UNTIL") is not None:
        raise _fail("rrule must not have both COUNT and UNTIL (RFC 5545)")
    if rule.get("BYMONTHDAY") is not None and not _monthday_possible(rule):
        raise _fail("rrule BYMONTHDAY never falls in the months of BYMONTH, so the rule never fires")


def _check_byday(freq: str, value: str) -> None:
    for item in value.split(","):
        match = _BYDAY_RE.match(item)
        if match is None:
            raise _fail(f"rrule BYDAY value {item!r} is not a weekday (MO … SU, optionally numbered like 1MO)")
        if match.group(1) is not None:
            number = int(match.group(1))
            limit = 5 if freq == "MONTHLY" else 53
            if freq not in ("MONTHLY", "YEARLY"):
                raise _fail(f"rrule BYDAY {item}: a numbered weekday needs FREQ=MONTHLY or YEARLY")
            if number == 0 or abs(number) > limit:
                raise _fail(f"rrule BYDAY {item}: the number must be 1..{limit} or -{limit}..-1")


def _monthday_possible(rule: Rule) -> bool:
    # Cheap static check for the common way of writing a rule that never fires (30 February); the
    # probe in check_fires catches the rest.
    months = [int(m) for m in (rule.get("BYMONTH") or "1,2,3,4,5,6,7,8,9,10,11,12").split(",")]
    days = [abs(int(d)) for d in (rule.get("BYMONTHDAY") or "").split(",")]
    return any(day <= _DAYS_IN_MONTH[month - 1] for month in months for day in days)


def max_per_day(rule: Rule) -> int:
    """An upper bound on the occurrences the rule can have in one calendar day."""

    def size(name: str) -> int:
        value = rule.get(name)
        return len(set(value.split(","))) if value is not None else 0

    seconds = size("BYSECOND") or 1
    if rule.freq == "MINUTELY":
        periods = min((size("BYHOUR") or 24) * (size("BYMINUTE") or 60), math.ceil(1440 / rule.interval))
        per_period = seconds
    elif rule.freq == "HOURLY":
        periods = min(size("BYHOUR") or 24, math.ceil(24 / rule.interval))
        per_period = (size("BYMINUTE") or 1) * seconds
    else:
        periods = 1  # a day is at most one period of a DAILY or coarser rule
        per_period = (size("BYHOUR") or 1) * (size("BYMINUTE") or 1) * seconds
    if rule.get("BYSETPOS") is not None:
        per_period = min(per_period, size("BYSETPOS"))
    return periods * per_period


def compile_rule(text: str, dtstart: datetime) -> rrule:
    """A dateutil rrule for RRULE value ``text`` starting at naive ``dtstart``."""
    result = rrulestr(text, dtstart=dtstart)
    if not isinstance(result, rrule):  # only multi-line input gives a set, and we never pass one
        raise TypeError("expected a single rule")
    return result


# ------------------------------------------------------------------------------------ explicit rules


def explicit_rule(rule: Rule, start: datetime) -> Rule:
    """``rule`` with every default dateutil would derive from ``start`` written out, plus WKST.

    After this, moving DTSTART by whole periods cannot change which instants the rule produces.
    """
    freq = rule.freq
    changes: dict[str, str | None] = {"WKST": _WEEKDAYS[rule.wkst]}
    # dateutil's rule (mirroring RFC 5545): with no day-selecting part, the day comes from DTSTART.
    if all(rule.get(p) is None for p in ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY")):
        if freq == "YEARLY":
            if rule.get("BYMONTH") is None:
                changes["BYMONTH"] = str(start.month)
            changes["BYMONTHDAY"] = str(start.day)
        elif freq == "MONTHLY":
            changes["BYMONTHDAY"] = str(start.day)
        elif freq == "WEEKLY":
            changes["BYDAY"] = _WEEKDAYS[start.weekday()]
    coarse = freq in ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")
    if coarse and rule.get("BYHOUR") is None:
        changes["BYHOUR"] = str(start.hour)
    if (coarse or freq == "HOURLY") and rule.get("BYMINUTE") is None:
        changes["BYMINUTE"] = str(start.minute)
    if rule.get("BYSECOND") is None:
        changes["BYSECOND"] = str(start.second)
    return rule.with_parts(**changes)


def as_daily(rule: Rule, start: datetime) -> Rule:
    """An equivalent DAILY form of an explicit HOURLY/MINUTELY rule whose lattice repeats every day.

    dateutil walks an HOURLY rule hour by hour but a DAILY one day by day with a list of times, about
    ten times faster for "every hour from 06:00 to 20:00". Only exact rewrites are made: INTERVAL must
    divide the day (HOURLY) or the hour (MINUTELY) so every day has the same times, and BYSETPOS (which
    counts within a period) must be absent. Anything else is returned unchanged.
    """
    interval = rule.interval
    if rule.get("BYSETPOS") is not None or rule.freq not in ("HOURLY", "MINUTELY"):
        return rule
    hours = [int(h) for h in (rule.get("BYHOUR") or ",".join(map(str, range(24)))).split(",")]
    minute_part = rule.get("BYMINUTE")
    if rule.freq == "HOURLY":
        if 24 % interval:
            return rule
        hours = [h for h in hours if (h - start.hour) % interval == 0]
        minutes = minute_part or str(start.minute)
    else:
        if 60 % interval:
            return rule
        every = [int(m) for m in (minute_part or ",".join(map(str, range(60)))).split(",")]
        minutes = ",".join(str(m) for m in sorted(set(every)) if (m - start.minute) % interval == 0)
    if not hours or not minutes:
        return rule  # never fires; leave dateutil to say so
    daily = rule.with_parts(FREQ="DAILY", INTERVAL=None, BYHOUR=",".join(map(str, sorted(set(hours)))))
    return daily.with_parts(BYMINUTE=minutes)


def _anchor(rule: Rule, start: datetime) -> datetime:
    """The beginning of the period of ``rule`` that contains ``start``."""
    freq = rule.freq
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if freq == "YEARLY":
        return midnight.replace(month=1, day=1)
    if freq == "MONTHLY":
        return midnight.replace(day=1)
    if freq == "WEEKLY":
        return midnight - timedelta(days=(start.weekday() - rule.wkst) % 7)
    if freq == "DAILY":
        return midnight
    if freq == "HOURLY":
        return start.replace(minute=0, second=0, microsecond=0)
    return start.replace(second=0, microsecond=0)


def _periods_between(rule: Rule, anchor: datetime, moment: datetime) -> int:
    """Whole periods from ``anchor`` (a period start) to the period containing ``moment`` (may be < 0)."""
    freq = rule.freq
    if freq == "YEARLY":
        return moment.year - anchor.year
    if freq == "MONTHLY":
        return (moment.year - anchor.year) * 12 + moment.month - anchor.month
    if freq == "WEEKLY":
        return (moment.date() - anchor.date()).days // 7
    if freq == "DAILY":
        return (moment.date() - anchor.date()).days
    if freq == "HOURLY":
        return (moment - anchor) // timedelta(hours=1)
    return (moment - anchor) // timedelta(minutes=1)


def _add_periods(rule: Rule, anchor: datetime, periods: int) -> datetime:
    freq = rule.freq
    if freq == "YEARLY":
        return anchor.replace(year=anchor.year + periods)
    if freq == "MONTHLY":
        year, month0 = divmod(anchor.month - 1 + periods, 12)
        return anchor.replace(year=anchor.year + year, month=month0 + 1)
    unit = {"WEEKLY": timedelta(days=7), "DAILY": timedelta(days=1), "HOURLY": timedelta(hours=1)}
    return anchor + unit.get(freq, timedelta(minutes=1)) * periods


def _day_local(rule: Rule) -> bool:
    """True when whether a day fires does not depend on its place in the period.

    BYSETPOS, BYWEEKNO, BYYEARDAY and numbered weekdays (``1MO``, ``-1FR``) count within a year or month;
    the other parts judge each day on its own.
    """
    if any(rule.get(name) is not None for name in ("BYSETPOS", "BYWEEKNO", "BYYEARDAY")):
        return False
    return not any(ch.isdigit() for ch in rule.get("BYDAY") or "")


def dtstart_near(rule: Rule, start: datetime, not_after: datetime) -> datetime:
    """A DTSTART for iterating explicit ``rule`` from ``not_after`` with the same occurrences as from ``start``.

    Normally the start of the latest period on the rule's lattice at or before ``not_after`` (``start``
    itself if there is none later). A YEARLY or MONTHLY rule that judges each day on its own may start
    at the midnight before ``not_after`` inside an on-lattice period, or at the next on-lattice period,
    so that a dense yearly rule does not walk most of a year to reach the window.
    ``rule`` must be explicit (see ``explicit_rule``) for the moved start to give the same occurrences.
    """
    anchor = _anchor(rule, start)
    periods = _periods_between(rule, anchor, not_after)
    if periods < 0:
        return start
    steps, off_lattice = divmod(periods, rule.interval)
    if rule.freq in ("YEARLY", "MONTHLY") and _day_local(rule):
        if off_lattice:
            return _add_periods(rule, anchor, (steps + 1) * rule.interval)
        return max(start, not_after.replace(hour=0, minute=0, second=0, microsecond=0))
    if steps <= 0:
        return start
    return _add_periods(rule, anchor, steps * rule.interval)


def between(rule: Rule, start: datetime, low: datetime, high: datetime) -> list[datetime]:
    """Naive local occurrences of explicit ``rule`` begun at ``start`` with ``low ≤ t ≤ high``, ascending."""
    if rule.count is not None:
        # The first COUNT occurrences are exactly those up to the COUNT-th: cap the range there and the
        # rule can be moved like any other.
        last = _last_counted(rule.text, start)
        if last is None:
            return []
        high = min(high, last)
        rule = rule.with_parts(COUNT=None)
    if high < low:
        return []
    compiled = compile_rule(rule.text, dtstart_near(rule, start, low))
    return compiled.between(low, high, inc=True)


@lru_cache(maxsize=4096)
def _last_counted(text: str, start: datetime) -> datetime | None:
    # At most MAX_COUNT steps, once per (rule, start): items are planned again and again.
    tail = deque(compile_rule(text, start), maxlen=1)
    return tail[0] if tail else None


def check_fires(rule: Rule, start: datetime) -> None:
    """Refuse a rule that, begun at ``start``, never fires (or not before its own UNTIL/COUNT ends)."""
    full = explicit_rule(rule, start)
    periodic = full.with_parts(COUNT=None, UNTIL=None)
    anchor = _anchor(periodic, start)
    steps = -(-_periods_between(periodic, anchor, _PROBE_FROM) // periodic.interval)
    probe_start = _add_periods(periodic, anchor, steps * periodic.interval)
    try:
        compile_rule(full.text, start)
        fires = compile_rule(periodic.text, probe_start).after(probe_start, inc=True) is not None
    except (ValueError, OverflowError) as exc:
        # e.g. FREQ=HOURLY;INTERVAL=2;BYHOUR=7 begun at an even hour can never reach 07:00.
        raise _fail(f"rrule never fires from this start: {exc}") from exc
    if not fires:
        raise _fail("rrule never fires: no date matches all of its parts")
    # The pattern repeats, so the first occurrence is at most a few periods away: this is bounded.
    if compile_rule(full.text, start).after(start, inc=True) is None:
        raise _fail("rrule has no occurrence between start and the rule's own UNTIL")
