"""Validation of the schedule models: clear errors located at the body field at fault."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from devices.protocol import Priority
from schedules.errors import ScheduleError
from schedules.model import MediaSegment, QuietHours, RelaySegment, ScheduleItem, Targets, VolumeRule, ZonePolicy
from schedules.recurrence import validate_rrule

MEDIA = {"kind": "media", "sha256": "b" * 64, "size": 5000, "duration_ms": 90_000}
RELAY = {"kind": "relay", "url": "https://vov.vn/live/vov1.m3u8", "duration_ms": 1_800_000}


def body(**changes: Any) -> dict[str, Any]:
    """A valid schedule item body with ``changes`` applied."""
    data: dict[str, Any] = {
        "id": "ban-tin-sang",
        "segments": [MEDIA],
        "targets": {"zones": ["khu-pho-1"]},
        "start": "2025-06-02T06:00:00",
        "rrule": "FREQ=DAILY",
    }
    data.update(changes)
    return data


def first_error(data: dict[str, Any]) -> tuple[tuple[int | str, ...], str]:
    with pytest.raises(ValidationError) as caught:
        ScheduleItem.model_validate(data)
    error = caught.value.errors()[0]
    return error["loc"], error["msg"]


def test_a_valid_item_with_a_programme_of_media_and_relay() -> None:
    item = ScheduleItem.model_validate(body(segments=[MEDIA, RELAY, MEDIA], priority="priority"))
    assert item.duration_ms == 90_000 + 1_800_000 + 90_000
    assert isinstance(item.segments[1], RelaySegment)
    assert item.priority is Priority.PRIORITY
    assert item.start == datetime(2025, 6, 2, 6, 0)
    assert item.revision == 0 and item.queue is False and item.exdates == []


def test_models_are_frozen_and_strict() -> None:
    item = ScheduleItem.model_validate(body())
    with pytest.raises(ValidationError):
        item.title = "x"
    loc, _ = first_error(body(colour="red"))
    assert loc == ("colour",)


@pytest.mark.parametrize("field", ["start", "until"])
def test_aware_datetimes_are_refused(field: str) -> None:
    loc, msg = first_error(body(**{field: "2025-06-02T07:00:00+07:00"}))
    assert loc == (field,)
    assert "local wall time without a time zone" in msg


def test_aware_exdates_are_refused() -> None:
    loc, msg = first_error(body(exdates=[datetime(2025, 6, 3, 6, tzinfo=UTC)]))
    assert loc == ("exdates",)
    assert "without a time zone" in msg


def test_until_before_start_is_refused_at_until() -> None:
    loc, msg = first_error(body(until="2025-06-01T23:59:00"))
    assert loc == ("until",)
    assert "is before start" in msg
    assert ScheduleItem.model_validate(body(until="2025-06-02T06:00:00")).until == datetime(2025, 6, 2, 6)


def test_microseconds_are_dropped_from_times() -> None:
    item = ScheduleItem.model_validate(body(start="2025-06-02T06:00:00.123456", rrule=None))
    assert item.start == datetime(2025, 6, 2, 6, 0)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://radio.example.vn/live",
        "javascript:alert(1)",
        "http://",
        "https:///only/a/path",
        "file:///etc/passwd",
        "--playlist=/etc/passwd",
        "http://radio.example.vn/live stream",
        "http://radio.example.vn/\x00live",
        "http://radio.example.vn:99999/live",
        "https://radio.example.vn/" + "a" * 2000,
    ],
)
def test_bad_relay_urls_are_refused(url: str) -> None:
    loc, msg = first_error(body(segments=[{**RELAY, "url": url}]))
    assert loc == ("segments", 0, "relay", "url")
    assert "relay url must be http(s)" in msg


def test_good_relay_urls() -> None:
    for url in ("http://10.0.0.5:8000/stream", "HTTPS://Radio.Example.vn/vov1?x=1"):
        assert RelaySegment(url=url, duration_ms=1000).url == url


@pytest.mark.parametrize(
    ("segment", "loc"),
    [
        ({**MEDIA, "duration_ms": 0}, ("segments", 0, "media", "duration_ms")),
        ({**MEDIA, "duration_ms": 24 * 3600 * 1000 + 1}, ("segments", 0, "media", "duration_ms")),
        ({**MEDIA, "size": 0}, ("segments", 0, "media", "size")),
        ({**MEDIA, "sha256": "B" * 64}, ("segments", 0, "media", "sha256")),
        ({**MEDIA, "title": "x" * 201}, ("segments", 0, "media", "title")),
        ({**RELAY, "duration_ms": -5}, ("segments", 0, "relay", "duration_ms")),
    ],
)
def test_bad_segments(segment: dict[str, Any], loc: tuple[object, ...]) -> None:
    assert first_error(body(segments=[segment]))[0] == loc


def test_programme_length_limits() -> None:
    assert first_error(body(segments=[]))[0] == ("segments",)
    assert first_error(body(segments=[MEDIA] * 51))[0] == ("segments",)
    assert len(ScheduleItem.model_validate(body(segments=[MEDIA] * 50)).segments) == 50


@pytest.mark.parametrize(
    ("targets", "words"),
    [
        ({}, "at least one zone or agent"),
        ({"zones": [], "agents": []}, "at least one zone or agent"),
        ({"all": True, "zones": ["khu-pho-1"]}, "not both"),
        ({"all": True, "agents": ["loa-1"]}, "not both"),
    ],
)
def test_bad_targets(targets: dict[str, Any], words: str) -> None:
    loc, msg = first_error(body(targets=targets))
    assert loc == ("targets",)
    assert words in msg


def test_target_names_must_be_ids() -> None:
    assert first_error(body(targets={"zones": ["Khu Pho 1"]}))[0] == ("targets", "zones", 0)
    assert Targets(all=True).all and Targets(agents=["loa-1"]).agents == ["loa-1"]


def test_item_id_is_short_enough_for_play_ids() -> None:
    assert first_error(body(id="a" * 33))[0] == ("id",)
    assert first_error(body(id="Has Spaces"))[0] == ("id",)


def test_schedule_error_from_validation_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        ScheduleItem.model_validate(body(rrule="FREQ=SECONDLY"))
    error = ScheduleError.from_validation(caught.value)
    assert error.field == "rrule"
    assert error.message.startswith("FREQ=SECONDLY is not allowed")
    with pytest.raises(ValidationError) as caught:
        ScheduleItem.model_validate(body(segments=[{**RELAY, "url": "ftp://x"}]))
    assert ScheduleError.from_validation(caught.value).field == "segments.0.relay.url"


def test_validate_rrule_normalizes_and_raises_schedule_error() -> None:
    assert validate_rrule(" rrule:freq=weekly;byday=mo,fr;byhour=6 ") == "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=6"
    with pytest.raises(ScheduleError) as caught:
        validate_rrule("FREQ=DAILY;BYHOUR=x")
    assert caught.value.field == "rrule"
    assert "BYHOUR value 'X' is not a whole number" in str(caught.value)
    with pytest.raises(ScheduleError, match="must not contain DTSTART"):
        validate_rrule("DTSTART:20250101T000000\nRRULE:FREQ=DAILY")
    with pytest.raises(ScheduleError, match="rrule is empty"):
        validate_rrule("  ")


def test_validate_rrule_quotes_dateutil() -> None:
    # BYSETPOS and BYDAY are checked by us; an HOURLY rule whose hours INTERVAL can never reach is caught
    # once the start is known, with dateutil's own words.
    loc, msg = first_error(body(start="2025-06-02T06:00:00", rrule="FREQ=HOURLY;INTERVAL=2;BYHOUR=7"))
    assert loc == ("rrule",)
    assert "never fires from this start" in msg
    assert ScheduleItem.model_validate(body(start="2025-06-02T07:00:00", rrule="FREQ=HOURLY;INTERVAL=2;BYHOUR=7"))


def test_quiet_hours_and_volume_rules() -> None:
    night = QuietHours(start=time(21), end=time(5, 30))
    assert night.weekdays is None
    with pytest.raises(ValidationError):
        QuietHours(start=time(21), end=time(5), weekdays=[7])
    with pytest.raises(ValidationError):
        QuietHours(start=time(21), end=time(5), weekdays=[])
    with pytest.raises(ValidationError) as caught:
        QuietHours(start=time(21, tzinfo=timezone(timedelta(hours=7))), end=time(5))
    assert caught.value.errors()[0]["loc"] == ("start",)
    with pytest.raises(ValidationError):
        VolumeRule(start=time(6), end=time(8), volume=101)
    policy = ZonePolicy.model_validate(
        {
            "zone": "khu-pho-1",
            "quiet_hours": [{"start": "21:00", "end": "05:30"}],
            "volumes": [{"start": "05:30", "end": "08:00", "volume": 60}],
        }
    )
    assert policy.quiet_hours[0].start == time(21) and policy.volumes[0].volume == 60
    with pytest.raises(ValidationError):
        ZonePolicy(zone="Khu Pho")


def test_media_segment_defaults() -> None:
    segment = MediaSegment(sha256="c" * 64, size=1, duration_ms=1)
    assert (segment.kind, segment.mime, segment.title) == ("media", "audio/ogg", "")
