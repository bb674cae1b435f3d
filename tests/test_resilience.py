"""Links drop: the broker restarts mid-session, the controller loses it, the agent keeps its proof of play."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import AgentFactory, Broker, ControllerHandle
from tests.helpers import START_TOLERANCE_MS
from tests.mqtt_tools import wait_for_text

LONG_TEXT = " ".join(["Thông báo: phường tổ chức tiêm chủng tại trạm y tế từ bảy giờ sáng."] * 4)


def test_broker_restart_mid_play_delays_but_never_loses_proof_of_play(
        broker: Broker, controller: ControllerHandle, agents: AgentFactory) -> None:
    agent = agents("loa-01")
    status, body = controller.post("/api/v1/announcements", {"text": LONG_TEXT, "targets": ["loa-01"]})
    assert status == 202
    controller.wait_deliveries(body["id"], {"playing"}, timeout=30)

    broker.stop()
    # The play ends while the broker is gone: play.finished can only wait on the agent's disk.
    controller.wait_for(lambda: any(line["event"] == "end" for line in agent.sink_lines()), 60, "the play to end")
    time.sleep(0.5)
    assert agent.proc.alive
    _, during = controller.get("/healthz")
    assert during["mqtt"] == "disconnected"

    broker.start()
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=60)
    play = ann["deliveries"][0]["play"]
    assert play["outcome"] == "completed" and play["ended_at"] is not None
    controller.wait_for(lambda: controller.device("loa-01")["online"], 30, "agent back online")
    assert agent.log().count("mqtt connected") >= 2
    # Once acknowledged, the agent's outbox drains.
    controller.wait_for(lambda: (controller.device("loa-01")["state"] or {}).get("unacked_events") == 0, 30,
                        "the agent's outbox to drain")


def test_api_serves_while_broker_is_down_and_commands_go_out_when_it_returns(
        broker: Broker, controller: ControllerHandle, agents: AgentFactory) -> None:
    agent = agents("loa-01")
    broker.stop()
    controller.wait_for(lambda: controller.get("/healthz")[1]["mqtt"] == "disconnected", 15, "link down")
    status, body = controller.post("/api/v1/announcements", {"text": "Bản tin khi mất kết nối.",
                                                             "targets": ["loa-01"], "priority": "priority"})
    assert status == 202
    controller.wait_for(lambda: controller.announcement(body["id"])["status"] == "sent", 20, "speech rendered")
    assert controller.announcement(body["id"])["deliveries"][0]["status"] == "queued"
    broker.start()
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=60)
    assert ann["deliveries"][0]["play"]["outcome"] == "completed"
    assert agent.proc.alive


def test_agent_restart_keeps_an_accepted_future_play(controller: ControllerHandle, agents: AgentFactory,
                                                     tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from controller.tools.local_stack import start_agent

    agent = agents("loa-01")
    start_at = (datetime.now(UTC) + timedelta(seconds=8)).isoformat()
    status, body = controller.post("/api/v1/announcements",
                                   {"text": "Hẹn giờ phát.", "targets": ["loa-01"], "start_at": start_at})
    assert status == 202
    controller.wait_deliveries(body["id"], {"accepted"}, timeout=20)
    agent.proc.stop()
    wait_for_text(agent.log, "stopping")
    agent.proc = start_agent(agent.files, tmp_path / "loa-01-again.log")
    wait_for_text(agent.log, "restoring accepted play")
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=30)
    assert abs(ann["deliveries"][0]["play"]["start_offset_ms"]) <= START_TOLERANCE_MS


def test_controller_restart_loses_no_queued_command(broker: Broker, controller: ControllerHandle,
                                                    agents: AgentFactory, tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    from controller.tools.local_stack import start_controller

    agents("loa-01")
    broker.stop()
    status, body = controller.post("/api/v1/announcements", {"text": "Giữ lệnh qua khởi động lại.",
                                                             "targets": ["loa-01"]})
    assert status == 202
    controller.wait_for(lambda: controller.announcement(body["id"])["status"] == "sent", 20, "speech rendered")
    controller.proc.stop()  # the signed command exists only in the controller's database now
    broker.start()
    port = urlsplit(controller.api).port
    assert port is not None
    controller.proc = start_controller(controller.data_dir, port, broker.port, tmp_path / "controller-again.log")
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=60)
    assert ann["deliveries"][0]["play"]["outcome"] == "completed"
    assert "resuming 1 queued deliveries" in controller.proc.log_text()
