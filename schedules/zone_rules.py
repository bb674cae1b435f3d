"""Quiet hours and time-of-day volumes as they apply to one speaker, i.e. to the set of zones it is in.

A speaker is heard in every zone it belongs to, so:

- it is quiet when **any** of its zones is in quiet hours;
- its volume is the **lowest** of the volume rules of its zones that cover the moment (the quietest zone
  governs); no rule → None (the agent's own default).

Windows are judged on the local wall-clock time at which a play starts: start inclusive, end exclusive
(quiet 21:00–05:30 blocks a play at 21:00, allows one at 05:30). ``end ≤ start`` crosses midnight and
``end == start`` is a whole day. A quiet-hours window's ``weekdays`` are the days it starts on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from schedules.localtime import to_local, to_utc_ms
from schedules.model import ZonePolicy

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _clock(moment: time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


@dataclass(frozen=True, slots=True)
class _Window:
    start: time
    start_s: int
    end_s: int
    days: frozenset[int] | None  # the weekdays the window starts on; None = every day

    def covers(self, weekday: int, second: int) -> bool:
        """True when a moment at ``second`` of a day of ``weekday`` falls in the window."""
        days = self.days
        if self.end_s > self.start_s:
            return self.start_s <= second < self.end_s and (days is None or weekday in days)
        # Crosses midnight: the evening part belongs to today's window, the morning part to yesterday's.
        if second >= self.start_s:
            return days is None or weekday in days
        return second < self.end_s and (days is None or (weekday - 1) % 7 in days)


@dataclass(frozen=True, slots=True)
class _Quiet:
    window: _Window
    reason: str


class ZoneRules:
    """The quiet hours and volume rules of one set of zones, ready to ask about moments."""

    __slots__ = ("_quiet", "_volumes")

    def __init__(self, zones: Sequence[str], policies: Mapping[str, ZonePolicy]) -> None:
        quiet: list[_Quiet] = []
        volumes: list[tuple[_Window, int]] = []
        for zone in sorted(set(zones)):
            policy = policies.get(zone)
            if policy is None:
                continue
            for hours in policy.quiet_hours:
                days = frozenset(hours.weekdays) if hours.weekdays is not None else None
                window = _Window(hours.start, _seconds(hours.start), _seconds(hours.end), days)
                on = "" if days is None else " (" + ", ".join(_DAY_NAMES[d] for d in sorted(days)) + ")"
                reason = f"quiet hours {_clock(hours.start)}–{_clock(hours.end)}{on} in zone {zone}"
                quiet.append(_Quiet(window, reason))
            for rule in policy.volumes:
                volumes.append((_Window(rule.start, _seconds(rule.start), _seconds(rule.end), None), rule.volume))
        self._quiet = tuple(quiet)
        self._volumes = tuple(volumes)

    @property
    def has_quiet_hours(self) -> bool:
        """True when any of the zones has quiet hours."""
        return bool(self._quiet)

    def quiet_reason(self, local: datetime) -> str | None:
        """Why a play starting at naive local ``local`` may not play (first quiet zone), or None."""
        weekday, second = local.weekday(), local.hour * 3600 + local.minute * 60 + local.second
        for quiet in self._quiet:
            if quiet.window.covers(weekday, second):
                return quiet.reason
        return None

    def volume(self, local: datetime) -> int | None:
        """The volume for a play starting at naive local ``local``: lowest covering rule, or None."""
        weekday, second = local.weekday(), local.hour * 3600 + local.minute * 60 + local.second
        found = [volume for window, volume in self._volumes if window.covers(weekday, second)]
        return min(found) if found else None

    def first_quiet_start(self, start_ms: int, end_ms: int, tz: ZoneInfo) -> int | None:
        """The earliest instant strictly inside ``(start_ms, end_ms)`` at which a quiet window begins."""
        if not self._quiet:
            return None
        first_day = to_local(start_ms, tz).date()
        days = (to_local(end_ms, tz).date() - first_day).days
        best: int | None = None
        for quiet in self._quiet:
            window = quiet.window
            for offset in range(days + 1):
                day = first_day + timedelta(days=offset)
                if window.days is not None and day.weekday() not in window.days:
                    continue
                begins = to_utc_ms(datetime.combine(day, window.start), tz)
                if start_ms < begins < end_ms and (best is None or begins < best):
                    best = begins
        return best
