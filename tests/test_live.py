"""Live broadcast against real components: Mosquitto, the controller, Icecast 2, two file-sink agents.

The microphone here is a WebSocket client sending the same PCM the console page sends (the browser
test is tests/test_live_browser.py).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from controller.processes import ManagedProcess
from tests.conftest import Broker, ControllerHandle, _start_controller
from tests.test_live_support import (
    heard_tone,
    relay_files,
    served_ogg_tone,
    start_icecast_for,
    tone_pcm,
    wav_samples,
)

FRAME = 1920  # 20 ms of 48 kHz mono s16le


class LiveStack:
    """A controller that knows its Icecast."""

    def __init__(self, ctl: ControllerHandle, ice_dir: Path) -> None:
        self.ctl = ctl
        self.ice_dir = ice_dir
        self.icecast: ManagedProcess | None = None
        self.ice_port = 0

    def start_icecast(self) -> None:
        self.icecast, self.ice_port = start_icecast_for(self.ctl.api, self.ice_dir)

    def stop_icecast(self) -> None:
        if self.icecast is not None:
            self.icecast.stop()
            self.icecast = None


@pytest.fixture
def live(tmp_path: Path, broker: Broker) -> Iterator[LiveStack]:
    ice_dir = tmp_path / "icecast"
    handle = _start_controller(tmp_path, broker.port, env={"LP_ICECAST_FILE": str(ice_dir / "icecast.json"),
                                                           "LP_LIVE_IDLE_SECONDS": "2"})
    stack = LiveStack(handle, ice_dir)
    try:
        handle.wait_for(lambda: handle.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
        stack.start_icecast()
        yield stack
    finally:
        stack.stop_icecast()
        handle.proc.stop()


@pytest.fixture
def controller(live: LiveStack) -> ControllerHandle:
    """The shared ``agents`` fixture registers agents against this controller."""
    return live.ctl


def ws_url(ctl: ControllerHandle, session_id: str) -> str:
    return ctl.api.replace("http://", "ws://") + f"/api/v1/live/sessions/{session_id}/audio"


def open_mic(ctl: ControllerHandle, session_id: str, token: str | None = None) -> ClientConnection:
    ws = connect(ws_url(ctl, session_id), open_timeout=5, close_timeout=5)
    ws.send(json.dumps({"token": token or ctl.token}))
    return ws


class Speaker(threading.Thread):
    """Sends PCM at real-time pace until told to stop."""

    def __init__(self, ws: ClientConnection, pcm: bytes) -> None:
        super().__init__(daemon=True)
        self.ws, self.pcm = ws, pcm
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            for i, off in enumerate(range(0, len(self.pcm), FRAME)):
                if self.halt.is_set():
                    return
                self.ws.send(self.pcm[off:off + FRAME])
                delay = t0 + (i + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except ConnectionClosed as exc:
            self.error = exc


def wait_status(ws: ClientConnection, wanted: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg.get("status") == wanted:
            return dict(msg)
        if msg.get("status") == "ended":
            raise AssertionError(f"session ended: {msg}")
    raise AssertionError(f"no {wanted} status")


def session(ctl: ControllerHandle, body: dict[str, Any], token: str | None = "") -> dict[str, Any]:
    status, created = ctl.post("/api/v1/live/sessions", body, token=token)
    assert status == 201, created
    return dict(created)


def finished_plays(ctl: ControllerHandle, session_id: str, count: int) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        status, body = ctl.get(f"/api/v1/live/sessions/{session_id}")
        plays = [p for p in body["plays"] if p["ended_at"]] if status == 200 else []
        return plays if len(plays) >= count else None
    result: list[dict[str, Any]] = ctl.wait_for(done, 20, f"{count} finished live plays")
    return result


def test_microphone_reaches_two_agents_is_recorded_and_reported(live: LiveStack, agents: Any,
                                                                tmp_path: Path) -> None:
    ctl = live.ctl
    a1, a2 = agents("loa-01"), agents("loa-02", zones=("khu-pho-2",))
    created = session(ctl, {"agents": ["loa-01"], "zones": ["khu-pho-2"], "priority": "priority",
                            "title": "Thông báo khẩn"})
    assert created["status"] == "starting" and created["targets"] == ["loa-01", "loa-02"]
    voice = tone_pcm(4.0)
    ws = open_mic(ctl, created["id"])
    talker = Speaker(ws, voice)
    talker.start()
    live_msg = wait_status(ws, "live")
    assert live_msg["targets"] == ["loa-01", "loa-02"]
    # Only the session's token opens its mount: Icecast asks the controller and refuses anyone else.
    mount = f"http://127.0.0.1:{live.ice_port}/live-{created['id']}.ogg"
    for url in (mount, mount + "?token=" + "x" * 32):
        out = subprocess.run(["ffmpeg", "-loglevel", "error", "-t", "0.5", "-i", url, "-f", "null", "-"],
                             capture_output=True, timeout=20)
        assert out.returncode != 0 and b"401" in out.stderr, out.stderr
    talker.join(15)
    ws.send(json.dumps({"end": True}))
    assert wait_status(ws, "ended")["reason"] == "ended by the officer"
    plays = finished_plays(ctl, created["id"], 2)
    assert {p["agent_id"] for p in plays} == {"loa-01", "loa-02"}
    assert all(p["outcome"] == "stopped" and p["priority"] == "priority" for p in plays), plays
    for agent in (a1, a2):
        files = relay_files(agent.files.sink_dir, f"live-{created['id']}")
        assert files, agent.log()
        assert heard_tone(files[0]) >= 1.5, f"{agent.agent_id} heard too little of the tone"
    # The record: who, when, to whom, and the recording (the same tone, about as long as spoken).
    status, listed = ctl.get("/api/v1/live/sessions")
    assert status == 200
    row = next(r for r in listed if r["id"] == created["id"])
    assert row["username"] == "admin" and row["status"] == "ended" and row["recording_available"]
    rec = tmp_path / "rec.ogg"
    import urllib.request
    req = urllib.request.Request(ctl.api + f"/api/v1/live/sessions/{created['id']}/recording",
                                 headers={"Authorization": f"Bearer {ctl.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "audio/ogg"
        rec.write_bytes(resp.read())
    wav = tmp_path / "rec.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(rec), "-ar", "48000", "-ac", "1", str(wav)],
                   check=True, timeout=30)
    samples, rate = wav_samples(wav)
    assert 3.5 <= len(samples) / rate <= 5.0
    assert heard_tone(wav) >= 3.0


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    """An upstream radio on 127.0.0.1: a 1 kHz tone as an Ogg Opus stream (served whole; the relay paces it)."""
    with served_ogg_tone(tmp_path, 20, "vov1.ogg") as url:
        yield url


def test_relay_on_demand_goes_through_the_same_path(live: LiveStack, agents: Any, upstream: str,
                                                    broker: Broker) -> None:
    ctl = live.ctl
    agent = agents("loa-01")
    created = session(ctl, {"agents": ["loa-01"], "source": "relay", "relay_url": upstream, "priority": "normal",
                            "title": "Tiếp sóng VOV1"})
    sid = created["id"]
    ctl.wait_for(lambda: ctl.get(f"/api/v1/live/sessions/{sid}")[1]["status"] == "live", 15, "relay on air")
    ctl.wait_for(lambda: relay_files(agent.files.sink_dir, f"live-{sid}"), 10, "agent relaying")
    time.sleep(3.0)
    status, ended = ctl.post(f"/api/v1/live/sessions/{sid}/end", {})
    assert status == 200 and ended["status"] == "ended" and ended["end_reason"] == "ended by admin"
    plays = finished_plays(ctl, sid, 1)
    assert plays[0]["outcome"] == "stopped" and plays[0]["priority"] == "normal"
    assert heard_tone(relay_files(agent.files.sink_dir, f"live-{sid}")[0]) >= 1.5
    # The stream dies and the controller cannot say so (broker and Icecast gone): the agent gives up on
    # its own within a few seconds and its speaker is free again.
    again = session(ctl, {"agents": ["loa-01"], "source": "relay", "relay_url": upstream, "priority": "normal"})
    ctl.wait_for(lambda: relay_files(agent.files.sink_dir, f"live-{again['id']}"), 15, "agent relaying again")
    broker.stop()
    live.stop_icecast()

    def agent_stopped() -> bool:
        return any(x.get("event") == "end" and x.get("play_id") == f"live-{again['id']}" for x in agent.sink_lines())

    # Nobody can tell the agent (broker and Icecast are gone), so an end line at all means it gave up by itself.
    ctl.wait_for(agent_stopped, 20, "the agent giving up on a dead live stream")
    broker.start()
    # Proof of play arrives once the link is back: the play failed because its stream was lost.
    lost_play = finished_plays(ctl, again["id"], 1)[0]
    assert lost_play["outcome"] == "failed" and "live stream lost" in lost_play["reason"], lost_play
    live.start_icecast()

    status, _ = ctl.post("/api/v1/live/sessions", {"agents": ["loa-01"], "source": "relay"})
    assert status == 422
    status, _ = ctl.post("/api/v1/live/sessions", {"agents": ["loa-01"], "priority": "normal"})
    assert status == 422


def test_bad_websockets_refused_one_voice_per_speaker_and_take_over(live: LiveStack, agents: Any) -> None:
    """Bad sockets are closed cleanly with the live session unaffected; then a second voice for the same
    speaker is refused naming who holds it, and an emergency takes over, both records saying so."""
    ctl = live.ctl
    agents("loa-01")
    agents("loa-02")
    voice = tone_pcm(20.0)  # made before the socket opens: slow on a busy machine, and the socket times out
    first = session(ctl, {"agents": ["loa-01"], "priority": "priority"})
    ws1 = open_mic(ctl, first["id"])
    t1 = Speaker(ws1, voice)
    t1.start()
    try:
        wait_status(ws1, "live")
        other = session(ctl, {"agents": ["loa-02"]})
        # Garbage instead of the token.
        ws = connect(ws_url(ctl, other["id"]), open_timeout=5)
        ws.send(b"\x00\xff garbage")
        assert _closed(ws) == 1008
        # Nothing at all.
        ws = connect(ws_url(ctl, other["id"]), open_timeout=5)
        assert _closed(ws) == 1008
        # A user without the role.
        status, _ = ctl.post("/api/v1/users", {"username": "bao-ve", "password": "mat-khau-dai-1",
                                               "role": "security"})
        assert status == 201
        status, login = ctl.post("/api/v1/auth/login", {"username": "bao-ve", "password": "mat-khau-dai-1"},
                                 token=None)
        assert _closed(open_mic(ctl, other["id"], login["token"])) == 1008
        # Someone else's session: an officer who did not create it.
        status, _ = ctl.post("/api/v1/users", {"username": "can-bo", "password": "mat-khau-dai-1", "role": "officer"})
        status, login = ctl.post("/api/v1/auth/login", {"username": "can-bo", "password": "mat-khau-dai-1"},
                                 token=None)
        assert _closed(open_mic(ctl, other["id"], login["token"])) == 1008
        # The owner, but an oversized frame.
        ws = open_mic(ctl, other["id"])
        ws.send(b"\x00" * 40_000)
        assert _closed(ws) == 1009
        status, body = ctl.get(f"/api/v1/live/sessions/{other['id']}")
        assert body["status"] in ("ended", "failed")
        # The live session never noticed.
        assert t1.is_alive() and t1.error is None
        assert ctl.get(f"/api/v1/live/sessions/{first['id']}")[1]["status"] == "live"
        status, refused = ctl.post("/api/v1/live/sessions", {"agents": ["loa-01"], "priority": "priority"})
        assert status == 409 and refused["holder"]["username"] == "admin", refused
        assert refused["holder"]["session_id"] == first["id"]
        voice2 = tone_pcm(3.0, freq=1500)
        second = session(ctl, {"agents": ["loa-01"], "priority": "emergency"})
        ws2 = open_mic(ctl, second["id"])
        t2 = Speaker(ws2, voice2)
        t2.start()
        wait_status(ws2, "live")
        t2.join(10)
        ws2.send(json.dumps({"end": True}))
        wait_status(ws2, "ended")
        notes_first = ctl.get(f"/api/v1/live/sessions/{first['id']}")[1]["notes"]
        notes_second = ctl.get(f"/api/v1/live/sessions/{second['id']}")[1]["notes"]
        assert notes_first[0]["kind"] == "taken_over" and notes_first[0]["session"] == second["id"]
        assert notes_second[0]["kind"] == "took_over" and notes_second[0]["session"] == first["id"]
        plays = finished_plays(ctl, first["id"], 1)
        assert plays[0]["outcome"] == "stopped"
    finally:
        t1.halt.set()
        t1.join(5)
        ws1.close()


def _closed(ws: ClientConnection, timeout: float = 8) -> int | None:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    except TimeoutError:
        return None
    return None




def _login(ctl: ControllerHandle, username: str, role: str, zones: list[str] | None = None) -> str:
    status, body = ctl.post("/api/v1/users", {"username": username, "password": "mat-khau-dai-1", "role": role,
                                              "zones": zones or []})
    assert status == 201, body
    status, login = ctl.post("/api/v1/auth/login", {"username": username, "password": "mat-khau-dai-1"}, token=None)
    assert status == 200, login
    return str(login["token"])


def test_failed_take_over_leaves_the_agents_with_their_session_and_scope_is_enforced(live: LiveStack,
                                                                                      agents: Any) -> None:
    """An emergency aimed at an agent already live, whose socket never brings valid audio, takes nothing:
    the agent keeps playing the first session and both records say the take-over failed. Then: users
    limited to some zones cannot go live beyond them, and recordings are for approvers and admins."""
    ctl = live.ctl
    agent = agents("loa-01")
    agents("loa-02", zones=("khu-pho-2",))
    voice = tone_pcm(20.0)  # made before the socket opens: slow on a busy machine, and the socket times out
    first = session(ctl, {"agents": ["loa-01"], "priority": "priority"})
    ws1 = open_mic(ctl, first["id"])
    t1 = Speaker(ws1, voice)
    t1.start()
    try:
        wait_status(ws1, "live")
        ctl.wait_for(lambda: relay_files(agent.files.sink_dir, f"live-{first['id']}"), 10, "agent playing")
        second = session(ctl, {"agents": ["loa-01"], "priority": "emergency"})
        ws2 = open_mic(ctl, second["id"])
        ws2.send(b"\x00" * 40_000)  # its first audio is refused: the session fails before it is on air
        assert _closed(ws2) == 1009
        failed = ctl.get(f"/api/v1/live/sessions/{second['id']}")[1]
        assert failed["status"] == "failed" and failed["plays"] == []
        assert [n["kind"] for n in failed["notes"]] == ["takeover_failed"], failed["notes"]
        assert failed["notes"][0]["session"] == first["id"] and "over 32768 bytes" in failed["notes"][0]["reason"]
        kept = ctl.get(f"/api/v1/live/sessions/{first['id']}")[1]
        assert kept["status"] == "live" and [n["kind"] for n in kept["notes"]] == ["takeover_failed"]
        assert kept["notes"][0]["session"] == second["id"] and kept["notes"][0]["priority"] == "emergency"
        # The agent never stopped: the first session's play is still sounding, and still growing.
        wav = relay_files(agent.files.sink_dir, f"live-{first['id']}")[0]
        size = wav.stat().st_size
        time.sleep(1.5)
        assert wav.stat().st_size > size and not any(
            x.get("event") == "end" and x.get("play_id") == f"live-{first['id']}" for x in agent.sink_lines())

        # Zone scope: an officer of khu-pho-2 only.
        scoped = _login(ctl, "can-bo-kp2", "officer", ["khu-pho-2"])
        for body in ({"zones": ["khu-pho-1"]}, {"zones": ["khu-pho-2", "khu-pho-1"]}, {"agents": ["loa-01"]},
                     {"agents": ["loa-02", "loa-01"]}, {"agents": ["loa-02"], "zones": ["khu-pho-1"]}):
            status, refused = ctl.post("/api/v1/live/sessions", {**body, "priority": "emergency"}, token=scoped)
            assert status == 403 and "khu-pho-2" in refused["detail"], (body, refused)
        own = session(ctl, {"agents": ["loa-02"], "zones": ["khu-pho-2"], "priority": "priority"}, token=scoped)
        assert own["targets"] == ["loa-02"]
        status, _ = ctl.post(f"/api/v1/live/sessions/{own['id']}/end", {}, token=scoped)
        assert status == 200
    finally:
        t1.halt.set()
        t1.join(5)
        with contextlib.suppress(ConnectionClosed):
            ws1.send(json.dumps({"end": True}))
        ws1.close()
    ctl.wait_for(lambda: ctl.get(f"/api/v1/live/sessions/{first['id']}")[1]["recording_available"], 15,
                 "first session's recording")
    # Recordings: approvers and admins, not a plain officer.
    path = f"/api/v1/live/sessions/{first['id']}/recording"
    for role, wanted in (("officer", 403), ("approver", 200), ("admin", 200)):
        token = _login(ctl, f"nghe-{role}", role)
        assert _status(ctl, path, token) == wanted, role


def _status(ctl: ControllerHandle, path: str, token: str) -> int:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(ctl.api + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
