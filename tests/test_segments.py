"""One definition of a segment: the schedule, the API and the agent's window share its models, limits and URL check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import schedules.model as sm
from controller.api.schedule_schemas import RelayContentIn
from devices.protocol import (
    MAX_SEGMENT_MS,
    MAX_URL_CHARS,
    DiscoveredCamera,
    MediaSegment,
    RelaySegment,
    SpeakerLive,
    SpeakerPlay,
    relay_url_error,
    valid_relay_url,
)
from devices.protocol.live import MAX_LIVE_URL_CHARS

SHA = "ab" * 32

REFUSED = [
    "ftp://radio.example.vn/live",
    "javascript:alert(1)",
    "https:///only/a/path",
    "--playlist=/etc/passwd",
    "http://radio.example.vn/live stream",
    "http://radio.example.vn/\u200blive",  # an invisible format character
    "http://radio.example.vn/\x85live",  # a C1 control
    "http://radio.example.vn:99999/live",
    "https://radio.example.vn/" + "a" * MAX_URL_CHARS,
]


def test_the_schedule_uses_the_protocol_segments() -> None:
    assert sm.MediaSegment is MediaSegment and sm.RelaySegment is RelaySegment
    assert sm.MAX_SEGMENT_MS == MAX_SEGMENT_MS


@pytest.mark.parametrize("url", REFUSED)
def test_one_relay_url_check_everywhere(url: str) -> None:
    error = relay_url_error(url)
    assert error is not None and error.startswith("relay url must be http(s)")
    assert not valid_relay_url(url)
    with pytest.raises(ValidationError, match="relay url must be http"):
        RelaySegment(url=url, duration_ms=1000)
    with pytest.raises(ValidationError, match="relay url must be http"):
        RelayContentIn.model_validate({"kind": "relay", "url": url, "duration_s": 60})


def test_a_good_relay_url_passes_everywhere() -> None:
    url = "HTTPS://Radio.Example.vn:8443/vov1?x=1"
    assert relay_url_error(url) is None
    assert RelaySegment(url=url, duration_ms=1000).url == url
    assert RelayContentIn.model_validate({"kind": "relay", "url": url, "duration_s": 60}).url == url


def test_live_and_camera_addresses_take_the_same_check() -> None:
    live = {"session_id": "Labcdefgh", "token": "t" * 16}
    with pytest.raises(ValidationError):
        SpeakerLive.model_validate({**live, "url": "http://icecast.local:99999/live.ogg"})
    with pytest.raises(ValidationError):
        DiscoveredCamera.model_validate({"endpoint": "urn:uuid:1", "xaddrs": ["http://10.0.0.9/\u200bonvif"],
                                         "host": "10.0.0.9"})


def test_a_live_url_with_its_token_fits_a_relay_segment() -> None:
    # The agent plays a live session as a relay segment of url?token=…: the longest URL the command
    # allows, with the longest token, must still be a valid segment.
    url = "http://icecast.local/" + "a" * (MAX_LIVE_URL_CHARS - len("http://icecast.local/"))
    order = SpeakerLive(session_id="Labcdefgh", url=url, token="t" * 128)
    RelaySegment(url=f"{order.url}?token={order.token}", duration_ms=order.max_duration_ms)
    with pytest.raises(ValidationError):
        SpeakerLive(session_id="Labcdefgh", url=url + "a", token="t" * 128)


def test_a_play_order_has_the_media_segment_limits() -> None:
    # Whatever speaker.play the agent accepts becomes a MediaSegment; a mime the segment refuses would fail
    # only after the play was stored, so the command refuses it first.
    for bad in ({"mime": ""}, {"mime": "a" * 65}, {"size": 512 * 1024 * 1024 + 1}, {"duration_ms": 0}):
        with pytest.raises(ValidationError):
            SpeakerPlay.model_validate({"sha256": SHA, "size": 10, "duration_ms": 1000, "start_at": 1, **bad})
        with pytest.raises(ValidationError):
            MediaSegment.model_validate({"sha256": SHA, "size": 10, "duration_ms": 1000, **bad})
