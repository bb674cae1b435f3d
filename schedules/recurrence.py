"""When a schedule item plays: its occurrences in a window of UTC time.

An item's ``start``/``until``/``exdates`` and rule are local wall time; occurrences come out as UTC epoch
ms, converted with ``schedules.localtime`` (DST gap → moved forward, repeated hour → the first).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from schedules.localtime import offset_ms, to_utc_ms
from schedules.model import ScheduleItem
from schedules.rrules import Rule, as_daily, between, explicit_rule, parse_rule, validate_rrule

__all__ = ["occurrences", "validate_rrule"]

_EPOCH: Final = datetime(1970, 1, 1)
#: Extra local time searched on both sides of a window, beyond the offsets at its ends: covers offset
#: changes inside the window (DST, double summer time) so no occurrence near an edge is missed.
_SLACK: Final = timedelta(hours=3)


@lru_cache(maxsize=8192)
def _rule_for(text: str, start: datetime) -> Rule:
    # Items are immutable and planned again and again; parse and make explicit once per (rule, start).
    return as_daily(explicit_rule(parse_rule(text), start), start)


def occurrences(item: ScheduleItem, window_start_ms: int, window_end_ms: int, tz: ZoneInfo) -> list[int]:
    """UTC epoch ms starts of ``item``'s occurrences overlapping ``[window_start_ms, window_end_ms)``.

    An occurrence ``[start, start + item.duration_ms)`` overlaps when it starts before the window ends and
    ends after the window starts, so one still playing at the window start is included and one ending
    exactly there is not. Ascending and unique (two local times in a DST gap can meet at one instant).
    A one-off item (``rrule`` None) has its single occurrence at ``start``.
    """
    if window_end_ms <= window_start_ms:
        return []
    duration = item.duration_ms
    earliest_ms = window_start_ms - duration + 1  # the earliest start that still overlaps
    exdates = set(item.exdates)
    if item.rrule is None:
        candidates = [item.start]
    else:
        # Local search range: the window in local time at both ends' offsets, plus slack.
        offsets = (offset_ms(earliest_ms, tz), offset_ms(window_end_ms, tz))
        low = _EPOCH + timedelta(milliseconds=earliest_ms + min(offsets)) - _SLACK
        high = _EPOCH + timedelta(milliseconds=window_end_ms + max(offsets)) + _SLACK
        if item.until is not None and item.until < high:
            high = item.until
        candidates = between(_rule_for(item.rrule, item.start), item.start, low, high)
    found: set[int] = set()
    for local in candidates:
        if local in exdates or (item.until is not None and local > item.until):
            continue
        start_ms = to_utc_ms(local, tz)
        if earliest_ms <= start_ms < window_end_ms:
            found.add(start_ms)
    return sorted(found)
