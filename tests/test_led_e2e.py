"""Signs end to end: controller API → signed retained playlist over Mosquitto → agent → virtual and Alpha signs.

Real parts only: Mosquitto, the controller under uvicorn, an agent subprocess, a socat pty pair and the
sign emulator on its far end.
"""

from __future__ import annotations

import io
import shutil
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from controller.tools.local_stack import register_agent, start_agent, write_agent_config
from devices.led.content import Panel, TextPage
from devices.led.render import Renderer
from tests.conftest import ControllerHandle
from tests.sign_emulator import SignEmulator
from tests.test_led_alpha import SerialPair, expected_rows, start_pair

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed")

PAGE = {"kind": "text", "lines": ["Thông báo tiêm chủng"], "mode": "scroll_left", "colour": "red",
        "dwell_ms": 2000}


def get_png(handle: ControllerHandle, path: str) -> Image.Image:
    req = urllib.request.Request(handle.api + path, headers={"Authorization": f"Bearer {handle.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "image/png"
        return Image.open(io.BytesIO(resp.read())).convert("RGB")


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


@pytest.fixture
def serial_pair(tmp_path: Path) -> Any:
    pair = start_pair(tmp_path / "serial")
    try:
        yield pair
    finally:
        pair.stop()


def test_sign_content_reaches_virtual_and_alpha_signs(tmp_path: Path, controller: ControllerHandle,
                                                      serial_pair: SerialPair) -> None:
    emulator = SignEmulator(str(serial_pair.b))
    registered = register_agent(controller.api, controller.token, "bang-01", ["khu-pho-1"])
    extra = (
        '\n[[signs]]\nname = "cong"\nwidth = 128\nheight = 32\n'
        '[signs.driver]\nkind = "virtual"\ndirectory = "signs/cong"\n'
        '\n[[signs]]\nname = "bang"\nwidth = 96\nheight = 16\n'
        f'[signs.driver]\nkind = "alpha"\nport = "{serial_pair.a}"\nread_ack = true\n'
    )
    files = write_agent_config(tmp_path / "agents" / "bang-01", registered, ["khu-pho-1"], extra=extra)
    agent = start_agent(files, tmp_path / "bang-01.log")
    try:
        controller.wait_for(lambda: controller.device("bang-01")["online"] or not agent.alive, 20, "agent online")
        assert agent.alive, agent.log_text()
        for name, (w, h) in (("cong", (128, 32)), ("bang", (96, 16))):
            status, body = controller.post("/api/v1/signs", {"agent_id": "bang-01", "name": name, "width": w,
                                                             "height": h})
            assert status == 201, body
        status, content = controller.post("/api/v1/sign-contents", {"title": "Tiêm chủng", "pages": [PAGE]})
        assert status == 201, content

        # The preview is exactly what the renderer draws for that board.
        preview = get_png(controller, f"/api/v1/signs/bang-01.cong/preview.png?content_id={content['id']}")
        expected = Renderer().render_text(TextPage.model_validate(PAGE), Panel(width=128, height=32))
        assert same(preview, expected.preview())

        start = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        status, item = controller.post("/api/v1/sign-items", {"content_id": content["id"], "start": start,
                                                              "duration_ms": 3_600_000,
                                                              "targets": {"zones": ["khu-pho-1"]}})
        assert status == 201, item

        current = files.config.parent / "signs" / "cong" / "current.png"
        controller.wait_for(lambda: current.exists(), 20, "the virtual sign showing the item")
        time.sleep(0.2)
        with Image.open(current) as shown:
            assert same(shown, preview)

        assert emulator.wait_for(lambda s: "A" in s.texts, timeout=20), agent.log_text()[-3000:]
        text = emulator.state.texts["A"]
        assert text.mode == "rotate"
        whole = Renderer().render_text(TextPage.model_validate(PAGE), Panel(width=96, height=16)).text_image()
        joined = ["".join(emulator.state.pictures[label].rows[y] for label in text.calls) for y in range(16)]
        assert joined == expected_rows(whole, "1")

        def now_view() -> list[dict[str, Any]] | None:
            status, body = controller.get("/api/v1/signs/now")
            assert status == 200, body
            ok = all(n["reported"] and n["reported"]["source"] == "playlist" for n in body)
            return body if ok and len(body) == 2 else None

        now = controller.wait_for(now_view, 20, "both signs reporting the playlist")
        for n in now:
            assert n["reported"]["item_id"] == item["id"]
            assert n["planned"]["item_id"] == item["id"]
            assert n["reported"]["text"] == "Thông báo tiêm chủng"
            assert n["agent_status"] == "online"

        # Cancelled: both boards go dark.
        status, _ = controller.get("/api/v1/sign-items")
        req = urllib.request.Request(f"{controller.api}/api/v1/sign-items/{item['id']}", method="DELETE",
                                     headers={"Authorization": f"Bearer {controller.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        controller.wait_for(lambda: not current.exists(), 20, "the virtual sign going dark")
    finally:
        agent.stop()
        emulator.stop()


def test_preview_and_input_errors(controller: ControllerHandle) -> None:
    # The console's signs page is a server-rendered page behind the sign-in (tests/test_console_signs.py).
    with urllib.request.urlopen(controller.api + "/console/signs", timeout=10) as resp:
        assert "/console/login?next=%2Fconsole%2Fsigns" in resp.url
        assert 'lang="vi"' in resp.read().decode()
    status, body = controller.post("/api/v1/sign-contents", {"pages": [{"kind": "text", "lines": ["  "]}]})
    assert status == 422
    status, body = controller.post("/api/v1/sign-contents", {"pages": [{"kind": "text", "lines": ["Ủy ban"],
                                                                         "mode": "sideways"}]})
    assert status == 422
    status, content = controller.post("/api/v1/sign-contents", {"pages": [
        {"kind": "text", "lines": ["Ủy ban nhân dân phường Bến Nghé quận Một thành phố Hồ Chí Minh"]}]})
    assert status == 201
    assert content["warnings"] == []
    status, odd = controller.post("/api/v1/sign-contents", {"pages": [{"kind": "text", "lines": ["Xin chào 中"]}]})
    assert status == 201 and "U+4E2D" in odd["warnings"][0]
    ok = get_png(controller, f"/api/v1/sign-contents/{content['id']}/preview.png?size=192x96")
    assert ok.size == (192, 96)
    status, body = controller.get(f"/api/v1/sign-contents/{content['id']}/preview.png?size=64x16")
    assert status == 422 and "too long" in body["detail"]
    status, body = controller.get(f"/api/v1/sign-contents/{content['id']}/preview.png?size=96x16&page=3")
    assert status == 404
    status, body = controller.post("/api/v1/sign-items", {"content_id": content["id"], "start": "2026-12-01T08:00:00",
                                                          "duration_ms": 60_000, "targets": {"signs": ["nope.x"]}})
    assert status == 422 and "unknown signs" in str(body)
    status, body = controller.post("/api/v1/sign-items", {"content_id": content["id"], "start": "2026-12-01T08:00:00",
                                                          "rrule": "FREQ=SOMETIMES", "duration_ms": 60_000,
                                                          "targets": {"all": True}})
    assert status == 422
    status, body = controller.post("/api/v1/signs", {"agent_id": "nobody", "name": "x", "width": 96, "height": 16})
    assert status == 422
    status, item = controller.post("/api/v1/sign-items", {"content_id": content["id"], "start": "2026-12-01T08:00:00",
                                                          "duration_ms": 60_000, "targets": {"all": True}})
    assert status == 201 and item["status"] == "active"  # this site does not require approval
    status, body = controller.post(f"/api/v1/sign-items/{item['id']}/approve", {})
    assert status == 409, body
    # a PNG upload is checked by decoding it
    png = io.BytesIO()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(png, format="PNG")
    req = urllib.request.Request(controller.api + "/api/v1/sign-images", data=png.getvalue(), method="POST",
                                 headers={"Authorization": f"Bearer {controller.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        import json

        image = json.loads(resp.read())
    assert (image["mime"], image["width"], image["height"]) == ("image/png", 40, 20)
    status, content = controller.post("/api/v1/sign-contents", {"pages": [
        {"kind": "image", "sha256": image["sha256"], "size": image["size"], "mime": "image/png"}]})
    assert status == 201, content
    shown = get_png(controller, f"/api/v1/sign-contents/{content['id']}/preview.png?size=96x16")
    assert shown.getpixel((48, 8)) == (255, 0, 0)
    req = urllib.request.Request(controller.api + "/api/v1/sign-images", data=b"GIF89a not really", method="POST",
                                 headers={"Authorization": f"Bearer {controller.token}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=10)
    assert caught.value.code == 415


def test_signs_show_the_announcement_while_it_plays_then_return(tmp_path: Path, controller: ControllerHandle) -> None:
    registered = register_agent(controller.api, controller.token, "bang-02", ["khu-pho-1"])
    extra = ('\n[[signs]]\nname = "cong"\nwidth = 128\nheight = 32\n'
             '[signs.driver]\nkind = "virtual"\ndirectory = "signs/cong"\n')
    files = write_agent_config(tmp_path / "agents" / "bang-02", registered, ["khu-pho-1"], extra=extra)
    agent = start_agent(files, tmp_path / "bang-02.log")
    shown_log = files.config.parent / "signs" / "cong" / "shown.jsonl"

    def shown() -> list[dict[str, Any]]:
        import json

        if not shown_log.exists():
            return []
        return [json.loads(line) for line in shown_log.read_text(encoding="utf-8").splitlines()]

    try:
        controller.wait_for(lambda: controller.device("bang-02")["online"] or not agent.alive, 20, "agent online")
        status, body = controller.post("/api/v1/signs", {"agent_id": "bang-02", "name": "cong", "width": 128,
                                                         "height": 32})
        assert status == 201, body
        status, content = controller.post("/api/v1/sign-contents", {"pages": [
            {"kind": "text", "lines": ["Họp tổ dân phố"], "dwell_ms": 1000}]})
        assert status == 201, content
        start = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        status, item = controller.post("/api/v1/sign-items", {"content_id": content["id"], "start": start,
                                                              "duration_ms": 3_600_000, "targets": {"all": True}})
        assert status == 201, item
        controller.wait_for(lambda: any(r.get("lines") == ["Họp tổ dân phố"] for r in shown()), 20, "playlist shown")

        status, ann = controller.post("/api/v1/announcements", {"text": "Thông báo cắt điện sáng mai.",
                                                                "targets": ["bang-02"], "priority": "normal"})
        assert status == 202, ann
        # The speaker's now-playing reaches the sign: it shows the announcement's text while it plays.
        controller.wait_for(lambda: any(r.get("lines") == ["Thông báo cắt điện sáng mai."] for r in shown()), 40,
                            "the sign showing the announcement")
        controller.wait_deliveries(ann["id"], {"played"}, timeout=40)
        seen = len(shown())
        controller.wait_for(lambda: any(r.get("lines") == ["Họp tổ dân phố"] for r in shown()[seen:]), 20,
                            "the sign back on its playlist")
    finally:
        agent.stop()
