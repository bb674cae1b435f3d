"""Occurrences of schedule items: rules, ranges, exceptions, window edges, DST; checked against dateutil."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schedules.localtime import to_local, to_utc_ms
from schedules.model import ScheduleItem
from schedules.recurrence import occurrences
from schedules.rrules import as_daily, dtstart_near, explicit_rule, parse_rule

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
BULLETIN = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6,17;BYMINUTE=0;BYSECOND=0"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """UTC epoch ms of a UTC wall time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def item(start: datetime, rrule: str | None = None, duration_ms: int = 5 * MINUTE, **extra: Any) -> ScheduleItem:
    """A one-segment item targeting every agent."""
    return ScheduleItem.model_validate(
        {
            "id": "it",
            "segments": [{"kind": "media", "sha256": "a" * 64, "size": 1000, "duration_ms": duration_ms}],
            "targets": {"all": True},
            "start": start,
            "rrule": rrule,
            **extra,
        }
    )


def local_times(starts: list[int], tz: ZoneInfo) -> list[datetime]:
    return [to_local(ms, tz) for ms in starts]


# ------------------------------------------------------------------------------------------ basics


def test_one_off_has_one_occurrence_at_its_start() -> None:
    one = item(datetime(2025, 3, 10, 8, 30))
    start = utc(2025, 3, 10, 1, 30)  # 08:30 at +07:00
    assert occurrences(one, utc(2025, 3, 10), utc(2025, 3, 11), HCM) == [start]
    assert occurrences(one, utc(2025, 3, 11), utc(2025, 3, 12), HCM) == []
    assert occurrences(one, start, start, HCM) == []  # empty window


def test_weekday_bulletin_twice_a_day_over_a_week_in_ho_chi_minh_city() -> None:
    bulletin = item(datetime(2024, 1, 1, 6, 0), BULLETIN, duration_ms=10 * MINUTE)
    # Monday 2025-06-02 00:00 local to the next Monday 00:00 local.
    week_start = to_utc_ms(datetime(2025, 6, 2), HCM)
    found = occurrences(bulletin, week_start, week_start + 7 * DAY, HCM)
    expected = []
    for day in range(2, 7):  # Monday 2 … Friday 6 June
        expected += [utc(2025, 6, day - 1, 23, 0), utc(2025, 6, day, 10, 0)]  # 06:00 and 17:00 at +07:00
    assert found == expected
    assert len(found) == 10


def test_every_monday_within_a_date_range() -> None:
    mondays = item(datetime(2025, 1, 6, 7, 0), "FREQ=WEEKLY;BYDAY=MO", until=datetime(2025, 2, 3, 7, 0))
    found = local_times(occurrences(mondays, utc(2024, 12, 1), utc(2025, 6, 1), HCM), HCM)
    assert found == [
        datetime(2025, 1, 6, 7),
        datetime(2025, 1, 13, 7),
        datetime(2025, 1, 20, 7),
        datetime(2025, 1, 27, 7),
        datetime(2025, 2, 3, 7),
    ]  # until is inclusive


def test_rule_until_and_field_until_both_apply() -> None:
    rule = item(datetime(2025, 1, 1, 6), "FREQ=DAILY;UNTIL=20250110T060000", until=datetime(2025, 1, 5, 6))
    assert len(occurrences(rule, utc(2024, 12, 1), utc(2025, 2, 1), HCM)) == 5
    date_only = item(datetime(2025, 1, 1, 6), "FREQ=DAILY;UNTIL=20250110")  # the whole of 10 January
    assert local_times(occurrences(date_only, utc(2024, 12, 1), utc(2025, 2, 1), HCM), HCM)[-1] == datetime(
        2025, 1, 10, 6
    )


def test_exdates_remove_one_occurrence() -> None:
    daily = item(datetime(2025, 4, 28, 6, 0), "FREQ=DAILY", exdates=[datetime(2025, 4, 30, 6, 0)])
    found = local_times(
        occurrences(daily, to_utc_ms(datetime(2025, 4, 28), HCM), to_utc_ms(datetime(2025, 5, 3), HCM), HCM), HCM
    )
    assert found == [
        datetime(2025, 4, 28, 6),
        datetime(2025, 4, 29, 6),
        datetime(2025, 5, 1, 6),
        datetime(2025, 5, 2, 6),
    ]


def test_exdate_removes_a_one_off() -> None:
    gone = item(datetime(2025, 4, 28, 6, 0), exdates=[datetime(2025, 4, 28, 6, 0)])
    assert occurrences(gone, utc(2025, 4, 1), utc(2025, 5, 1), HCM) == []


def test_count_limits_the_occurrences_even_far_from_the_start() -> None:
    counted = item(datetime(2025, 1, 1, 6, 0), "FREQ=DAILY;COUNT=3")
    found = local_times(occurrences(counted, utc(2024, 1, 1), utc(2026, 1, 1), HCM), HCM)
    assert found == [datetime(2025, 1, 1, 6), datetime(2025, 1, 2, 6), datetime(2025, 1, 3, 6)]
    assert occurrences(counted, utc(2025, 6, 1), utc(2025, 6, 2), HCM) == []


def test_interval_keeps_its_phase_years_after_the_start() -> None:
    # Every other day from 1 Jan 2020: 2025-06-01 is day 1978 after it (even), 2025-06-02 is odd.
    every_other = item(datetime(2020, 1, 1, 6, 0), "FREQ=DAILY;INTERVAL=2")
    found = local_times(
        occurrences(every_other, to_utc_ms(datetime(2025, 6, 1), HCM), to_utc_ms(datetime(2025, 6, 5), HCM), HCM), HCM
    )
    assert found == [datetime(2025, 6, 1, 6), datetime(2025, 6, 3, 6)]
    fortnightly = item(datetime(2020, 1, 6, 9, 0), "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH")  # a Monday
    found = local_times(
        occurrences(fortnightly, to_utc_ms(datetime(2025, 6, 1), HCM), to_utc_ms(datetime(2025, 6, 29), HCM), HCM), HCM
    )
    # 2025-06-02 is 282 weeks after 2020-01-06: an even week, so it and the week of 16 June play.
    assert found == [
        datetime(2025, 6, 2, 9),
        datetime(2025, 6, 5, 9),
        datetime(2025, 6, 16, 9),
        datetime(2025, 6, 19, 9),
    ]


def test_monthly_and_yearly_defaults_come_from_start() -> None:
    monthly = item(datetime(2024, 1, 31, 8, 0), "FREQ=MONTHLY")  # the 31st only: months without it skip
    found = local_times(occurrences(monthly, utc(2025, 1, 1), utc(2025, 6, 1), HCM), HCM)
    assert found == [datetime(2025, 1, 31, 8), datetime(2025, 3, 31, 8), datetime(2025, 5, 31, 8)]
    yearly = item(datetime(2020, 9, 2, 7, 0), "FREQ=YEARLY")  # Quốc khánh
    assert local_times(occurrences(yearly, utc(2025, 1, 1), utc(2026, 1, 1), HCM), HCM) == [datetime(2025, 9, 2, 7)]


def test_rrule_prefix_is_accepted_and_normalized() -> None:
    assert item(datetime(2025, 1, 1, 6), "RRULE:freq=daily;byhour=6,17").rrule == "FREQ=DAILY;BYHOUR=6,17"


# -------------------------------------------------------------------------------------- window edges


def test_occurrence_started_before_the_window_but_still_playing_is_included() -> None:
    relay = item(datetime(2025, 5, 1, 5, 0), "FREQ=DAILY", duration_ms=2 * HOUR)  # 05:00–07:00
    six = to_utc_ms(datetime(2025, 5, 10, 6, 0), HCM)
    assert occurrences(relay, six, six + HOUR, HCM) == [to_utc_ms(datetime(2025, 5, 10, 5, 0), HCM)]


def test_occurrence_ending_exactly_at_window_start_is_not_included() -> None:
    relay = item(datetime(2025, 5, 1, 5, 0), "FREQ=DAILY", duration_ms=HOUR)  # 05:00–06:00
    six = to_utc_ms(datetime(2025, 5, 10, 6, 0), HCM)
    assert occurrences(relay, six, six + HOUR, HCM) == []
    assert occurrences(relay, six - 1, six + HOUR, HCM) == [six - HOUR]  # one ms earlier it overlaps


def test_occurrence_starting_exactly_at_window_end_is_not_included() -> None:
    daily = item(datetime(2025, 5, 1, 6, 0), "FREQ=DAILY")
    six = to_utc_ms(datetime(2025, 5, 10, 6, 0), HCM)
    assert occurrences(daily, six - HOUR, six, HCM) == []
    assert occurrences(daily, six - HOUR, six + 1, HCM) == [six]


# ---------------------------------------------------------------------------------------------- DST


def test_daily_time_stays_on_the_local_clock_across_dst() -> None:
    daily = item(datetime(2025, 1, 1, 6, 0), "FREQ=DAILY")
    found = occurrences(daily, utc(2025, 3, 28), utc(2025, 4, 2), BERLIN)
    assert local_times(found, BERLIN) == [datetime(2025, 3, d, 6) for d in range(28, 32)] + [datetime(2025, 4, 1, 6)]
    assert found[1] == utc(2025, 3, 29, 5, 0)  # CET, +01:00
    assert found[2] == utc(2025, 3, 30, 4, 0)  # CEST, +02:00


def test_time_in_the_spring_forward_gap_moves_forward_by_the_gap() -> None:
    # Berlin, 30 March 2025: 02:00 → 03:00. 02:30 does not exist and plays at 03:30 CEST (01:30 UTC).
    nightly = item(datetime(2025, 3, 1, 2, 30), "FREQ=DAILY")
    found = occurrences(nightly, utc(2025, 3, 29), utc(2025, 3, 31, 12), BERLIN)
    assert found == [utc(2025, 3, 29, 1, 30), utc(2025, 3, 30, 1, 30), utc(2025, 3, 31, 0, 30)]
    assert to_local(found[1], BERLIN) == datetime(2025, 3, 30, 3, 30)


def test_gap_times_meeting_one_instant_give_one_occurrence() -> None:
    # 02:00 (in the gap → 03:00 CEST) and 03:00 are the same instant that night: one play, not two.
    both = item(datetime(2025, 3, 1, 2, 0), "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=0")
    found = occurrences(both, utc(2025, 3, 29, 22), utc(2025, 3, 30, 6), BERLIN)
    assert found == [utc(2025, 3, 30, 1, 0)]


def test_time_in_the_repeated_hour_plays_once_at_the_first() -> None:
    # Berlin, 26 October 2025: 03:00 CEST → 02:00 CET. 02:30 happens twice; the first is 00:30 UTC.
    nightly = item(datetime(2025, 10, 1, 2, 30), "FREQ=DAILY")
    found = occurrences(nightly, utc(2025, 10, 25, 12), utc(2025, 10, 27, 12), BERLIN)
    assert found == [utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]


def test_new_york_hourly_rule_across_fall_back() -> None:
    # 2 November 2025: 02:00 EDT → 01:00 EST. The local rule fires at 00:00, 01:00 (first), 02:00, 03:00.
    hourly = item(datetime(2025, 11, 1, 0, 0), "FREQ=HOURLY;BYHOUR=0,1,2,3;BYMINUTE=0")
    found = occurrences(hourly, utc(2025, 11, 2, 3), utc(2025, 11, 2, 10), NEW_YORK)
    assert found == [utc(2025, 11, 2, 4), utc(2025, 11, 2, 5), utc(2025, 11, 2, 7), utc(2025, 11, 2, 8)]


# ------------------------------------------------------------------------------ errors of the rule


@pytest.mark.parametrize(
    ("rrule", "words"),
    [
        ("FREQ=DAILY;BYHOUR=6;FOO=1", "FOO is not supported"),
        ("FREQ=DAILY;BYHOUR", "not NAME=VALUE"),
        ("BYHOUR=6", "no FREQ"),
        ("FREQ=FORTNIGHTLY", "FREQ=FORTNIGHTLY is not one of"),
        ("DTSTART:20250101T060000\nRRULE:FREQ=DAILY", "must not contain DTSTART"),
        ("FREQ=DAILY;DTSTART=20250101T060000", "must not contain DTSTART"),
        ("FREQ=SECONDLY", "SECONDLY is not allowed"),
        ("FREQ=MINUTELY;INTERVAL=4", "fires up to 360 times a day"),
        ("FREQ=MINUTELY", "fires up to 1440 times a day"),
        ("FREQ=HOURLY;BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12", "fires up to 312 times a day"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20250201", "both COUNT and UNTIL"),
        ("FREQ=DAILY;UNTIL=20250201T000000Z", "without Z"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR value 24 is outside 0..23"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY value 'XX'"),
        ("FREQ=WEEKLY;BYDAY=1MO", "needs FREQ=MONTHLY or YEARLY"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never falls in the months"),
        ("FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=8", "never fires"),
        ("FREQ=DAILY;UNTIL=20240101", "no occurrence between start"),
        ("FREQ=DAILY FREQ=WEEKLY", "without spaces"),
        ("VEVENT:FREQ=DAILY", "not other iCalendar properties"),
    ],
)
def test_bad_rules_are_refused_at_the_rrule_field(rrule: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        item(datetime(2025, 1, 1, 6, 0), rrule)
    error = caught.value.errors()[0]
    assert error["loc"] == ("rrule",)
    assert words in error["msg"]


def test_rule_too_dense_at_exactly_the_limit_is_accepted() -> None:
    every_five = item(datetime(2025, 1, 1, 0, 0), "FREQ=MINUTELY;INTERVAL=5")
    assert len(occurrences(every_five, utc(2025, 2, 1), utc(2025, 2, 2), HCM)) == 288


# ------------------------------------------------------------------------------- efficient start


def test_iteration_starts_near_the_window_not_at_the_rule_start() -> None:
    start, low = datetime(2000, 1, 1, 6, 0), datetime(2025, 6, 18, 13, 0)
    daily = explicit_rule(parse_rule("FREQ=DAILY;INTERVAL=3"), start)
    near = dtstart_near(daily, start, low)
    assert timedelta(0) <= low - near < timedelta(days=3) and (near - datetime(2000, 1, 1)).days % 3 == 0
    dense_yearly = explicit_rule(parse_rule("FREQ=YEARLY;BYDAY=MO,TU;BYHOUR=8,9,10"), start)
    assert dtstart_near(dense_yearly, start, low) == datetime(2025, 6, 18)  # judged day by day
    counted_in_year = explicit_rule(parse_rule("FREQ=YEARLY;BYDAY=MO;BYSETPOS=-1"), start)
    assert dtstart_near(counted_in_year, start, low) == datetime(2025, 1, 1)  # the whole year counts
    every_other_year = explicit_rule(parse_rule("FREQ=YEARLY;INTERVAL=2;BYMONTH=6"), start)
    assert dtstart_near(every_other_year, start, low) == datetime(2026, 1, 1)  # 2025 is off the lattice
    assert dtstart_near(daily, start, datetime(1999, 1, 1)) == start


def test_hourly_rules_are_expanded_day_by_day_when_that_is_exact() -> None:
    start = datetime(2025, 1, 1, 6, 17)
    hourly = as_daily(explicit_rule(parse_rule("FREQ=HOURLY;INTERVAL=2;BYHOUR=6,7,8,9,10"), start), start)
    assert hourly.text == "FREQ=DAILY;BYHOUR=6,8,10;WKST=MO;BYMINUTE=17;BYSECOND=0"
    drifting = explicit_rule(parse_rule("FREQ=HOURLY;INTERVAL=5"), start)
    assert as_daily(drifting, start) == drifting
    quarter = as_daily(explicit_rule(parse_rule("FREQ=MINUTELY;INTERVAL=15;BYHOUR=6"), start), start)
    assert quarter.text == "FREQ=DAILY;BYHOUR=6;WKST=MO;BYSECOND=0;BYMINUTE=2,17,32,47"


# ------------------------------------------------------------------- properties against dateutil

ZONES = [HCM, BERLIN, NEW_YORK]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def recurring(draw: st.DrawFn) -> tuple[ScheduleItem, int, int, ZoneInfo]:
    """A random valid item, a window after its start and a zone."""
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]))
    parts = [f"FREQ={freq}"]
    # Intervals that divide the day or hour and some that do not (their lattice drifts across days).
    interval = draw(st.sampled_from([1, 2, 3, 5, 7]) if freq != "MINUTELY" else st.sampled_from([5, 6, 7, 15, 45]))
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    if draw(st.booleans()):
        parts.append("BYDAY=" + ",".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True))))
    if freq in ("YEARLY", "MONTHLY"):
        # Parts that count within the period (numbered weekdays, BYSETPOS) or judge days alone.
        extra = draw(
            st.sampled_from(
                [
                    "",
                    "BYMONTHDAY=1",
                    "BYMONTHDAY=15,28",
                    "BYMONTHDAY=-1",
                    "BYDAY=1MO",
                    "BYDAY=-1FR,2TU",
                    "BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
                    "BYMONTH=2,6",
                ]
            )
        )
        clash = extra.startswith("BYDAY") and any(part.startswith("BYDAY") for part in parts)
        if not clash:
            parts += [piece for piece in extra.split(";") if piece]
    if freq != "MINUTELY" and draw(st.booleans()):
        hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=6, unique=True))
        parts.append("BYHOUR=" + ",".join(map(str, hours)))
    if freq not in ("MINUTELY",) and draw(st.booleans()):
        parts.append(
            "BYMINUTE="
            + ",".join(map(str, draw(st.lists(st.sampled_from(range(0, 60, 5)), min_size=1, max_size=3, unique=True))))
        )
    if freq in ("HOURLY", "DAILY", "WEEKLY") and draw(st.integers(0, 5)) == 0:
        parts.append("BYSETPOS=1,-1")
    if freq in ("WEEKLY", "DAILY", "MONTHLY") and draw(st.integers(0, 3)) == 0:
        parts.append(f"COUNT={draw(st.integers(1, 400))}")
    start = draw(st.datetimes(datetime(2023, 1, 1), datetime(2025, 1, 1))).replace(second=0, microsecond=0)
    tz = draw(st.sampled_from(ZONES))
    reach = timedelta(days=3) if freq == "MINUTELY" else timedelta(days=800)
    window_start = start + draw(st.timedeltas(-timedelta(days=2), reach))
    lengths = [1, MINUTE, HOUR, 6 * HOUR, DAY, 3 * DAY, 10 * DAY]
    window_ms = draw(st.sampled_from(lengths + ([60 * DAY, 400 * DAY] if freq in ("YEARLY", "MONTHLY") else [])))
    duration = draw(st.sampled_from([MINUTE, 30 * MINUTE, 3 * HOUR]))
    until = start + draw(st.timedeltas(timedelta(0), timedelta(days=900))) if draw(st.integers(0, 3)) == 0 else None
    try:
        made = item(start, ";".join(parts), duration_ms=duration, until=until)
    except ValidationError:
        assume(False)
        raise
    begin = to_utc_ms(window_start, tz)
    return made, begin, begin + window_ms, tz


def reference(made: ScheduleItem, window_start: int, window_end: int, tz: ZoneInfo) -> list[int]:
    """Expand naively from the real start with dateutil and aware datetimes."""
    assert made.rrule is not None
    rule = rrulestr(made.rrule, dtstart=made.start)
    low = to_local(window_start, tz) - timedelta(days=2) - timedelta(milliseconds=made.duration_ms)
    high = to_local(window_end, tz) + timedelta(days=2)
    found = set()
    for local in rule.between(low, high, inc=True):
        if local in made.exdates or (made.until is not None and local > made.until):
            continue
        start = int(local.replace(tzinfo=tz).timestamp() * 1000)
        if start < window_end and start + made.duration_ms > window_start:
            found.add(start)
    return sorted(found)


@settings(max_examples=300, deadline=None)
@given(recurring(), st.data())
def test_occurrences_match_a_naive_expansion_from_the_start(
    case: tuple[ScheduleItem, int, int, ZoneInfo], data: st.DataObject
) -> None:
    made, window_start, window_end, tz = case
    expected = reference(made, window_start, window_end, tz)
    if expected:
        # Remove some occurrences (maybe none) as exceptions, by their local wall time.
        removed: list[int] = data.draw(st.lists(st.sampled_from(expected), max_size=3, unique=True))
        made = made.model_copy(update={"exdates": [to_local(ms, tz) for ms in removed]})
        expected = reference(made, window_start, window_end, tz)
    found = occurrences(made, window_start, window_end, tz)
    assert found == expected
    # Sorted, unique and all overlapping the window.
    assert found == sorted(set(found))
    assert all(start < window_end and start + made.duration_ms > window_start for start in found)
