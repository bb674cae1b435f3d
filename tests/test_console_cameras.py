"""The console's camera pages against real components: the controller, Mosquitto, a real H.264 RTSP stream
from GStreamer and our ONVIF PTZ emulator; Debian's chromium for the pages.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser import BrowserFactory, browser_factory  # noqa: F401 - the fixture
from tests.conftest import Broker, ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot
from tests.onvif_emulator import OnvifEmulator
from tests.rtsp_server import RtspServer
from tests.test_camera_api import MjpegClient
from tests.test_camera_api_onvif import emu, stream  # noqa: F401 - the RTSP stream and ONVIF camera fixtures
from tests.test_camera_gateway import _gst_available

pytestmark = pytest.mark.skipif(_gst_available() is not None, reason=str(_gst_available()))

#: Short camera timings; one live view at a time (the gateway's limit), to see a refused tile.
CAMERA_ENV = {"LP_CAMERA_VIEWER_GRACE_S": "1", "LP_CAMERA_FAULT_AFTER_S": "2", "LP_CAMERA_RECONNECT_MAX_S": "1",
              "LP_CAMERA_HEALTH_INTERVAL_S": "2", "LP_CAMERA_MAX_VIEWERS": "1"}


@pytest.fixture
def ctl(controller_factory: Any, broker: Broker) -> ControllerHandle:
    handle: ControllerHandle = controller_factory(broker.port, env=CAMERA_ENV)
    handle.wait_for(lambda: handle.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    return handle


def register_cameras(ctl: ControllerHandle, emu: OnvifEmulator, stream: RtspServer,  # noqa: F811 - the fixtures
                     rtsp_name: str = "Cổng UBND phường") -> None:
    """A PTZ camera over ONVIF (zone khu-pho-2) and an RTSP-only one (khu-pho-1, shown first)."""
    status, body = ctl.post("/api/v1/cameras", {"id": "nga-tu", "name": "Ngã tư chợ", "zone": "khu-pho-2",
                                                "host": emu.host, "port": emu.port, "username": emu.username,
                                                "password": emu.password})
    assert status == 201, body
    status, body = ctl.post("/api/v1/cameras", {"id": "cong-phuong", "name": rtsp_name, "zone": "khu-pho-1",
                                                "host": "127.0.0.1", "onvif": False, "stream_uri": stream.url,
                                                "username": "", "password": ""})
    assert status == 201, body


def has_picture(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def wait_picture(page: Page, selector: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not has_picture(page, selector):
        assert time.monotonic() < deadline, f"no live picture in {selector}"
        time.sleep(0.2)


def test_security_watches_the_grid_moves_a_ptz_camera_and_sees_motion(
        ctl: ControllerHandle, emu: OnvifEmulator, stream: RtspServer,  # noqa: F811 - the fixtures
        browser_factory: BrowserFactory) -> None:  # noqa: F811
    register_cameras(ctl, emu, stream)
    password = create_staff(ctl, "bao-ve", ["security"])
    browser = browser_factory()
    page = browser_page(browser, ctl, "bao-ve", password)
    # Someone else holds the one live view allowed (LP_CAMERA_MAX_VIEWERS=1): every tile says why it
    # shows nothing; once that view closes, "Thử lại" brings the picture.
    other = MjpegClient(ctl.api, "/api/v1/cameras/cong-phuong/live.mjpeg", ctl.token)
    try:
        other.frame()
        page.goto(ctl.api + "/console/cameras")
        expect(page.locator("h1")).to_have_text("Camera")
        expect(page.locator(".camera-tile")).to_have_count(2)
        refused = page.locator(".tile-message:not([hidden])")
        expect(refused).to_have_count(2)
        expect(refused.first).to_contain_text("Quá nhiều luồng xem")
    finally:
        other.close()
    tile = page.locator(".camera-tile[data-camera=nga-tu]")
    deadline = time.monotonic() + 15
    while True:  # the controller frees the view once it notices the other viewer left
        tile.get_by_role("button", name="Thử lại").click()
        try:
            wait_picture(page, ".camera-tile[data-camera=nga-tu] img.live", timeout=3)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the tile never got its picture back"
            tile.get_by_role("button", name="Thử lại").wait_for(state="visible")
    expect(tile.locator(".tile-message")).to_be_hidden()
    expect(page.locator(".camera-tile[data-camera=nga-tu] .badge")).to_have_text("Đang hoạt động")
    screenshot(page, "cameras-grid-desktop")

    # The single view: live picture, PTZ pad (hold → move, release → stop), presets, status.
    page.click("a[href='/console/cameras/nga-tu']")
    expect(page.locator("h1")).to_have_text("Ngã tư chợ")
    wait_picture(page, ".camera-main img.live")
    page.get_by_role("button", name="Sang phải", exact=True).hover()  # → (pan 0.5)
    page.mouse.down()
    deadline = time.monotonic() + 10
    while not emu.operations("ContinuousMove"):
        assert time.monotonic() < deadline, "the camera got no ContinuousMove"
        time.sleep(0.1)
    page.mouse.up()
    deadline = time.monotonic() + 10
    while not emu.operations("Stop"):
        assert time.monotonic() < deadline, "the camera got no Stop"
        time.sleep(0.1)
    move = emu.operations("ContinuousMove")[0].params
    assert (move["Velocity"]["PanTilt"]["x"], move["Velocity"]["PanTilt"]["y"]) == (0.5, 0.0)
    page.get_by_role("button", name="San truoc").click()
    expect(page.locator("#ptz-notice")).to_contain_text("Camera đang quay tới vị trí đó")
    assert emu.operations("GotoPreset")[0].params["PresetToken"] == "2"
    page.fill("#preset-name", "Cổng chợ")
    page.click("#preset-form button[type=submit]")
    expect(page.locator("#preset-form")).to_contain_text("Đã lưu vị trí")
    expect(page.locator("#presets")).to_contain_text("Cổng chợ")

    # Motion: the event arrives on the page by itself (the camera event stream), with its snapshot.
    page.check("#motion-form input[name=enabled]")
    page.fill("#sensitivity", "60")
    page.fill("#cooldown_s", "60")
    page.click("#motion-form button[type=submit]")
    expect(page.locator("#motion-form")).to_contain_text("Đã lưu cài đặt phát hiện chuyển động")
    expect(page.locator("#camera-status")).to_contain_text("Bật")
    motion = ctl.get("/api/v1/cameras/nga-tu")[1]["motion"]
    assert motion["enabled"] and motion["sensitivity"] == 0.6 and motion["cooldown_s"] == 60
    time.sleep(3)
    stream.set_pattern("ball")
    event = page.locator("#camera-events li.event-camera-motion").first
    expect(event).to_contain_text("Chuyển động", timeout=15_000)
    expect(event.locator("img")).to_be_visible()
    event.scroll_into_view_if_needed()  # thumbnails load lazily
    page.wait_for_function("(() => { const img = document.querySelector('#camera-events li.event-camera-motion img');"
                           " return img && img.complete && img.naturalWidth > 0; })()")
    screenshot(page, "camera-view-desktop")

    page.close()  # frees the one live view for the phone
    phone = browser_page(browser, ctl, "bao-ve", password, viewport=(390, 844))
    phone.goto(ctl.api + "/console/cameras/nga-tu")
    expect(phone.locator(".ptz-pad")).to_be_visible()
    wait_picture(phone, ".camera-main img.live")
    screenshot(phone, "camera-view-phone")
    phone.goto(ctl.api + "/console/cameras")
    expect(phone.locator(".camera-tile")).to_have_count(2)
    screenshot(phone, "cameras-grid-phone")


def test_camera_pages_refuse_officers_escape_names_check_forms_and_csrf(
        ctl: ControllerHandle, emu: OnvifEmulator, stream: RtspServer) -> None:  # noqa: F811 - the fixtures
    register_cameras(ctl, emu, stream, rtsp_name="<img src=x onerror=alert(1)>")
    officer = create_staff(ctl, "can-bo", ["officer"])
    with console_client(ctl, "can-bo", officer) as client:
        del client.headers["HX-Request"]
        for path in ("/console/cameras", "/console/cameras/nga-tu", "/console/camera-events"):
            denied = client.get(path)
            assert denied.status_code == 403 and "Không được phép" in denied.text, path
        assert client.post("/console/cameras/nga-tu/presets/1/goto").status_code == 403
    guard = create_staff(ctl, "bao-ve", ["security"])
    with console_client(ctl, "bao-ve", guard) as client:
        grid = client.get("/console/cameras")
        assert grid.status_code == 200
        assert "&lt;img src=x onerror=alert(1)&gt;" in grid.text and "<img src=x" not in grid.text
        assert 'src="/api/v1/cameras/nga-tu/live.mjpeg"' in grid.text
        assert client.get("/console/cameras/no-such-cam").status_code == 404
        # The preset name is checked by the API's model; the error sits under the field, in Vietnamese.
        empty = client.post("/console/cameras/nga-tu/presets", data={"name": "  "})
        assert empty.status_code == 422
        assert 'id="name-error">Trường này là bắt buộc' in empty.text and 'aria-invalid="true"' in empty.text
        too_much = client.post("/console/cameras/nga-tu/motion", data={"enabled": "on", "sensitivity": "150",
                                                                       "cooldown_s": "soon"})
        assert too_much.status_code == 422
        assert 'id="sensitivity-error">Không được quá 100' in too_much.text, too_much.text
        assert 'id="cooldown_s-error">' in too_much.text
        assert ctl.get("/api/v1/cameras/nga-tu")[1]["motion"]["enabled"] is False
        no_ptz = client.post("/console/cameras/cong-phuong/presets", data={"name": "Cổng"})
        assert no_ptz.status_code == 422 and "không có PTZ" in no_ptz.text
        # htmx without the CSRF header: refused, nothing moves.
        token = client.headers.pop("X-CSRF-Token")
        refused = client.post("/console/cameras/nga-tu/presets/1/goto")
        assert refused.status_code == 403 and "Trang đã cũ" in refused.text
        assert not emu.operations("GotoPreset")
        client.headers["X-CSRF-Token"] = token
        moved = client.post("/console/cameras/nga-tu/presets/1/goto")
        assert moved.status_code == 200 and "Camera đang quay tới vị trí đó" in moved.text
        assert emu.operations("GotoPreset")[0].params["PresetToken"] == "1"
        # English on request.
        client.cookies.set("lp_lang", "en")
        english = client.get("/console/cameras/nga-tu")
        assert english.status_code == 200 and "Move the camera" in english.text and "Sensitivity" in english.text
