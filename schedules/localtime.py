"""Naive local wall time ↔ UTC epoch milliseconds in a site's time zone.

Schedules are written in local wall time (iCalendar's floating DTSTART: "06:00 daily" stays 06:00 across
daylight-saving changes); plays are sent as UTC epoch ms. The two rules at a DST change:

- a local time that does not exist (the spring-forward gap, e.g. 02:30 in Berlin on the last Sunday of
  March) is moved forward by the gap (03:30): the broadcast still happens, just after the clock jumped;
- a local time that happens twice (the fall-back hour) means the first of the two (``fold=0``), so the
  broadcast is not played twice.

Both follow from PEP 495 read with ``fold=0``: in a gap Python applies the offset from before the
transition, which lands after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

_EPOCH: Final = datetime(1970, 1, 1)
_EPOCH_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def to_utc_ms(local: datetime, tz: ZoneInfo) -> int:
    """UTC epoch ms of naive local wall time ``local`` in ``tz`` (gap → forward, fold → first)."""
    if local.fold:
        local = local.replace(fold=0)
    # Asking the zone directly about the naive value is ~20× cheaper than attaching it with replace().
    offset = tz.utcoffset(local)
    assert offset is not None  # a ZoneInfo always has an offset
    return (local - _EPOCH) // _MS - offset // _MS


def to_local(ms: int, tz: ZoneInfo) -> datetime:
    """Naive local wall time in ``tz`` at UTC epoch ms ``ms``."""
    return (_EPOCH_UTC + timedelta(milliseconds=ms)).astimezone(tz).replace(tzinfo=None)


def offset_ms(ms: int, tz: ZoneInfo) -> int:
    """UTC offset of ``tz`` at UTC epoch ms ``ms``, in ms (local = UTC + offset)."""
    offset = (_EPOCH_UTC + timedelta(milliseconds=ms)).astimezone(tz).utcoffset()
    assert offset is not None
    return offset // _MS
