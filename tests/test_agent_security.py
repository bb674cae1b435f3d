"""An agent obeys only fresh commands its controller signed for it, and survives any garbage."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from controller.storage.models import FIRST_WARD
from devices.protocol import SpeakerPlay, Topics, now_ms, ward_target
from tests.conftest import AgentFactory, ControllerHandle, RunningAgent
from tests.mqtt_tools import controller_signer, forged_signer, play_command, publish, wait_for_text


def rendered_media(controller: ControllerHandle, agent: RunningAgent) -> dict[str, Any]:
    """Plays one real announcement on ``agent`` and returns its media (a hash the controller serves)."""
    status, body = controller.post("/api/v1/announcements", {"text": "Thử loa.", "targets": [agent.agent_id]})
    assert status == 202, body
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=30)
    media: dict[str, Any] = ann["media"]
    return media


def starts(agent: RunningAgent) -> list[dict[str, Any]]:
    return [line for line in agent.sink_lines() if line["event"] == "start"]


def assert_not_played(agent: RunningAgent, before: int, wait_s: float = 2.5) -> None:
    time.sleep(wait_s)
    assert len(starts(agent)) == before, agent.sink_lines()
    assert agent.proc.alive


@pytest.mark.parametrize("case", ["forged", "expired", "wrong_target", "unsigned", "type_mismatch"])
def test_rejected_commands_are_ignored_with_a_logged_reason(controller: ControllerHandle, agents: AgentFactory,
                                                            case: str) -> None:
    agent = agents("loa-01")
    sha, size, duration = "ab" * 32, 1000, 1000
    signer = controller_signer(controller.data_dir)
    topic = Topics.command("loa-01", "speaker.play")
    if case == "forged":
        env = play_command(forged_signer(), "loa-01", sha, size, duration)
        reason = "bad_signature"
    elif case == "expired":
        env = play_command(signer, "loa-01", sha, size, duration, ts=now_ms() - 120_000, ttl_ms=60_000)
        reason = "expired"
    elif case == "wrong_target":
        env = play_command(signer, "loa-02", sha, size, duration)
        reason = "wrong_target"
    elif case == "unsigned":
        env = play_command(signer, "loa-01", sha, size, duration).model_copy(update={"sig": None})
        reason = "unsigned"
    else:  # a genuinely signed play, replayed onto the stop topic
        env = play_command(signer, "loa-01", sha, size, duration)
        topic = Topics.command("loa-01", "speaker.stop")
        reason = "type_mismatch"
    publish(controller.mqtt_port, topic, env.to_bytes())
    wait_for_text(agent.log, f"{reason}")
    assert_not_played(agent, 0)


def test_replayed_command_plays_once(controller: ControllerHandle, agents: AgentFactory) -> None:
    agent = agents("loa-01")
    media = rendered_media(controller, agent)
    env = play_command(controller_signer(controller.data_dir), "loa-01", media["sha256"], media["size"],
                       media["duration_ms"])
    publish(controller.mqtt_port, Topics.command("loa-01", "speaker.play"), env.to_bytes())
    controller.wait_for(lambda: len(starts(agent)) == 2, 15, "the signed command to play")
    publish(controller.mqtt_port, Topics.command("loa-01", "speaker.play"), env.to_bytes())
    wait_for_text(agent.log, f"replayed: {env.id}")
    assert_not_played(agent, 2)


def test_a_zone_command_reaches_agents_of_that_zone_only(controller: ControllerHandle, agents: AgentFactory) -> None:
    a1 = agents("loa-01", zones=("khu-pho-1",))
    media = rendered_media(controller, a1)
    a2 = agents("loa-02", zones=("khu-pho-2",))
    order = SpeakerPlay(sha256=media["sha256"], size=media["size"], duration_ms=media["duration_ms"],
                        start_at=now_ms() + 1500)
    signed = controller_signer(controller.data_dir).command(
        "speaker.play", order, to=ward_target(FIRST_WARD, ["khu-pho-1"]), ttl_ms=60_000)
    publish(controller.mqtt_port, Topics.ward_zone_command(FIRST_WARD, "khu-pho-1", "speaker.play"), signed.to_bytes())
    controller.wait_for(lambda: len(starts(a1)) == 2, 15, "zone play on loa-01")
    assert_not_played(a2, 0, wait_s=1)


def test_garbage_on_command_topics_never_kills_the_agent(controller: ControllerHandle, agents: AgentFactory) -> None:
    agent = agents("loa-01")
    topic = Topics.command("loa-01", "speaker.play")
    for payload in (b"", b"\xff\xfe not utf-8", b"not json", b"[1,2,3]", b'{"v":1}', b"{" * 10_000,
                    json.dumps({"v": 1, "id": "x" * 500, "type": "speaker.play", "ts": 1}).encode(),
                    b"9" * 200_000, b"9" * 270_000):
        publish(controller.mqtt_port, topic, payload)
    publish(controller.mqtt_port, "lp/v1/agent/loa-01/cmd/not.a.real.type", b"{}")
    publish(controller.mqtt_port, Topics.CONTROLLER_STATUS, b"garbage", retain=False)
    wait_for_text(agent.log, "not_json")
    # Still alive and still obeying its controller.
    assert agent.proc.alive
    media = rendered_media(controller, agent)
    assert media["sha256"]
    assert agent.proc.alive


def test_hash_mismatch_means_no_playback_and_an_error_event(controller: ControllerHandle,
                                                            agents: AgentFactory) -> None:
    a1 = agents("loa-01")
    media = rendered_media(controller, a1)
    stored = controller.data_dir / "media" / media["sha256"][:2] / media["sha256"]
    stored.write_bytes(b"\x00" * media["size"])  # the store's copy is corrupted on disk
    a2 = agents("loa-02")
    # Sent by the controller (its proof of play is believed only for plays it gave): the same speech, so
    # the same hash, whose stored copy is now corrupt.
    status, body = controller.post("/api/v1/announcements", {"text": "Thử loa.", "targets": ["loa-02"]})
    assert status == 202, body
    wait_for_text(a2.log, "hash_mismatch")

    def failed_play() -> list[dict[str, Any]]:
        _, plays = controller.get("/api/v1/plays?agent_id=loa-02")
        return [p for p in plays if p["outcome"] == "failed"]

    plays = controller.wait_for(failed_play, 15, "the failed play to reach the controller")
    assert "hash_mismatch" in plays[0]["reason"]
    assert plays[0]["actual_start"] is None
    assert_not_played(a2, 0, wait_s=0.5)
    assert not list((a2.files.data_dir / "media").glob(media["sha256"]))
