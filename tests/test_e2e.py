"""The walking skeleton end to end: text posted to the controller is heard from two agents' speakers."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from tests.conftest import AgentFactory, ControllerHandle
from tests.helpers import START_TOLERANCE_MS, decode_pcm, iso_ms, wav_frames


def fetch_media(controller: ControllerHandle, sha256: str, token: str) -> bytes:
    req = urllib.request.Request(f"{controller.api}/media/{sha256}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return bytes(resp.read())


def test_announcement_heard_on_two_agents_in_sync(controller: ControllerHandle, agents: AgentFactory,
                                                   tmp_path: Path) -> None:
    a1 = agents("loa-01")
    a2 = agents("loa-02", zones=("khu-pho-2",))
    text = "Thông báo của Ủy ban nhân dân phường: sáng mai cắt điện từ bảy giờ đến mười một giờ."

    status, accepted = controller.post("/api/v1/announcements",
                                       {"text": text, "targets": ["loa-01", "loa-02"], "priority": "normal"})
    assert status == 202, accepted
    assert sorted(accepted["targets"]) == ["loa-01", "loa-02"]

    ann = controller.wait_deliveries(accepted["id"], {"played"}, timeout=40)
    assert ann["status"] == "sent"
    assert ann["engine"].startswith("espeak:")
    assert abs(ann["media"]["loudness_lufs"] + 16) <= 1.0
    start_ms = iso_ms(ann["start_at"])
    media = ann["media"]
    stored = fetch_media(controller, media["sha256"], controller.token)
    assert hashlib.sha256(stored).hexdigest() == media["sha256"]
    expected_pcm = decode_pcm(stored, tmp_path)
    assert len(expected_pcm) > 48000 * 2  # over a second of speech

    for agent in (a1, a2):
        starts = [line for line in agent.sink_lines() if line["event"] == "start"]
        assert len(starts) == 1, agent.sink_lines()
        start = starts[0]
        assert start["sha256"] == media["sha256"]
        # Every speaker aims at the absolute start time (how close they get is bench/start_skew.py's figure).
        offset = start["actual_start"] - start_ms
        assert abs(offset) <= START_TOLERANCE_MS, (agent.agent_id, offset)
        played = wav_frames(agent.files.sink_dir / start["file"])
        assert played == expected_pcm, f"{agent.agent_id} played different audio from the stored media"

    status, plays = controller.get(f"/api/v1/plays?announcement_id={accepted['id']}")
    assert status == 200
    assert sorted(p["agent_id"] for p in plays) == ["loa-01", "loa-02"]
    for play in plays:
        assert play["outcome"] == "completed"
        assert abs(play["start_offset_ms"]) <= START_TOLERANCE_MS
        assert iso_ms(play["scheduled_start"]) == start_ms
        assert play["ended_at"] is not None
    # Per-target delivery status carries the proof of play.
    assert all(d["play"]["outcome"] == "completed" for d in ann["deliveries"])


def test_emergency_preempts_what_is_playing(controller: ControllerHandle, agents: AgentFactory) -> None:
    agent = agents("loa-01")
    long_text = " ".join(["Bà con khu phố chú ý, đây là bản tin thường lệ của phường."] * 6)
    status, normal = controller.post("/api/v1/announcements", {"text": long_text, "targets": ["all"]})
    assert status == 202
    controller.wait_deliveries(normal["id"], {"playing"}, timeout=30)

    status, urgent = controller.post("/api/v1/announcements",
                                     {"text": "Khẩn cấp: có cháy tại chợ phường.", "targets": ["loa-01"],
                                      "priority": "emergency"})
    assert status == 202
    controller.wait_deliveries(urgent["id"], {"played"}, timeout=40)
    # The pre-empted bulletin is played again from the start once the speaker is free (it is still in time).
    first = controller.wait_deliveries(normal["id"], {"played"}, timeout=90)
    status, plays = controller.get(f"/api/v1/plays?announcement_id={normal['id']}")
    assert status == 200
    by_attempt = {p["attempt"]: p for p in plays}
    assert by_attempt[0]["outcome"] == "preempted"
    assert by_attempt[1]["outcome"] == "completed"

    lines = agent.sink_lines()
    normal_play = first["deliveries"][0]["command_id"]
    ends = [line for line in lines if line["event"] == "end" and line["play_id"] == normal_play]
    assert ends[0]["stopped"] is True
    urgent_start = next(line for line in lines if line["event"] == "start" and line["play_id"] != normal_play)
    urgent_end = next(line for line in lines if line["event"] == "end" and line["play_id"] != normal_play)
    # The cut comes before the emergency starts, and the replay after it ends: no two sounds overlap.
    assert ends[0]["ended_at"] <= urgent_start["actual_start"] + 5
    replay = [line for line in lines if line["event"] == "start" and line["play_id"] == normal_play][1]
    assert replay["actual_start"] >= urgent_end["ended_at"] - 5
