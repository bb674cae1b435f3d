"""Request bodies are held to their limit however they are sent (issue 16, item 3): a 300 MB chunked body,
with or without a token, is refused with 413 after about a megabyte, and the controller's memory hardly
moves; a lying Content-Length gets no further; a body that passes the limit after a streaming response
started stops the request; recordings keep their larger limit; a 422 never hands the input back.

Against the controller under uvicorn, from a raw socket so that nothing between the test and the server
buffers, frames or retries the body.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from controller.api.body_limit import MAX_BODY_BYTES
from controller.tools.local_stack import free_port, http_json
from tests.conftest import Broker, ControllerHandle, running_controller

#: What an attacker sends.
HUGE = 300 * 2**20
#: The recordings' limit for this controller (kept small so the over-limit upload is quick to send).
UPLOAD_LIMIT = 4 * 2**20
#: The most the controller's memory may grow while it refuses a huge body.
RSS_BUDGET = 50 * 2**20
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerHandle]:
    """One controller (and its broker) for the module: every test here only sends it requests."""
    tmp = tmp_path_factory.mktemp("body-limits")
    broker = Broker(tmp / "mosquitto", free_port())
    broker.start()
    try:
        with running_controller(tmp, broker.port, {"LP_UPLOAD_MAX_BYTES": str(UPLOAD_LIMIT)}) as handle:
            yield handle
    finally:
        broker.stop()


def memory(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak since the process started) in bytes, from /proc."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def reset_peak(pid: int) -> dict[str, int]:
    """Makes the peak (VmHWM) start again from the present RSS (Linux ``clear_refs`` 5), and returns both:
    the startup's own peak would otherwise hide any growth below it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return memory(pid)


@dataclass
class Answer:
    """What came back on the connection, and how much of the body the server took before it answered."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent: int
    closed: bool

    def json(self) -> Any:
        return json.loads(self.body)


def _recv(sock: socket.socket) -> bytes:
    """Some bytes, or b"" once the server has closed (or reset) the connection."""
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _parse(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """(status, headers, body so far) once the head has arrived."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def _read_answer(sock: socket.socket, data: bytes, sent: int, closed: bool, expect_close: bool) -> Answer:
    """Reads the rest of one response; a response without a length is read until the server closes."""
    while not closed:
        parsed = _parse(data)
        if parsed is not None and 0 <= int(parsed[1].get("content-length", "-1")) <= len(parsed[2]):
            break
        try:
            more = _recv(sock)
        except TimeoutError:
            break
        closed = not more
        data += more
    if not closed and expect_close:  # a whole answer arrived: is the connection closed behind it?
        sock.settimeout(10)
        try:
            closed = _recv(sock) == b""
        except TimeoutError:
            closed = False
    parsed = _parse(data)
    assert parsed is not None, f"no answer ({len(data)} bytes: {data[:200]!r})"
    return Answer(parsed[0], parsed[1], parsed[2], sent, closed)


def send_body(controller: ControllerHandle, method: str, path: str, *, token: str | None = None,
              total: int = HUGE, declared: int | None = None, stream: bool = False,
              content_type: str = "application/json", expect_close: bool = True) -> Answer:
    """Sends ``total`` bytes of body, chunked (or after a ``declared`` Content-Length, which may lie),
    generated as it goes. Stops as soon as the server answers (with ``stream``: as soon as it closes the
    connection, the answer having begun before any body was sent) or stops taking the body."""
    url = urlsplit(controller.api)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=60)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", f"Content-Type: {content_type}"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        head.append(f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        received = b""
        if stream:
            received = _recv(sock)  # the stream's first bytes, before any of the body
            assert _parse(received) is not None, received
        payload = b"a" * CHUNK
        frame = payload if declared is not None else f"{CHUNK:x}\r\n".encode() + payload + b"\r\n"
        sent = 0
        closed = False
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                more = _recv(sock)
                closed = not more
                received += more
                if closed or not stream:
                    break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += CHUNK
        else:
            if declared is None:
                sock.sendall(b"0\r\n\r\n")
        return _read_answer(sock, received, sent, closed, expect_close)
    finally:
        sock.close()


def test_huge_chunked_bodies_are_refused_early_and_memory_stays_flat(controller: ControllerHandle) -> None:
    pid = controller.proc.pid
    # The same routes once with small bodies first, so what they load on first use is not counted.
    http_json("POST", controller.api + "/api/v1/enrol", None, {"code": "ABCD-EFGH"})
    controller.post("/api/v1/announcements", {"text": "", "targets": []})
    before = reset_peak(pid)
    cases = [("/api/v1/enrol", None), ("/api/v1/announcements", controller.token), ("/api/v1/announcements", None)]
    for path, token in cases:
        answer = send_body(controller, "POST", path, token=token)
        assert answer.status == 413, (path, answer)
        assert "over" in answer.json()["detail"]
        assert answer.closed, "the connection is closed behind a refusal for size"
        # The rest of the body was never read: the server stopped taking it soon after the limit.
        assert MAX_BODY_BYTES < answer.sent < HUGE // 3, answer.sent
        print(f"{path} {'with' if token else 'without'} a token: 413 after {answer.sent / 2**20:.1f} MiB sent")
    after = memory(pid)
    print(f"controller RSS {before['VmRSS'] / 2**20:.1f} → {after['VmRSS'] / 2**20:.1f} MiB, "
          f"peak {before['VmHWM'] / 2**20:.1f} → {after['VmHWM'] / 2**20:.1f} MiB over {len(cases)} × 300 MB chunked")
    assert after["VmHWM"] - before["VmHWM"] < RSS_BUDGET
    assert after["VmRSS"] - before["VmRSS"] < RSS_BUDGET
    assert "body passed 1048576 bytes" in controller.proc.log_text()
    assert controller.get("/healthz")[0] == 200


def test_a_lying_content_length_gets_no_further(controller: ControllerHandle) -> None:
    """Declares 1000 bytes, sends 300 MB: the server frames the body by the declaration; the rest is not a
    request, and the connection is dropped."""
    pid = controller.proc.pid
    before = reset_peak(pid)
    answer = send_body(controller, "POST", "/api/v1/enrol", declared=1000)
    after = memory(pid)
    print(f"lying Content-Length: answer {answer.status} after {answer.sent / 2**20:.1f} MiB sent; controller peak "
          f"{before['VmHWM'] / 2**20:.1f} → {after['VmHWM'] / 2**20:.1f} MiB")
    assert answer.status in (400, 422), answer  # the 1000 bytes declared are no JSON
    assert b"aaaaaaaa" not in answer.body
    assert answer.sent < HUGE // 3
    assert after["VmHWM"] - before["VmHWM"] < RSS_BUDGET
    assert controller.get("/healthz")[0] == 200


def test_a_body_passing_the_limit_after_the_response_started_stops_the_request(controller: ControllerHandle) -> None:
    """Too late for a 413 (the camera event stream has answered 200 before any body came): the request is
    stopped and its connection closed, and nothing more of the body is read."""
    pid = controller.proc.pid
    before = reset_peak(pid)
    answer = send_body(controller, "GET", "/api/v1/camera-events/stream", token=controller.token, stream=True)
    after = memory(pid)
    print(f"streaming answer: connection closed after {answer.sent / 2**20:.1f} MiB sent; controller peak "
          f"{before['VmHWM'] / 2**20:.1f} → {after['VmHWM'] / 2**20:.1f} MiB")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/event-stream")
    assert answer.closed
    assert answer.sent < HUGE // 3
    assert after["VmHWM"] - before["VmHWM"] < RSS_BUDGET
    controller.wait_for(lambda: "response cut short" in controller.proc.log_text(), 10, "the cut logged")
    assert controller.get("/healthz")[0] == 200


def _recording(directory: Path) -> bytes:
    """Fifteen seconds of tone as 16-bit WAV: about 1.4 MB, over the API's limit and under the recordings'."""
    wav = directory / "tone.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=600:duration=15", "-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le", str(wav)],
                   check=True, timeout=60)
    return wav.read_bytes()


def test_recordings_keep_their_own_limit_chunked_or_not(controller: ControllerHandle, tmp_path: Path) -> None:
    recording = _recording(tmp_path)
    assert MAX_BODY_BYTES < len(recording) < UPLOAD_LIMIT

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(recording), 60_000):
            yield recording[i:i + 60_000]

    # A normal recording, sent chunked (httpx does for a generator), is stored: the upload limit applied.
    with httpx.Client(timeout=120) as client:
        response = client.post(controller.api + "/api/v1/media", content=pieces(),
                               headers={"Authorization": f"Bearer {controller.token}", "Content-Type": "audio/wav"})
    assert response.status_code == 201, response.text
    assert response.json()["source"] == "upload" and 14_500 <= response.json()["duration_ms"] <= 15_500
    # Past the upload limit, chunked: refused while it streams, the connection closed, nothing left on disk.
    answer = send_body(controller, "POST", "/api/v1/media", token=controller.token,
                       content_type="application/octet-stream")
    assert answer.status == 413 and "limited to 4 MB" in answer.json()["detail"], answer
    assert answer.closed and UPLOAD_LIMIT < answer.sent < HUGE // 3
    assert not [p for p in (controller.data_dir / "media" / "tmp").rglob("*") if p.is_file()]
    # Without a token: 401 before any of it is read.
    answer = send_body(controller, "POST", "/api/v1/media", total=2 * UPLOAD_LIMIT,
                       content_type="application/octet-stream", expect_close=False)
    assert answer.status == 401, answer


def test_validation_errors_never_hand_the_input_back(controller: ControllerHandle) -> None:
    secret = "x" * 900_000  # under the 1 MB limit: read, parsed and refused by the model
    status, body = http_json("POST", controller.api + "/api/v1/enrol", None, {"code": secret}, timeout=30)
    raw = json.dumps(body)
    assert status == 422 and body["detail"][0]["loc"] == ["body", "code"] and body["detail"][0]["msg"]
    assert "xxxxxxxxxx" not in raw and len(raw) < 4096 and "input" not in body["detail"][0]
    # A key of the caller's own, and thousands of bad items: bounded too.
    status, body = http_json("POST", controller.api + "/api/v1/enrol", None, {"k" * 500_000: 1}, timeout=30)
    assert status == 422 and "k" * 100 not in json.dumps(body) and len(json.dumps(body)) < 4096
    # (a thousand: the most the schema allows, so each item is checked and refused on its own)
    status, body = controller.post("/api/v1/announcements", {"text": "Xin chào", "targets": [7] * 1000})
    raw = json.dumps(body)
    assert status == 422 and len(raw) < 64 * 1024, len(raw)
    assert body["detail"][-1]["type"] == "too_many_errors"
    # Camera requests (a password may be in the body) as before: no input, location and message kept.
    status, body = controller.post("/api/v1/cameras", {"host": "10.0.0.9", "password": "mat-khau-bi-mat",
                                                       "port": "not a port"})
    assert status == 422 and "mat-khau-bi-mat" not in json.dumps(body)
