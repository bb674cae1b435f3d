"""The camera API end to end: a controller under uvicorn, Mosquitto, and a real H.264 RTSP camera stream."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.tools.local_stack import free_port, http_json, register_agent
from devices.protocol import (
    CameraDiscovered,
    DiscoveredCamera,
    Topics,
    Verifier,
    make_event,
    parse_topic,
    public_key_from_text,
)
from tests.conftest import Broker, ControllerHandle
from tests.mqtt_tools import client_for, publish
from tests.rtsp_server import RtspServer
from tests.test_camera_gateway import _gst_available

cv2 = pytest.importorskip("cv2")
pytestmark = pytest.mark.skipif(_gst_available() is not None, reason=str(_gst_available()))

PASSWORD = "Kh0ng-ai-biet-9"
CAMERA_ENV = {"LP_CAMERA_VIEWER_GRACE_S": "1", "LP_CAMERA_FAULT_AFTER_S": "1", "LP_CAMERA_RECONNECT_MAX_S": "1",
              "LP_CAMERA_HEALTH_INTERVAL_S": "2", "LP_CAMERA_MAX_VIEWERS": "3"}


@pytest.fixture
def rtsp(tmp_path: Path) -> Iterator[RtspServer]:
    """A live H.264 test pattern on a free port, killed in teardown."""
    with RtspServer(free_port(), tmp_path / "rtsp.log") as server:
        yield server


def start_cam_controller(controller_factory: Any, broker: Broker) -> ControllerHandle:
    """A controller with short camera timings (grace, fault, back-off), stopped by the factory."""
    handle: ControllerHandle = controller_factory(broker.port, env=CAMERA_ENV)
    handle.wait_for(lambda: handle.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    return handle


@pytest.fixture
def cam_controller(controller_factory: Any, broker: Broker) -> ControllerHandle:
    """A controller with short camera timings."""
    return start_cam_controller(controller_factory, broker)


def staff_token(ctl: ControllerHandle, username: str, role: str) -> str:
    status, body = ctl.post("/api/v1/users", {"username": username, "password": "mat-khau-dai-1", "role": role})
    assert status == 201, body
    status, body = ctl.post("/api/v1/auth/login", {"username": username, "password": "mat-khau-dai-1"}, token=None)
    assert status == 200, body
    token: str = body["token"]
    return token


def role_tokens(ctl: ControllerHandle) -> dict[str, str]:
    """Session tokens of a technician, a security guard and an officer."""
    return {role: staff_token(ctl, f"u-{role}", role) for role in ("technician", "security", "officer")}


@pytest.fixture
def tokens(cam_controller: ControllerHandle) -> dict[str, str]:
    return role_tokens(cam_controller)


def register_rtsp(ctl: ControllerHandle, token: str | None, rtsp: RtspServer, camera_id: str = "cong-phuong",
                  **extra: Any) -> tuple[int, Any]:
    body = {"id": camera_id, "name": "Cổng UBND phường", "zone": "khu-pho-1", "host": "127.0.0.1",
            "onvif": False, "stream_uri": rtsp.url, "username": "admin", "password": PASSWORD, **extra}
    return ctl.post("/api/v1/cameras", body, token=token)


class MjpegClient:
    """Reads a ``multipart/x-mixed-replace`` stream part by part, as a browser would."""

    def __init__(self, api: str, path: str, token: str) -> None:
        host, port = api.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=20)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("Content-Type") or ""

    def frame(self) -> tuple[dict[str, str], bytes]:
        """The next part's headers and JPEG body."""
        line = self.resp.readline()
        while line.strip() == b"":
            line = self.resp.readline()
        assert line.strip() == b"--frame", line
        headers: dict[str, str] = {}
        while (line := self.resp.readline().strip()):
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        body = self.resp.read(int(headers["content-length"]))
        return headers, body

    def close(self) -> None:
        self.conn.close()


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image


def get_bytes(ctl: ControllerHandle, path: str, token: str) -> tuple[int, bytes, str]:
    host, port = ctl.api.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type") or ""
    finally:
        conn.close()


def test_live_view_two_viewers_one_reader_snapshot_and_no_password_anywhere(
        cam_controller: ControllerHandle, tokens: dict[str, str], rtsp: RtspServer) -> None:
    ctl = cam_controller
    status, cam = register_rtsp(ctl, tokens["technician"], rtsp)
    assert status == 201, cam
    assert cam["has_password"] is True and cam["profiles"][0]["width"] == 640
    assert PASSWORD not in json.dumps(cam)

    viewers = [MjpegClient(ctl.api, "/api/v1/cameras/cong-phuong/live.mjpeg", tokens["security"]) for _ in range(2)]
    try:
        for v in viewers:
            assert v.status == 200 and v.content_type.startswith("multipart/x-mixed-replace")
        for v in viewers:
            seqs = []
            for _ in range(3):
                headers, jpeg = v.frame()
                assert decode(jpeg).shape == (360, 640, 3)
                seqs.append(int(headers["x-frame-seq"]))
            assert seqs == sorted(set(seqs))
        status, st = ctl.get("/api/v1/cameras/cong-phuong/status", token=tokens["security"])
        assert status == 200, st
        assert st["online"] and st["reader"]["viewers"] == 2 and st["reader"]["running"]
        assert (st["reader"]["width"], st["reader"]["height"]) == (640, 360) and st["reader"]["fps"] > 5
        assert st["reader"]["reconnects"] == 0, "two viewers must share one reader"
        status, jpeg, ctype = get_bytes(ctl, "/api/v1/cameras/cong-phuong/snapshot.jpg", tokens["security"])
        assert status == 200 and ctype == "image/jpeg"
        assert decode(jpeg).shape == (360, 640, 3)
        # The site allows 3 live views at once (LP_CAMERA_MAX_VIEWERS): a third is served, a fourth is not.
        viewers.append(MjpegClient(ctl.api, "/api/v1/cameras/cong-phuong/live.mjpeg", tokens["security"]))
        decode(viewers[-1].frame()[1])
        status, body, _ = get_bytes(ctl, "/api/v1/cameras/cong-phuong/live.mjpeg", tokens["security"])
        assert status == 503 and b"too many live views" in body
    finally:
        for v in viewers:
            v.close()
    # Both left: the reader stops after the (1 s) grace period.
    ctl.wait_for(lambda: ctl.get("/api/v1/cameras/cong-phuong/status")[1]["reader"] is None, 10, "reader stopped")
    # Without a reader the snapshot still works (one frame is read for it).
    status, jpeg, _ = get_bytes(ctl, "/api/v1/cameras/cong-phuong/snapshot.jpg", tokens["security"])
    assert status == 200 and decode(jpeg).shape == (360, 640, 3)

    status, listed = ctl.get("/api/v1/cameras", token=tokens["technician"])
    assert status == 200 and [c["id"] for c in listed] == ["cong-phuong"]
    assert PASSWORD not in json.dumps(listed)
    assert PASSWORD not in ctl.proc.log_text()
    db_bytes = b"".join(p.read_bytes() for p in ctl.data_dir.glob("loaphuong.sqlite3*"))
    assert PASSWORD.encode() not in db_bytes, "the camera password must be encrypted at rest"
    key = ctl.data_dir / "camera-secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_roles(cam_controller: ControllerHandle, tokens: dict[str, str], rtsp: RtspServer) -> None:
    ctl = cam_controller
    assert register_rtsp(ctl, tokens["security"], rtsp)[0] == 403, "security staff do not register cameras"
    assert register_rtsp(ctl, tokens["officer"], rtsp)[0] == 403
    assert register_rtsp(ctl, None, rtsp)[0] == 401
    assert register_rtsp(ctl, tokens["technician"], rtsp)[0] == 201
    for path in ("/api/v1/cameras/cong-phuong/live.mjpeg", "/api/v1/cameras/cong-phuong/snapshot.jpg",
                 "/api/v1/camera-events", "/api/v1/camera-events/stream"):
        assert get_bytes(ctl, path, tokens["officer"])[0] == 403, path
        assert get_bytes(ctl, path, tokens["technician"])[0] == 403, path
    assert ctl.get("/api/v1/cameras", token=tokens["officer"])[0] == 403
    assert ctl.get("/api/v1/cameras", token=tokens["security"])[0] == 200
    status, _ = http_json("PUT", ctl.api + "/api/v1/cameras/cong-phuong/motion", tokens["officer"], {"enabled": True})
    assert status == 403
    status, _ = http_json("DELETE", ctl.api + "/api/v1/cameras/cong-phuong", tokens["security"])
    assert status == 403
    assert ctl.post("/api/v1/cameras/cong-phuong/ptz/stop", {}, token=tokens["officer"])[0] == 403
    status, _ = http_json("DELETE", ctl.api + "/api/v1/cameras/cong-phuong", tokens["technician"])
    assert status == 204
    assert ctl.get("/api/v1/cameras/cong-phuong", token=tokens["security"])[0] == 404


def test_bad_input_gets_clear_errors(cam_controller: ControllerHandle, tokens: dict[str, str],
                                     rtsp: RtspServer) -> None:
    ctl, tech = cam_controller, tokens["technician"]
    closed = free_port()
    status, body = register_rtsp(ctl, tech, rtsp, stream_uri=f"rtsp://127.0.0.1:{closed}/cam")
    assert status == 422 and body["detail"]["reason"] == "unreachable", body
    status, body = register_rtsp(ctl, tech, rtsp, stream_uri="http://127.0.0.1:8080/video.mjpg")
    assert status == 422 and "rtsp" in json.dumps(body), body
    status, body = register_rtsp(ctl, tech, rtsp, stream_uri=f"rtsp://admin:{PASSWORD}@127.0.0.1:{rtsp.port}/cam")
    assert status == 422 and PASSWORD not in json.dumps(body), body
    status, body = register_rtsp(ctl, tech, rtsp, stream_uri=f"rtsp://127.0.0.1:{rtsp.port}/no-such-path")
    assert status == 422 and body["detail"]["reason"] == "no_video", body
    # An ONVIF camera that does not answer.
    status, body = ctl.post("/api/v1/cameras", {"id": "khong-co", "host": "127.0.0.1", "port": closed,
                                                "username": "admin", "password": PASSWORD}, token=tech)
    assert status == 422 and body["detail"]["reason"] == "unreachable", body
    assert PASSWORD not in json.dumps(body)
    status, body = register_rtsp(ctl, tech, rtsp, camera_id="Bad Id")
    assert status == 422
    status, body = register_rtsp(ctl, tech, rtsp, agent_id="no-such-agent")
    assert status == 404, body
    assert register_rtsp(ctl, tech, rtsp)[0] == 201
    assert register_rtsp(ctl, tech, rtsp)[0] == 409
    assert ctl.post("/api/v1/cameras/cong-phuong/ptz/move", {"pan": 0.5}, token=tokens["security"])[0] == 409
    assert ctl.post("/api/v1/cameras/cong-phuong/ptz/move", {"pan": 5}, token=tokens["security"])[0] == 422
    assert get_bytes(ctl, "/api/v1/cameras/nope/live.mjpeg", tokens["security"])[0] == 404
    status, _ = http_json("PUT", ctl.api + "/api/v1/cameras/cong-phuong/motion", tokens["security"],
                          {"enabled": True, "sensitivity": 3})
    assert status == 422
    # The controller carried on: the good camera still streams.
    v = MjpegClient(ctl.api, "/api/v1/cameras/cong-phuong/live.mjpeg", tokens["security"])
    try:
        decode(v.frame()[1])
    finally:
        v.close()
    assert PASSWORD not in ctl.proc.log_text()


class MqttWatcher:
    """Subscribes on the test broker and keeps every message."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._ready = threading.Event()
        self.client = client_for(port)
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self._ready.wait(10), "subscription not acknowledged"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class SseClient:
    """Reads Server-Sent Events in a thread."""

    def __init__(self, api: str, path: str, token: str) -> None:
        host, port = api.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        kind, data = "", ""
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    self.events.append((kind, json.loads(data)))
                    kind, data = "", ""
        except (OSError, ValueError, AttributeError):
            pass  # closed by the test (http.client drops its file object on close)

    def close(self) -> None:
        self.conn.close()
        self._thread.join(5)


def test_motion_event_listed_streamed_and_published(cam_controller: ControllerHandle, tokens: dict[str, str],
                                                    rtsp: RtspServer, broker: Broker, controller_factory: Any) -> None:
    ctl, guard = cam_controller, tokens["security"]
    assert register_rtsp(ctl, tokens["technician"], rtsp)[0] == 201
    watcher = MqttWatcher(broker.port, "lp/v1/controller/camera/+/event/+")
    sse = SseClient(ctl.api, "/api/v1/camera-events/stream", guard)
    try:
        status, cam = http_json("PUT", ctl.api + "/api/v1/cameras/cong-phuong/motion", guard,
                                {"enabled": True, "sensitivity": 0.6, "min_frames": 2, "cooldown_s": 60,
                                 "zones": [{"name": "cong", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}]})
        assert status == 200 and cam["motion"]["enabled"], cam
        # Motion detection reads the stream without any viewer.
        ctl.wait_for(lambda: (ctl.get("/api/v1/cameras/cong-phuong/status")[1]["reader"] or {}).get("online"),
                     15, "the motion reader online")
        time.sleep(3)
        status, events = ctl.get("/api/v1/camera-events?type=camera.motion", token=guard)
        assert status == 200 and events == [], "a still scene is no motion"
        rtsp.set_pattern("ball")
        events = ctl.wait_for(lambda: ctl.get("/api/v1/camera-events?type=camera.motion", token=guard)[1], 15,
                              "a motion event")
        event = events[0]
        assert event["camera_id"] == "cong-phuong" and event["zone"] == "khu-pho-1" and event["score"] > 0
        status, jpeg, ctype = get_bytes(ctl, event["snapshot"], guard)
        assert status == 200 and ctype == "image/jpeg" and decode(jpeg).shape == (360, 640, 3)
        ctl.wait_for(lambda: any(k == "camera.motion" for k, _ in sse.events), 10, "the event on SSE")
        assert next(d["id"] for k, d in sse.events if k == "camera.motion") == event["id"]
        ctl.wait_for(lambda: watcher.messages, 10, "the event on MQTT")
        topic, payload = watcher.messages[0]
        assert topic == "lp/v1/controller/camera/cong-phuong/event/camera.motion"
        assert json.loads(payload)["id"] == event["id"]
        assert list(ctl.data_dir.glob("camera-snapshots/cong-phuong/*.jpg"))
    finally:
        sse.close()
        watcher.close()
    # After a restart, motion detection is back on by itself: a reader runs with nobody watching.
    ctl.proc.stop()
    again = start_cam_controller(controller_factory, broker)
    again.wait_for(lambda: (again.get("/api/v1/cameras/cong-phuong/status")[1]["reader"] or {}).get("online"), 20,
                   "the motion reader after a restart")
    status, st = again.get("/api/v1/cameras/cong-phuong/status", token=guard)
    assert status == 200 and st["reader"]["motion"] and st["reader"]["viewers"] == 0


def test_camera_that_stops_answering_raises_a_fault_and_viewers_resume(
        cam_controller: ControllerHandle, tokens: dict[str, str], rtsp: RtspServer) -> None:
    ctl, guard = cam_controller, tokens["security"]
    assert register_rtsp(ctl, tokens["technician"], rtsp)[0] == 201
    viewer = MjpegClient(ctl.api, "/api/v1/cameras/cong-phuong/live.mjpeg", guard)
    try:
        headers, _ = viewer.frame()
        before = int(headers["x-frame-seq"])
        rtsp.stop()
        faults = ctl.wait_for(lambda: ctl.get("/api/v1/camera-events?type=camera.fault", token=guard)[1], 20,
                              "a fault event")
        assert faults[0]["camera_id"] == "cong-phuong" and faults[0]["zone"] == "khu-pho-1"
        cam = ctl.get("/api/v1/cameras/cong-phuong", token=guard)[1]
        assert cam["status"] == "fault" and cam["fault"]
        rtsp.start()
        # The same connection carries frames again once the gateway has reconnected.
        deadline = time.monotonic() + 30
        while True:
            headers, jpeg = viewer.frame()
            if time.time() - float(headers["x-frame-time"]) < 1.0 and int(headers["x-frame-seq"]) > before:
                break
            assert time.monotonic() < deadline, "no fresh frame after the stream came back"
        decode(jpeg)
        ctl.wait_for(lambda: ctl.get("/api/v1/camera-events?type=camera.recovered", token=guard)[1], 10,
                     "a recovered event")
        assert ctl.get("/api/v1/cameras/cong-phuong", token=guard)[1]["status"] == "online"
    finally:
        viewer.close()
    # Reconnecting made OpenCV/FFmpeg complain; none of it may show the stream's credentials.
    assert PASSWORD not in ctl.proc.log_text()


def test_secret_box_and_stream_credentials(tmp_path: Path) -> None:
    from controller.cameras.secrets import KEY_FILE, SecretBox
    from controller.cameras.service import with_credentials

    box = SecretBox.load_or_create(tmp_path)
    key = tmp_path / KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    token = box.encrypt(PASSWORD)
    assert PASSWORD not in token and box.decrypt(token) == PASSWORD
    assert SecretBox.load_or_create(tmp_path).decrypt(token) == PASSWORD, "the key is kept"
    other = SecretBox.load_or_create(tmp_path / "other")
    with pytest.raises(ValueError) as err:
        other.decrypt(token)
    assert PASSWORD not in str(err.value)
    key.chmod(0o644)
    with pytest.raises(PermissionError):
        SecretBox.load_or_create(tmp_path)
    url = with_credentials("rtsp://192.0.2.7:554/Streaming/101?x=1", "admin", "p@ss:w/rd#1")
    assert url == "rtsp://admin:p%40ss%3Aw%2Frd%231@192.0.2.7:554/Streaming/101?x=1"
    assert with_credentials("rtsp://[fe80::1]/s", "a", "b") == "rtsp://a:b@[fe80::1]/s"
    assert with_credentials("rtsp://cam.local/s", "", "") == "rtsp://cam.local/s"


def test_discovery_reports_are_stored_and_discover_is_a_signed_command(
        cam_controller: ControllerHandle, tokens: dict[str, str], broker: Broker) -> None:
    ctl, tech = cam_controller, tokens["technician"]
    registered = register_agent(ctl.api, ctl.token, "loa-cam-1", ["khu-pho-1"])
    found = DiscoveredCamera(endpoint="urn:uuid:1b6f-cam", xaddrs=["http://127.0.0.1:8899/onvif/device_service"],
                             scopes=["onvif://www.onvif.org/name/Test"], types=["dn:NetworkVideoTransmitter"],
                             host="127.0.0.1")
    env = make_event("loa-cam-1", "camera.discovered", CameraDiscovered(cameras=[found]))
    publish(broker.port, Topics.event("loa-cam-1", "camera.discovered"), env.to_bytes())
    rows = ctl.wait_for(lambda: ctl.get("/api/v1/camera-discoveries", token=tech)[1], 10, "the discovery stored")
    assert rows[0]["endpoint"] == "urn:uuid:1b6f-cam" and rows[0]["agent_id"] == "loa-cam-1"
    assert rows[0]["camera_id"] is None
    # The same camera reported again is the same row.
    publish(broker.port, Topics.event("loa-cam-1", "camera.discovered"),
            make_event("loa-cam-1", "camera.discovered", CameraDiscovered(cameras=[found])).to_bytes())
    time.sleep(0.5)
    assert len(ctl.get("/api/v1/camera-discoveries", token=tech)[1]) == 1
    assert ctl.get("/api/v1/camera-discoveries", token=tokens["security"])[0] == 403

    watcher = MqttWatcher(broker.port, Topics.command("loa-cam-1", "camera.discover"))
    try:
        status, sent = ctl.post("/api/v1/cameras/discover", {"agent_id": "loa-cam-1", "timeout_ms": 1500}, token=tech)
        assert status == 202, sent
        ctl.wait_for(lambda: watcher.messages, 10, "the discover command on MQTT")
        topic, payload = watcher.messages[0]
        verifier = Verifier(public_key_from_text(registered["controller_public_key"]), "loa-cam-1", ["khu-pho-1"],
                            lambda _id, _exp: False)
        cmd = verifier.verify(payload, parse_topic(topic))
        assert cmd.envelope.id == sent["command_id"] and cmd.envelope.data["timeout_ms"] == 1500
    finally:
        watcher.close()
    assert ctl.post("/api/v1/cameras/discover", {"agent_id": "nobody"}, token=tech)[0] == 404
    assert ctl.post("/api/v1/cameras/discover", {"agent_id": "loa-cam-1"}, token=tokens["security"])[0] == 403
    # Registering a discovered camera that does not answer ONVIF: a clear error, nothing stored.
    status, body = ctl.post(f"/api/v1/camera-discoveries/{rows[0]['id']}/register",
                            {"id": "cam-lan", "username": "admin", "password": PASSWORD}, token=tech)
    assert status == 422 and body["detail"]["reason"] == "unreachable", body
    assert ctl.get("/api/v1/cameras/cam-lan", token=tech)[0] == 404


def test_snapshot_retention_by_count_age_and_size(tmp_path: Path) -> None:
    from controller.cameras.snapshots import Retention, SnapshotStore
    from controller.storage import migrate
    from controller.storage.engine import Database
    from controller.storage.models import Camera, CameraEvent

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate.upgrade(db.engine)
    store = SnapshotStore(tmp_path / "snaps", Retention(max_per_camera=3, max_days=1, max_bytes=10_000))
    now = int(time.time() * 1000)
    with db.session() as s:
        for cam in ("cam-a", "cam-b"):
            s.add(Camera(id=cam, host="127.0.0.1", port=80, password_enc="x", stream_uri="rtsp://127.0.0.1/x"))
        s.flush()
        # cam-a: five recent events of 1 kB and one two days old; cam-b: one recent event of 6 kB.
        for i in range(5):
            s.add(CameraEvent(id=f"a{i}", camera_id="cam-a", type="camera.motion", ts_ms=now - (5 - i) * 1000,
                              snapshot=store.save("cam-a", f"a{i}", b"\xff" * 1000)))
        s.add(CameraEvent(id="old", camera_id="cam-a", type="camera.motion", ts_ms=now - 2 * 86_400_000,
                          snapshot=store.save("cam-a", "old", b"\xff" * 1000)))
        s.add(CameraEvent(id="b0", camera_id="cam-b", type="camera.motion", ts_ms=now - 500,
                          snapshot=store.save("cam-b", "b0", b"\xff" * 6000)))
        s.flush()
        removed = store.enforce(s, "cam-a")
    with db.session() as s:
        kept = {e.id for e in s.query(CameraEvent).filter(CameraEvent.snapshot.is_not(None))}
        rows = s.query(CameraEvent).count()
    # Age drops "old", the count keeps cam-a's newest three, and 3 kB + 6 kB fit in 10 kB.
    assert kept == {"a2", "a3", "a4", "b0"} and removed == 3
    assert rows == 7, "events keep their rows; only the pictures go"
    assert sorted(p.name for p in (tmp_path / "snaps").rglob("*.jpg")) == ["a2.jpg", "a3.jpg", "a4.jpg", "b0.jpg"]
    store.retention = Retention(max_per_camera=3, max_days=1, max_bytes=7_000)
    with db.session() as s:
        assert store.enforce(s, "cam-b") == 2  # the oldest go first until 7 kB is reached
    assert sorted(p.name for p in (tmp_path / "snaps").rglob("*.jpg")) == ["a4.jpg", "b0.jpg"]
    # Rows themselves go after camera_event_max_days, with any picture they still have.
    with db.session() as s:
        s.add(CameraEvent(id="ancient", camera_id="cam-b", type="camera.fault", ts_ms=now - 400 * 86_400_000))
        s.flush()
        assert store.prune_events(s, 365) == 1
        assert store.prune_events(s, 1) == 1  # "old" (two days)
        assert {e.id for e in s.query(CameraEvent)} == {"a0", "a1", "a2", "a3", "a4", "b0"}
    db.dispose()


def test_a_replaced_secret_key_costs_only_the_passwords(cam_controller: ControllerHandle, tokens: dict[str, str],
                                                        rtsp: RtspServer, broker: Broker,
                                                        controller_factory: Any) -> None:
    from controller.cameras.secrets import KEY_FILE
    from controller.messaging.keys import write_private

    ctl = cam_controller
    assert register_rtsp(ctl, tokens["technician"], rtsp)[0] == 201
    status, _ = http_json("PUT", ctl.api + "/api/v1/cameras/cong-phuong/motion", tokens["security"],
                          {"enabled": True})
    assert status == 200
    ctl.proc.stop()
    from cryptography.fernet import Fernet

    write_private(ctl.data_dir / KEY_FILE, Fernet.generate_key())  # e.g. a restore without the key file
    again = start_cam_controller(controller_factory, broker)
    assert "cannot be decrypted" in again.proc.log_text(), "the operator is told why motion did not start"
    status, cam = again.get("/api/v1/cameras/cong-phuong", token=tokens["security"])
    assert status == 200 and cam["has_password"]
    status, jpeg, _ = get_bytes(again, "/api/v1/cameras/cong-phuong/snapshot.jpg", tokens["security"])
    assert status == 422 and b"secret_lost" in jpeg
    status, body = http_json("PATCH", again.api + "/api/v1/cameras/cong-phuong", tokens["technician"],
                             {"password": PASSWORD})
    assert status == 200, body
    status, jpeg, _ = get_bytes(again, "/api/v1/cameras/cong-phuong/snapshot.jpg", tokens["security"])
    assert status == 200 and decode(jpeg).shape == (360, 640, 3)
    # With its password back, its motion detection runs again.
    again.wait_for(lambda: (again.get("/api/v1/cameras/cong-phuong/status")[1]["reader"] or {}).get("motion"), 15,
                   "motion detection back on")
