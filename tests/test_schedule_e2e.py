"""Schedules against real Mosquitto, controller and agents: offline playback, quiet hours, relays."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from controller.tools.local_stack import start_controller
from tests.conftest import AgentFactory, Broker, ControllerHandle, RunningAgent
from tests.helpers import START_TOLERANCE_MS

SITE = ZoneInfo("Asia/Ho_Chi_Minh")


def at(seconds: float) -> str:
    """An aware ISO time ``seconds`` from now."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def create_item(controller: ControllerHandle, body: dict[str, Any]) -> dict[str, Any]:
    status, item = controller.post("/api/v1/schedule/items", body)
    assert status == 201, item
    assert isinstance(item, dict)
    return item


def wait_window(controller: ControllerHandle, agent_id: str, version: int = 1) -> None:
    controller.wait_for(lambda: ((controller.device(agent_id).get("state") or {}).get("schedule_version") or 0)
                        >= version, 30, f"{agent_id} applying schedule window v{version}")


def sink_starts(agent: RunningAgent, play_id_prefix: str) -> list[dict[str, Any]]:
    return [line for line in agent.sink_lines() if line["event"] == "start"
            and line["play_id"].startswith(play_id_prefix)]


def test_agent_plays_its_schedule_with_broker_and_controller_down(broker: Broker, controller: ControllerHandle,
                                                                  agents: AgentFactory, tmp_path: Path) -> None:
    agent = agents("loa-01")
    item = create_item(controller, {"title": "Bản tin sáng", "content": [
        {"kind": "tts", "text": "Kính thưa bà con, đây là bản tin của phường."}],
        "targets": {"agents": ["loa-01"]}, "start": at(14)})
    start_ms = round(datetime.fromisoformat(item["start"]).timestamp() * 1000)
    wait_window(controller, "loa-01")
    sha = item["segments"][0]["sha256"]
    media = agent.files.data_dir / "media" / sha
    controller.wait_for(media.exists, 20, "media fetched ahead")

    controller.proc.stop()
    broker.stop()
    deadline = start_ms / 1000 + item["duration_ms"] / 1000 + 3
    while time.time() < deadline and not [ln for ln in agent.sink_lines() if ln["event"] == "end"]:
        time.sleep(0.2)
    starts = sink_starts(agent, item["id"])
    assert len(starts) == 1, agent.log()[-3000:]
    assert abs(starts[0]["actual_start"] - start_ms) <= START_TOLERANCE_MS, starts[0]["actual_start"] - start_ms

    broker.start()
    port = urlsplit(controller.api).port
    assert port is not None
    controller.proc = start_controller(controller.data_dir, port, broker.port, tmp_path / "controller-again.log")

    def reported() -> list[dict[str, Any]]:
        status, plays = controller.get(f"/api/v1/plays?item_id={item['id']}")
        assert status == 200
        return plays if plays and plays[0]["outcome"] else []

    plays = controller.wait_for(reported, 60, "proof of play after the link returned")
    assert len(plays) == 1, plays  # none lost, none duplicated
    assert plays[0]["outcome"] == "completed"
    assert abs(plays[0]["start_offset_ms"]) <= START_TOLERANCE_MS
    status, report = controller.get(f"/api/v1/reports/items/{item['id']}")
    assert status == 200
    assert report["occurrences"][0]["played_in_full"] == 1


def test_quiet_hours_hold_back_normal_items_but_not_emergencies(controller: ControllerHandle,
                                                                agents: AgentFactory) -> None:
    agent = agents("loa-01", zones=("khu-pho-1",))
    now_local = datetime.now(SITE)
    quiet = {"start": (now_local - timedelta(hours=1)).strftime("%H:%M"),
             "end": (now_local + timedelta(hours=1)).strftime("%H:%M")}
    status, zone = _put(controller, "/api/v1/zones/khu-pho-1", {"name": "Khu phố 1", "quiet_hours": [quiet]})
    assert status == 200, zone
    normal = create_item(controller, {"content": [{"kind": "tts", "text": "Thông báo thường lệ."}],
                                      "targets": {"zones": ["khu-pho-1"]}, "start": at(10)})
    urgent = create_item(controller, {"priority": "emergency",
                                      "content": [{"kind": "tts", "text": "Khẩn cấp: nước lên nhanh."}],
                                      "targets": {"zones": ["khu-pho-1"]}, "start": at(12)})
    status, upcoming = controller.get("/api/v1/schedule/upcoming?hours=1")
    assert status == 200
    assert [p["item_id"] for p in upcoming["plays"]] == [urgent["id"]]
    assert any(b["item_id"] == normal["id"] and "quiet" in b["reason"] for b in upcoming["blocked"])

    def played() -> list[dict[str, Any]]:
        status, plays = controller.get(f"/api/v1/plays?item_id={urgent['id']}&outcome=completed")
        return plays if status == 200 else []

    controller.wait_for(played, 40, "the emergency played through quiet hours")
    assert not sink_starts(agent, normal["id"])
    status, plays = controller.get(f"/api/v1/plays?item_id={normal['id']}")
    assert plays == []


def _put(controller: ControllerHandle, path: str, body: Any) -> tuple[int, Any]:
    from controller.tools.local_stack import http_json

    return http_json("PUT", controller.api + path, controller.token, body)


@pytest.fixture
def stream_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """An HTTP server on 127.0.0.1 serving a 20 s tone as a WAV stream; ``/short`` serves 1.5 s once, then 404."""
    tone = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=20:sample_rate=48000", "-ac", "1", str(tone)],
                   check=True, timeout=30)
    short = tmp_path / "short.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(tone), "-t", "1.5", str(short)],
                   check=True, timeout=30)
    hits: dict[str, int] = {"/live": 0, "/short": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] = hits.get(self.path, 0) + 1
            if self.path == "/live" or (self.path == "/short" and hits["/short"] == 1):
                data = (tone if self.path == "/live" else short).read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the agent hangs up when its window ends
                    self.wfile.write(data)
                return
            self.send_error(404)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_relay_plays_a_live_stream_for_its_window(controller: ControllerHandle, agents: AgentFactory,
                                                  stream_server: tuple[str, dict[str, int]]) -> None:
    base, _hits = stream_server
    agent = agents("loa-01")
    item = create_item(controller, {"title": "Tiếp sóng VOV1", "content": [
        {"kind": "relay", "url": f"{base}/live", "duration_s": 4}],
        "targets": {"agents": ["loa-01"]}, "start": at(6)})

    def finished() -> list[dict[str, Any]]:
        status, plays = controller.get(f"/api/v1/plays?item_id={item['id']}")
        return plays if status == 200 and plays and plays[0]["outcome"] else []

    plays = controller.wait_for(finished, 40, "relay proof of play")
    assert plays[0]["outcome"] == "completed", plays
    assert plays[0]["sha256"] is None
    assert 3500 <= plays[0]["duration_ms"] <= 5500
    start = sink_starts(agent, item["id"])[0]
    with wave.open(str(agent.files.sink_dir / start["file"]), "rb") as w:
        seconds = w.getnframes() / w.getframerate()
    assert 3.0 <= seconds <= 4.6, seconds


def test_relay_stream_that_dies_is_a_recorded_failure(controller: ControllerHandle, agents: AgentFactory,
                                                     stream_server: tuple[str, dict[str, int]]) -> None:
    base, hits = stream_server
    agents("loa-01")
    item = create_item(controller, {"content": [{"kind": "relay", "url": f"{base}/short", "duration_s": 6}],
                                    "targets": {"agents": ["loa-01"]}, "start": at(6)})

    def finished() -> list[dict[str, Any]]:
        status, plays = controller.get(f"/api/v1/plays?item_id={item['id']}")
        return plays if status == 200 and plays and plays[0]["outcome"] else []

    plays = controller.wait_for(finished, 40, "relay proof of play")
    assert plays[0]["outcome"] == "failed", plays
    assert "lost" in plays[0]["reason"]
    assert hits["/short"] >= 2  # it tried to reconnect
