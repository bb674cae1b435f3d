"""Garbage on any topic the controller reads is logged and dropped; the controller carries on."""

from __future__ import annotations

import json

from devices.protocol import Topics
from tests.conftest import AgentFactory, ControllerHandle
from tests.mqtt_tools import publish, wait_for_text


def test_controller_survives_garbage_on_agent_topics(controller: ControllerHandle, agents: AgentFactory) -> None:
    agents("loa-01")
    port = controller.mqtt_port
    junk = [b"\x00\xff", b"not json", b"[]", b'{"status": "dancing"}', b"{" * 5000]
    for payload in junk:
        for topic in (Topics.status("loa-01"), Topics.info("loa-01"), Topics.state("loa-01"),
                      Topics.reply("loa-01"), Topics.event("loa-01", "play.started")):
            publish(port, topic, payload)
    # An event claiming to come from another agent, one of an unknown type, and one from a stranger.
    forged = {"v": 1, "id": "e" * 32, "type": "play.started", "ts": 1, "from": "loa-02", "data": {}}
    publish(port, Topics.event("loa-01", "play.started"), json.dumps(forged).encode())
    publish(port, Topics.event("loa-01", "self.destruct"), b'{"v":1,"id":"abcdefgh12","type":"self.destruct",'
                                                           b'"ts":1,"from":"loa-01"}')
    publish(port, Topics.status("stranger"), b'{"status":"online"}')
    publish(port, "lp/v1/agent/UPPER/status", b'{"status":"online"}')
    wait_for_text(controller.proc.log_text, "unknown_agent")
    text = wait_for_text(controller.proc.log_text, "wrong_sender")
    assert "not_json" in text and "bad_data" in text
    assert controller.proc.alive
    status, health = controller.get("/healthz")
    assert status == 200 and health["mqtt"] == "connected"
    # The real agent's retained status was overwritten by junk, which was dropped: it still counts as online.
    assert controller.device("loa-01")["online"]
    status, body = controller.post("/api/v1/announcements", {"text": "Vẫn hoạt động.", "targets": ["loa-01"]})
    assert status == 202
    controller.wait_deliveries(body["id"], {"played"}, timeout=30)
