"""When a sign item shows: the schedule model's recurrence (``schedules.rrules`` and ``schedules.localtime``:
local wall-clock starts, RRULEs, DST handled the same way as speaker schedules).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from schedules.localtime import offset_ms, to_utc_ms
from schedules.rrules import as_daily, between, explicit_rule, parse_rule

_EPOCH: Final = datetime(1970, 1, 1)
_SLACK: Final = timedelta(hours=3)


def occurrences(start: datetime, rrule: str | None, until: datetime | None, duration_ms: int,
                window_start_ms: int, window_end_ms: int, tz: ZoneInfo) -> list[int]:
    """UTC ms starts of occurrences overlapping the window (local wall-clock rules, as schedule items)."""
    earliest = window_start_ms - duration_ms + 1
    if rrule is None:
        candidates = [start]
    else:
        offsets = (offset_ms(earliest, tz), offset_ms(window_end_ms, tz))
        low = _EPOCH + timedelta(milliseconds=earliest + min(offsets)) - _SLACK
        high = _EPOCH + timedelta(milliseconds=window_end_ms + max(offsets)) + _SLACK
        if until is not None and until < high:
            high = until
        rule = as_daily(explicit_rule(parse_rule(rrule), start), start)
        candidates = between(rule, start, low, high)
    found = {to_utc_ms(local, tz) for local in candidates if until is None or local <= until}
    return sorted(ms for ms in found if earliest <= ms < window_end_ms)


def local_naive(value: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in the site's zone (aware values converted)."""
    if value.tzinfo is not None:
        value = value.astimezone(tz).replace(tzinfo=None)
    return value.replace(microsecond=0)
