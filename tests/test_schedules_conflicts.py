"""Conflicts between a candidate item and existing ones, and the priority rules the agent follows."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocol import Priority
from schedules.conflicts import Conflict, find_conflicts
from schedules.localtime import to_utc_ms
from schedules.model import ScheduleItem
from schedules.priority import AfterPreemption, after_preemption, preempts
from schedules.recurrence import occurrences

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MINUTE = 60_000
DAY = 86_400_000
MONDAY = date(2025, 6, 2)
AGENTS = {"loa-a": ["khu-pho-1"], "loa-b": ["khu-pho-1", "khu-pho-2"], "loa-c": ["khu-pho-2"]}
HORIZON = (to_utc_ms(datetime(2025, 6, 2), HCM), to_utc_ms(datetime(2025, 8, 1), HCM))


def item(
    ident: str,
    start: datetime,
    rrule: str | None = None,
    minutes: int = 10,
    targets: dict[str, Any] | None = None,
    **extra: Any,
) -> ScheduleItem:
    return ScheduleItem.model_validate(
        {
            "id": ident,
            "title": ident.title(),
            "start": start,
            "rrule": rrule,
            "segments": [{"kind": "media", "sha256": "e" * 64, "size": 1, "duration_ms": minutes * MINUTE}],
            "targets": targets or {"all": True},
            **extra,
        }
    )


def at(day: date, hour: int, minute: int = 0) -> int:
    return to_utc_ms(datetime.combine(day, time(hour, minute)), HCM)


def conflicts(candidate: ScheduleItem, existing: list[ScheduleItem], limit: int = 20) -> list[Conflict]:
    return find_conflicts(candidate, existing, AGENTS, *HORIZON, HCM, limit=limit)


def test_same_level_overlap_is_a_conflict_naming_the_other_item() -> None:
    existing = item("ban-tin", datetime(2025, 6, 1, 6, 0), "FREQ=DAILY", targets={"zones": ["khu-pho-2"]})
    candidate = item("thong-bao", datetime(2025, 6, 3, 6, 5), targets={"agents": ["loa-a", "loa-b"]})
    found = conflicts(candidate, [existing])
    start = at(date(2025, 6, 3), 6, 5)
    other = at(date(2025, 6, 3), 6, 0)
    assert found == [Conflict("ban-tin", "Ban-Tin", "loa-b", start, other, other + 10 * MINUTE)]


def test_different_levels_do_not_conflict() -> None:
    existing = item("ban-tin", datetime(2025, 6, 1, 6, 0), "FREQ=DAILY", priority="priority")
    candidate = item("thong-bao", datetime(2025, 6, 3, 6, 5))
    assert conflicts(candidate, [existing]) == []
    assert conflicts(candidate.model_copy(update={"priority": Priority.EMERGENCY}), [existing]) == []


def test_the_item_being_edited_is_ignored() -> None:
    old = item("ban-tin", datetime(2025, 6, 3, 6, 0))
    edited = item("ban-tin", datetime(2025, 6, 3, 6, 5), revision=1, queue=True)
    assert conflicts(edited, [old]) == []


def test_back_to_back_is_not_a_conflict() -> None:
    first = item("mot", datetime(2025, 6, 3, 6, 0), minutes=10)
    second = item("hai", datetime(2025, 6, 3, 6, 10), minutes=10)
    assert conflicts(second, [first]) == []
    assert conflicts(first, [second]) == []
    overlapping = item("ba", datetime(2025, 6, 3, 6, 9, 59), minutes=10)
    assert len(conflicts(overlapping, [first])) == 3  # one per agent


def test_no_shared_agent_no_conflict() -> None:
    zone1 = item("mot", datetime(2025, 6, 3, 6, 0), targets={"agents": ["loa-a"]})
    zone2 = item("hai", datetime(2025, 6, 3, 6, 0), targets={"agents": ["loa-c"]})
    assert conflicts(zone2, [zone1]) == []


def test_limit_is_respected_and_order_is_earliest_first() -> None:
    daily = item("hang-ngay", datetime(2025, 6, 1, 17, 0), "FREQ=DAILY")
    other = item("khac", datetime(2025, 6, 1, 17, 5), "FREQ=DAILY")
    candidate = item("moi", datetime(2025, 6, 2, 17, 0), "FREQ=WEEKLY;BYDAY=MO,TU", minutes=30)
    found = conflicts(candidate, [other, daily], limit=7)
    assert len(found) == 7
    keys = [(c.start_ms, c.other_start_ms, c.item_id, c.agent_id) for c in found]
    assert keys == sorted(keys)
    assert keys[0] == (at(MONDAY, 17), at(MONDAY, 17), "hang-ngay", "loa-a")
    assert conflicts(candidate, [daily], limit=0) == []
    assert len(conflicts(candidate, [other, daily], limit=1000)) == 2 * 18 * 3  # 18 Mondays and Tuesdays in the horizon


def test_one_off_candidate_against_recurring() -> None:
    weekly = item("thu-hai", datetime(2025, 1, 6, 8, 0), "FREQ=WEEKLY;BYDAY=MO", minutes=60)
    candidate = item("hop", datetime(2025, 7, 7, 8, 30), targets={"zones": ["khu-pho-1"]})
    found = conflicts(candidate, [weekly])
    assert {c.agent_id for c in found} == {"loa-a", "loa-b"}
    assert {(c.other_start_ms, c.other_end_ms) for c in found} == {(at(date(2025, 7, 7), 8), at(date(2025, 7, 7), 9))}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45]), st.integers(1, 90)), min_size=1, max_size=6
    ),
    st.tuples(st.integers(0, 23), st.sampled_from([0, 10, 20]), st.integers(1, 120)),
)
def test_sweep_finds_the_same_pairs_as_brute_force(
    others: list[tuple[int, int, int]], mine: tuple[int, int, int]
) -> None:
    existing = [
        item(f"i{n}", datetime(2025, 6, 1, h, m), "FREQ=DAILY", minutes=length)
        for n, (h, m, length) in enumerate(others)
    ]
    candidate = item("c", datetime(2025, 6, 2, mine[0], mine[1]), "FREQ=DAILY;COUNT=10", minutes=mine[2])
    window = (at(MONDAY, 0), at(date(2025, 6, 20), 0))
    found = find_conflicts(candidate, existing, {"loa-a": ["z"]}, *window, HCM, limit=10_000)
    expected = set()
    for start in occurrences(candidate, *window, HCM):
        for other in existing:
            for other_start in occurrences(other, *window, HCM):
                if start < other_start + other.duration_ms and other_start < start + candidate.duration_ms:
                    expected.add((start, other.id, other_start))
    assert {(c.start_ms, c.item_id, c.other_start_ms) for c in found} == expected


# ----------------------------------------------------------------------------------------- priority


def test_only_a_strictly_higher_level_preempts() -> None:
    assert preempts(Priority.EMERGENCY, Priority.PRIORITY)
    assert preempts(Priority.PRIORITY, Priority.NORMAL)
    assert preempts(Priority.EMERGENCY, Priority.NORMAL)
    assert not preempts(Priority.NORMAL, Priority.NORMAL)
    assert not preempts(Priority.EMERGENCY, Priority.EMERGENCY)
    assert not preempts(Priority.NORMAL, Priority.PRIORITY)


@pytest.mark.parametrize(
    ("kind", "until", "now", "expected"),
    [
        ("relay", 10_000, 9_999, AfterPreemption.REJOIN),
        ("relay", 10_000, 10_000, AfterPreemption.SKIP),
        ("media", 10_000, 5_000, AfterPreemption.RESTART),
        ("media", 10_000, 10_001, AfterPreemption.SKIP),
    ],
)
def test_after_preemption(kind: str, until: int, now: int, expected: AfterPreemption) -> None:
    assert after_preemption(kind, until, now) is expected  # type: ignore[arg-type]
