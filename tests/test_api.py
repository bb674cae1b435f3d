"""The controller's HTTP API: auth on every endpoint but health, clear 422s, a media store that never leaks."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.tools.local_stack import http_json
from tests.conftest import AgentFactory, ControllerHandle


def raw_get(url: str, token: str | None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def messages(body: Any) -> str:
    return " ".join(str(item.get("msg", "")) for item in body["detail"]) if isinstance(body["detail"], list) \
        else str(body["detail"])


def test_only_health_is_open(controller: ControllerHandle) -> None:
    status, health = controller.get("/healthz", token=None)
    assert status == 200 and health["status"] == "ok" and health["mqtt"] == "connected"
    for path in ("/api/v1/devices", "/api/v1/plays", "/api/v1/announcements/x", "/media/" + "a" * 64):
        assert controller.get(path, token=None)[0] == 401, path
        assert controller.get(path, token="wrong-token-0123456789")[0] == 401, path
    assert controller.post("/api/v1/announcements", {"text": "x", "targets": ["all"]}, token=None)[0] == 401
    assert controller.post("/api/v1/devices", {"id": "loa-09"}, token=None)[0] == 401


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"text": "", "targets": ["loa-01"]}, 422, "text is empty"),
    ({"text": "   \n\t ", "targets": ["loa-01"]}, 422, "text is empty"),
    ({"text": "a" * 5001, "targets": ["loa-01"]}, 422, "limit is 5000"),
    ({"text": "Xin chào", "targets": ["loa-01", "loa-77", "ghost"]}, 422, "unknown agent(s): loa-77, ghost"),
    ({"text": "Xin chào", "targets": ["all", "loa-01"]}, 422, "cannot be combined"),
    ({"text": "Xin chào", "targets": []}, 422, "at least 1"),
    ({"text": "Xin chào", "targets": ["loa-01"], "priority": "urgent"}, 422, "normal"),
    ({"text": "Xin chào", "targets": ["loa-01"], "start_at": "2020-01-01T00:00:00+07:00"}, 422, "in the past"),
    ({"text": "Xin chào", "targets": ["loa-01"], "start_at": "2030-01-01T00:00:00"}, 422, "timezone"),
    ({"text": "Xin chào", "targets": ["loa-01"], "colour": "red"}, 422, "Extra inputs"),
])
def test_bad_announcements_get_clear_422s(controller: ControllerHandle, agents: AgentFactory,
                                          body: dict[str, Any], status: int, needle: str) -> None:
    agents("loa-01", wait_online=False)
    got, resp = controller.post("/api/v1/announcements", body)
    assert got == status, resp
    assert needle in messages(resp), resp


def test_oversized_body_is_refused_before_it_is_read(controller: ControllerHandle) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(controller.api)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        # Announce 2 MB and send none of it: the answer must come from the headers alone.
        conn.putrequest("POST", "/api/v1/announcements")
        conn.putheader("Authorization", f"Bearer {controller.token}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(2_000_000))
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413
        assert b"over" in resp.read()
    finally:
        conn.close()


def test_all_with_no_agents_registered_is_a_422(controller: ControllerHandle) -> None:
    status, body = controller.post("/api/v1/announcements", {"text": "Xin chào", "targets": ["all"]})
    assert status == 422 and "no agents" in messages(body)


def test_future_announcement_is_accepted_and_reported(controller: ControllerHandle, agents: AgentFactory) -> None:
    agents("loa-01", wait_online=False)
    start = datetime.now(UTC) + timedelta(hours=2)
    status, body = controller.post("/api/v1/announcements", {"text": "Họp tổ dân phố lúc 19h30.", "targets": ["all"],
                                                             "start_at": start.isoformat()})
    assert status == 202 and body["targets"] == ["loa-01"]
    ann = controller.wait_for(lambda: (a := controller.announcement(body["id"]))["status"] == "sent" and a, 20,
                              "rendering")
    assert ann["start_at"] is not None
    assert abs(datetime.fromisoformat(ann["start_at"]).timestamp() - start.timestamp()) < 0.01
    assert ann["media"]["duration_ms"] > 500 and ann["media"]["mime"] == "audio/ogg"
    assert controller.get("/api/v1/announcements/doesnotexist")[0] == 404


def test_device_registration(controller: ControllerHandle) -> None:
    status, body = controller.post("/api/v1/devices", {"id": "loa-01", "name": "Loa chợ", "zones": ["khu-pho-1"]})
    assert status == 201
    assert len(body["token"]) >= 32 and body["controller_public_key"]
    assert controller.post("/api/v1/devices", {"id": "loa-01"})[0] == 409
    assert controller.post("/api/v1/devices", {"id": "Loa 01!"})[0] == 422
    assert controller.post("/api/v1/devices", {"id": "loa-02", "zones": ["Khu Phố"]})[0] == 422
    status, devices = controller.get("/api/v1/devices")
    assert status == 200 and [d["id"] for d in devices] == ["loa-01"]
    assert "token" not in devices[0] and "token_hash" not in devices[0]
    assert devices[0]["status"] == "unknown" and devices[0]["online"] is False
    assert controller.get("/api/v1/devices/nope")[0] == 404


def test_media_is_served_only_from_the_store_to_staff_and_agents(controller: ControllerHandle,
                                                                 agents: AgentFactory) -> None:
    agent = agents("loa-01")
    status, body = controller.post("/api/v1/announcements", {"text": "Thử loa.", "targets": ["loa-01"]})
    assert status == 202
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=30)
    sha = ann["media"]["sha256"]
    agent_token = agent.registered["token"]
    base = controller.api
    assert raw_get(f"{base}/media/{sha}", agent_token) == 200
    assert raw_get(f"{base}/media/{sha}", controller.token) == 200
    assert raw_get(f"{base}/media/{sha}", None) == 401
    assert raw_get(f"{base}/media/{sha}", "x" * 43) == 401
    assert raw_get(f"{base}/media/{'0' * 64}", agent_token) == 404
    assert raw_get(f"{base}/media/{sha.upper()}", agent_token) == 404
    for evil in ("..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "..", sha[:2] + "%2F" + sha,
                 "loaphuong.sqlite3", "..%2Floaphuong.sqlite3", "..%2Fcontroller-signing.pem"):
        assert raw_get(f"{base}/media/{evil}", agent_token) == 404, evil
    status, _ = http_json("GET", f"{base}/media/../controller-signing.pem", agent_token)
    assert status in (401, 404)


def test_console_login_throttle_and_logout(controller: ControllerHandle) -> None:
    username, password = (controller.data_dir / "admin.password").read_text().split()
    assert raw_get(controller.api + "/", None) == 200  # the console page itself is public; its data is not
    status, body = controller.post("/api/v1/auth/login", {"username": username, "password": password}, token=None)
    assert status == 200 and body["role"] == "admin"
    session_token = body["token"]
    assert controller.get("/api/v1/devices", token=session_token)[0] == 200
    assert controller.post("/api/v1/auth/logout", {}, token=session_token)[0] == 204
    assert controller.get("/api/v1/devices", token=session_token)[0] == 401
    for _ in range(5):
        assert controller.post("/api/v1/auth/login", {"username": username, "password": "wrong"}, token=None)[0] == 401
    status, _ = controller.post("/api/v1/auth/login", {"username": username, "password": password}, token=None)
    assert status == 429  # locked out even with the right password, for a while
    assert controller.post("/api/v1/auth/login", {"username": "ghost", "password": "x"}, token=None)[0] == 429


def test_speech_preview_reads_the_text_as_an_announcer_would(controller: ControllerHandle) -> None:
    body = {"text": "Lúc 14h30 ngày 8-1, UBND phường họp."}
    status, preview = controller.post("/api/v1/speech/preview", body)
    assert status == 200, preview
    assert preview["spoken_text"].startswith("Lúc mười bốn giờ ba mươi phút ngày tám tháng một")
    assert "ủy ban nhân dân" in preview["spoken_text"]
    assert preview["engine"].startswith("espeak") and preview["cached"] is False
    media = preview["media"]
    assert abs(media["loudness_lufs"] + 16) <= 1.0
    assert raw_get(media["url"], controller.token) == 200
    status, again = controller.post("/api/v1/speech/preview", body)
    assert again["cached"] is True and again["media"]["sha256"] == media["sha256"]
    for nothing in ("😀😀😀", "<break time='1s'/>", "!!! ..."):
        status, err = controller.post("/api/v1/speech/preview", {"text": nothing})
        assert status == 422 and "nothing to read" in messages(err), (nothing, err)
    assert controller.post("/api/v1/speech/preview", {"text": "a" * 5001})[0] == 422
    assert controller.post("/api/v1/speech/preview", body, token=None)[0] == 401


def test_announcement_keeps_what_was_read(controller: ControllerHandle, agents: AgentFactory) -> None:
    agents("loa-01", wait_online=False)
    status, body = controller.post("/api/v1/announcements", {"text": "Họp lúc 7h tại UBND.", "targets": ["all"]})
    assert status == 202
    ann = controller.announcement(body["id"])
    assert ann["text"] == "Họp lúc 7h tại UBND."
    assert ann["spoken_text"] == "Họp lúc bảy giờ tại ủy ban nhân dân."
    status, err = controller.post("/api/v1/announcements", {"text": "🔥🔥🔥", "targets": ["all"]})
    assert status == 422 and "nothing to read" in messages(err)


def _upload(controller: ControllerHandle, data: bytes, token: str | None = "") -> tuple[int, Any]:
    import urllib.error

    req = urllib.request.Request(controller.api + "/api/v1/media", data=data, method="POST",
                                 headers={"Content-Type": "application/octet-stream",
                                          **({"Authorization": f"Bearer {controller.token if token == '' else token}"}
                                             if token is not None else {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_uploaded_recordings_are_checked_normalized_and_stored(controller: ControllerHandle, tmp_path: Path) -> None:
    def make(name: str, *args: str) -> bytes:
        out = tmp_path / name
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, str(out)], check=True, timeout=60)
        return out.read_bytes()

    quiet_mp3 = make("bulletin.mp3", "-f", "lavfi", "-i", "sine=frequency=300:duration=4,volume=0.05")
    status, media = _upload(controller, quiet_mp3)
    assert status == 201, media
    assert media["source"] == "upload" and media["mime"] == "audio/ogg"
    assert abs(media["loudness_lufs"] + 16) <= 1.0  # normalised like speech
    assert 3500 <= media["duration_ms"] <= 4500
    assert raw_get(media["url"], controller.token) == 200

    video = make("clip.mp4", "-f", "lavfi", "-i", "testsrc=duration=2:size=64x64:rate=5", "-f", "lavfi", "-i",
                 "sine=duration=2", "-shortest")
    for data, code, needle in ((video, 415, "only audio"), (b"\x00" * 1000, 415, "not a readable audio file"),
                               ("Không phải âm thanh".encode(), 415, "not a readable audio file"),
                               (b"", 422, "empty")):
        status, err = _upload(controller, data)
        assert status == code and needle in str(err["detail"]), (status, err)
    assert _upload(controller, quiet_mp3, token=None)[0] == 401
    stored = {p.name for p in (controller.data_dir / "media").rglob("*") if p.is_file()}
    assert len(stored) == 1 and media["sha256"] in stored  # refused uploads leave nothing behind


def test_oversized_upload_is_refused(controller_factory: Any, broker: Any) -> None:
    handle = controller_factory(broker.port, name="small-uploads", env={"LP_UPLOAD_MAX_BYTES": "50000"})
    status, err = _upload(handle, b"\x00" * 60_000)
    assert status == 413 and "limited" in str(err["detail"])
