"""Expansion into plays per agent: targets, zones, quiet hours, relay trimming, volumes, order."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.protocol import Priority
from schedules.errors import ScheduleError
from schedules.localtime import to_local, to_utc_ms
from schedules.model import QuietHours, ScheduleItem, Targets, VolumeRule, ZonePolicy
from schedules.plan import Blocked, Plan, PlannedPlay, _new_play, plan, play_id, resolve_targets

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
MONDAY = date(2025, 6, 2)

AGENTS = {"loa-a": ["khu-pho-1"], "loa-b": ["khu-pho-1", "khu-pho-2"], "loa-c": ["khu-pho-2"], "loa-d": ["khu-pho-3"]}
POLICIES = {
    "khu-pho-1": ZonePolicy(
        zone="khu-pho-1",
        quiet_hours=[QuietHours(start=time(21), end=time(5, 30))],
        volumes=[
            VolumeRule(start=time(5, 30), end=time(8), volume=60),
            VolumeRule(start=time(8), end=time(21), volume=80),
        ],
    ),
    "khu-pho-2": ZonePolicy(
        zone="khu-pho-2",
        quiet_hours=[QuietHours(start=time(11, 30), end=time(13, 30), weekdays=[0, 1, 2, 3, 4])],
        volumes=[VolumeRule(start=time(6), end=time(22), volume=70)],
    ),
}
MEDIA = {"kind": "media", "sha256": "d" * 64, "size": 4000, "duration_ms": 2 * MINUTE}


def item(ident: str, start: datetime, targets: dict[str, Any], rrule: str | None = None, **extra: Any) -> ScheduleItem:
    return ScheduleItem.model_validate(
        {"id": ident, "segments": [MEDIA], "targets": targets, "start": start, "rrule": rrule, **extra}
    )


def at(day: date, hour: int, minute: int = 0, tz: ZoneInfo = HCM) -> int:
    return to_utc_ms(datetime.combine(day, time(hour, minute)), tz)


def day_plan(items: list[ScheduleItem], day: date = MONDAY, days: int = 1, tz: ZoneInfo = HCM) -> Plan:
    start = at(day, 0, tz=tz)
    return plan(items, AGENTS, POLICIES, start, start + days * DAY, tz)


def by_agent(result: Plan) -> dict[str, list[tuple[str, int]]]:
    return {agent: [(p.item_id, p.start_ms) for p in plays] for agent, plays in result.plays.items()}


# ---------------------------------------------------------------------------------------- targets


def test_resolve_targets() -> None:
    assert resolve_targets(Targets(all=True), AGENTS) == ["loa-a", "loa-b", "loa-c", "loa-d"]
    assert resolve_targets(Targets(zones=["khu-pho-2"]), AGENTS) == ["loa-b", "loa-c"]
    assert resolve_targets(Targets(zones=["khu-pho-3"], agents=["loa-a", "loa-d"]), AGENTS) == ["loa-a", "loa-d"]


def test_resolve_targets_names_unknown_agents_and_zones() -> None:
    with pytest.raises(ScheduleError) as caught:
        resolve_targets(Targets(zones=["khu-pho-1", "khu-pho-9"], agents=["loa-z", "loa-a"]), AGENTS)
    assert caught.value.field == "targets"
    assert str(caught.value) == "unknown targets: agents loa-z; zones khu-pho-9"


def test_every_agent_is_present_and_targets_reach_the_right_agents() -> None:
    result = day_plan([item("sang", datetime(2025, 1, 1, 6), {"zones": ["khu-pho-1"]}, "FREQ=DAILY")])
    six = at(MONDAY, 6)
    assert by_agent(result) == {"loa-a": [("sang", six)], "loa-b": [("sang", six)], "loa-c": [], "loa-d": []}
    assert result.blocked == []


def test_unknown_targets_are_skipped_and_reported_once() -> None:
    odd = item(
        "odd",
        datetime(2025, 1, 1, 9),
        {"zones": ["khu-pho-2", "khu-pho-9"], "agents": ["loa-x", "loa-d"]},
        "FREQ=HOURLY;BYHOUR=9,10",
    )
    result = day_plan([odd])
    assert [agent for agent, plays in result.plays.items() if plays] == ["loa-b", "loa-c", "loa-d"]
    assert result.blocked == [Blocked("", "odd", at(MONDAY, 9), "unknown target agents loa-x; zones khu-pho-9")]


def test_zone_with_a_policy_but_no_speakers_is_not_unknown() -> None:
    policies = {**POLICIES, "khu-pho-5": ZonePolicy(zone="khu-pho-5")}
    start = at(MONDAY, 0)
    result = plan(
        [item("moi", datetime(2025, 6, 2, 9), {"zones": ["khu-pho-5"]})], AGENTS, policies, start, start + DAY, HCM
    )
    assert result.blocked == [] and all(plays == [] for plays in result.plays.values())


# ------------------------------------------------------------------------------------ quiet hours


@pytest.mark.parametrize("priority", [Priority.NORMAL, Priority.PRIORITY])
def test_quiet_hours_across_midnight_block_normal_and_priority(priority: Priority) -> None:
    late = item(
        "toi",
        datetime(2025, 1, 1, 22),
        {"zones": ["khu-pho-1"]},
        "FREQ=DAILY;BYHOUR=4,5,22;BYMINUTE=0,30",
        priority=priority,
    )
    result = day_plan([late])
    # 04:00, 04:30, 05:00 (morning part), 22:00, 22:30 (evening part) are quiet; 05:30 is the end: plays.
    assert by_agent(result)["loa-a"] == [("toi", at(MONDAY, 5, 30))]
    assert by_agent(result)["loa-b"] == [("toi", at(MONDAY, 5, 30))]
    reasons = {(b.agent_id, b.start_ms): b.reason for b in result.blocked}
    assert reasons[("loa-a", at(MONDAY, 22))] == "quiet hours 21:00–05:30 in zone khu-pho-1"
    assert reasons[("loa-b", at(MONDAY, 4))] == "quiet hours 21:00–05:30 in zone khu-pho-1"
    assert len(result.blocked) == 2 * 5


def test_quiet_hours_start_is_inclusive() -> None:
    nine = item("chin", datetime(2025, 6, 2, 21, 0), {"agents": ["loa-a"]})
    assert day_plan([nine]).blocked == [
        Blocked("loa-a", "chin", at(MONDAY, 21), "quiet hours 21:00–05:30 in zone khu-pho-1")
    ]


def test_emergency_is_never_blocked_nor_trimmed() -> None:
    alarm = item(
        "bao-dong",
        datetime(2025, 6, 2, 23, 15),
        {"all": True},
        priority="emergency",
        segments=[{"kind": "relay", "url": "https://radio.example.vn/pa", "duration_ms": HOUR}],
    )
    result = day_plan([alarm])
    assert result.blocked == []
    assert all(p.end_ms - p.start_ms == HOUR for plays in result.plays.values() for p in plays)
    assert sum(len(plays) for plays in result.plays.values()) == 4


def test_speaker_in_two_zones_is_quiet_when_either_is() -> None:
    noon = item("trua", datetime(2025, 1, 1, 12), {"all": True}, "FREQ=DAILY")
    result = day_plan([noon], days=7)
    monday, saturday = at(MONDAY, 12), at(MONDAY + timedelta(days=5), 12)
    plays = by_agent(result)
    assert ("trua", monday) in plays["loa-a"] and ("trua", monday) not in plays["loa-b"]
    assert ("trua", monday) not in plays["loa-c"]
    assert ("trua", saturday) in plays["loa-b"] and ("trua", saturday) in plays["loa-c"]  # weekdays only
    reason = "quiet hours 11:30–13:30 (Mon, Tue, Wed, Thu, Fri) in zone khu-pho-2"
    assert Blocked("loa-b", "trua", monday, reason) in result.blocked
    assert len(result.blocked) == 2 * 5  # loa-b and loa-c, Monday to Friday


def test_weekdays_of_a_window_crossing_midnight_are_its_start_days() -> None:
    policies = {
        "khu-pho-3": ZonePolicy(zone="khu-pho-3", quiet_hours=[QuietHours(start=time(22), end=time(6), weekdays=[4])])
    }
    two = item("hai-gio", datetime(2025, 1, 1, 2), {"agents": ["loa-d"]}, "FREQ=DAILY")
    start = at(MONDAY, 0)
    result = plan([two], AGENTS, policies, start, start + 7 * DAY, HCM)
    played = [to_local(p.start_ms, HCM).date() for p in result.plays["loa-d"]]
    # Friday night's window covers Saturday 02:00 (7 June); Friday 02:00 (6 June) is Thursday night: plays.
    assert date(2025, 6, 7) not in played and date(2025, 6, 6) in played and len(played) == 6


def test_relay_running_into_quiet_hours_is_trimmed_at_their_start() -> None:
    relay = item(
        "tiep-song",
        datetime(2025, 6, 2, 20, 0),
        {"all": True},
        segments=[MEDIA, {"kind": "relay", "url": "https://vov.vn/vov1", "duration_ms": 2 * HOUR}],
    )
    result = day_plan([relay])
    full = at(MONDAY, 20) + 2 * MINUTE + 2 * HOUR
    ends = {agent: [p.end_ms for p in plays] for agent, plays in result.plays.items()}
    assert ends == {"loa-a": [at(MONDAY, 21)], "loa-b": [at(MONDAY, 21)], "loa-c": [full], "loa-d": [full]}


def test_recordings_running_into_quiet_hours_finish() -> None:
    long = item(
        "dai", datetime(2025, 6, 2, 20, 50), {"agents": ["loa-a"]}, segments=[{**MEDIA, "duration_ms": 20 * MINUTE}]
    )
    (play,) = day_plan([long]).plays["loa-a"]
    assert play.end_ms - play.start_ms == 20 * MINUTE


# ---------------------------------------------------------------------------- volume and programmes


def test_volume_is_the_lowest_rule_of_the_speakers_zones() -> None:
    two = item("hai-lan", datetime(2025, 1, 1, 7), {"all": True}, "FREQ=DAILY;BYHOUR=7,9")
    result = day_plan([two])
    volumes = {agent: [p.volume for p in plays] for agent, plays in result.plays.items()}
    # 07:00: zone 1 says 60, zone 2 says 70. 09:00: 80 and 70. Zone 3 has no rules: the agent's default.
    assert volumes == {"loa-a": [60, 80], "loa-b": [60, 70], "loa-c": [70, 70], "loa-d": [None, None]}


def test_programme_duration_is_the_sum_and_segments_are_shared() -> None:
    segments = [
        MEDIA,
        {**MEDIA, "duration_ms": 45_000},
        {"kind": "relay", "url": "http://r.vn/a", "duration_ms": 600_000},
    ]
    prog = item("chuong-trinh", datetime(2025, 6, 2, 9), {"all": True}, segments=segments, title="Chương trình")
    result = day_plan([prog])
    plays = [p for agent_plays in result.plays.values() for p in agent_plays]
    assert {p.end_ms - p.start_ms for p in plays} == {2 * MINUTE + 45_000 + 600_000} == {prog.duration_ms}
    assert len({id(p.segments) for p in plays}) == 1
    first = result.plays["loa-a"][0]
    assert first == PlannedPlay(
        f"chuong-trinh-0-{at(MONDAY, 9)}",
        "loa-a",
        "chuong-trinh",
        0,
        at(MONDAY, 9),
        at(MONDAY, 9) + prog.duration_ms,
        Priority.NORMAL,
        tuple(prog.segments),
        80,
        "Chương trình",
    )


def test_plays_are_sorted_by_start_then_priority() -> None:
    items = [
        item("b-normal", datetime(2025, 6, 2, 9), {"all": True}, created_ms=1),
        item("a-normal", datetime(2025, 6, 2, 9), {"all": True}, created_ms=2),
        item("urgent", datetime(2025, 6, 2, 9), {"all": True}, priority="emergency", created_ms=3),
        item("early", datetime(2025, 6, 2, 8), {"all": True}, priority="priority", revision=4),
    ]
    result = day_plan(items)
    assert [p.item_id for p in result.plays["loa-c"]] == ["early", "urgent", "b-normal", "a-normal"]
    assert result.plays["loa-c"][0].play_id == f"early-4-{at(MONDAY, 8)}"


def test_play_started_before_the_window_is_listed() -> None:
    relay = item(
        "dem",
        datetime(2025, 6, 2, 8),
        {"agents": ["loa-d"]},
        segments=[{"kind": "relay", "url": "http://r.vn/a", "duration_ms": 2 * HOUR}],
    )
    nine = at(MONDAY, 9)
    result = plan([relay], AGENTS, POLICIES, nine, nine + HOUR, HCM)
    assert [(p.start_ms, p.end_ms) for p in result.plays["loa-d"]] == [(at(MONDAY, 8), at(MONDAY, 10))]


def test_plan_in_a_dst_zone() -> None:
    berlin_policies = {"khu-pho-1": ZonePolicy(zone="khu-pho-1", quiet_hours=[QuietHours(start=time(22), end=time(6))])}
    daily = item("morgen", datetime(2025, 3, 1, 6), {"zones": ["khu-pho-1"]}, "FREQ=DAILY;BYHOUR=5,6")
    start = to_utc_ms(datetime(2025, 3, 29), BERLIN)
    result = plan([daily], AGENTS, berlin_policies, start, start + 2 * DAY, BERLIN)
    assert [to_local(p.start_ms, BERLIN) for p in result.plays["loa-a"]] == [
        datetime(2025, 3, 29, 6),
        datetime(2025, 3, 30, 6),
    ]
    assert len(result.blocked) == 4  # 05:00 both days, loa-a and loa-b


def test_play_id() -> None:
    assert play_id("ban-tin", 3, 1_748_818_800_000) == "ban-tin-3-1748818800000"
    with pytest.raises(ScheduleError):
        play_id("x" * 60, 0, 1_748_818_800_000)
    with pytest.raises(ScheduleError):
        play_id("bad id", 0, 1)


# ------------------------------------------------------------------------------------- property


def quiet_at(local: datetime, hours: QuietHours) -> bool:
    """Independent check: is ``local`` inside the window begun on its own day or the day before?"""
    for day in (local.date() - timedelta(days=1), local.date()):
        if hours.weekdays is not None and day.weekday() not in hours.weekdays:
            continue
        begin = datetime.combine(day, hours.start)
        end = datetime.combine(day + timedelta(days=1) if hours.end <= hours.start else day, hours.end)
        if begin <= local < end:
            return True
    return False


times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@settings(max_examples=150, deadline=None)
@given(
    quiet=st.lists(
        st.builds(
            QuietHours,
            start=times,
            end=times,
            weekdays=st.none() | st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True),
        ),
        max_size=3,
    ),
    minutes=st.lists(st.sampled_from(range(0, 60, 5)), min_size=1, max_size=4, unique=True),
    priority=st.sampled_from(list(Priority)),
    tz=st.sampled_from([HCM, BERLIN]),
)
def test_no_non_emergency_play_starts_in_quiet_hours(
    quiet: list[QuietHours], minutes: list[int], priority: Priority, tz: ZoneInfo
) -> None:
    policies = {"khu-pho-2": ZonePolicy(zone="khu-pho-2", quiet_hours=quiet)}
    hourly = item(
        "moi-gio",
        datetime(2025, 1, 1),
        {"all": True},
        "FREQ=HOURLY;BYMINUTE=" + ",".join(map(str, minutes)),
        priority=priority,
    )
    start = to_utc_ms(datetime(2025, 10, 24), tz)  # a week around Berlin's fall-back
    result = plan([hourly], AGENTS, policies, start, start + 4 * DAY, tz)
    for agent, plays in result.plays.items():
        for p in plays:
            local = to_local(p.start_ms, tz)
            in_quiet = "khu-pho-2" in AGENTS[agent] and any(quiet_at(local, q) for q in quiet)
            assert priority is Priority.EMERGENCY or not in_quiet
    for blocked in result.blocked:
        assert priority is not Priority.EMERGENCY
        assert any(quiet_at(to_local(blocked.start_ms, tz), q) for q in quiet)
    # Nothing lost: every occurrence is either played or blocked on every agent.
    total = sum(len(plays) for plays in result.plays.values()) + len(result.blocked)
    assert total == len(AGENTS) * len(
        {p.start_ms for plays in result.plays.values() for p in plays} | {b.start_ms for b in result.blocked}
    )


def test_fast_play_constructor_builds_the_same_frozen_object() -> None:
    args = ("p-0-1", "loa-a", "p", 0, 1, 2, Priority.PRIORITY, (), 55, "Tiêu đề")
    fast, plain = _new_play(*args), PlannedPlay(*args)
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    with pytest.raises(FrozenInstanceError):
        fast.volume = 10  # type: ignore[misc]
