"""The console's devices pages against the real controller, Mosquitto and an agent with a file sink:
a technician sets a volume and plays a test tone (the agent's answers shown, the tone heard in its sink),
issues an enrolment code with its QR code, and the pages refuse, validate and escape as they should.
"""

from __future__ import annotations

import zipfile
from io import BytesIO

from tests.browser import BrowserFactory, browser_factory  # noqa: F401
from tests.conftest import AgentFactory, ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot


def test_technician_sets_volume_plays_a_tone_and_enrols(controller: ControllerHandle, agents: AgentFactory,
                                                          browser_factory: BrowserFactory) -> None:  # noqa: F811
    agent = agents("loa-cho", zones=("khu-pho-1",))
    password = create_staff(controller, "ky-thuat", ["technician"])
    browser = browser_factory()
    page = browser_page(browser, controller, "ky-thuat", password)

    page.goto(controller.api + "/console/devices")
    row = page.locator("#device-loa-cho")
    assert row.locator(".badge").inner_text() == "Đang hoạt động"
    assert "khu-pho-1" in row.inner_text()
    screenshot(page, "devices-list-desktop")

    row.get_by_role("link", name="loa-cho").click()
    page.wait_for_url("**/console/devices/loa-cho")
    page.fill("#volume", "55")
    page.get_by_role("button", name="Đặt âm lượng").click()
    page.locator("#op-result .flash.ok").filter(has_text="55").wait_for()
    # The agent's new state comes back over MQTT and the status block follows it (SSE "fleet").
    page.locator("#current-volume").filter(has_text="55").wait_for()

    page.get_by_role("button", name="Phát âm thử").click()
    result = page.locator("#op-result .flash.ok").filter(has_text="âm thử")
    result.wait_for()
    # The tone is heard at the new volume; the page names the command the agent played it for.
    start = controller.wait_for(lambda: next((line for line in agent.sink_lines() if line["event"] == "start"), None),
                                15, "the test tone in the agent's sink")
    assert start["volume"] == 55
    assert start["play_id"] in result.inner_text()

    # the agent's log tail; a refusal (this agent has no amplifier relay) said in words, its own text beside
    page.get_by_role("button", name="Nhật ký gần đây").click()
    page.locator("#op-result pre.logs").filter(has_text="volume set to 55").wait_for()
    page.get_by_role("button", name="Bật", exact=True).click()
    page.locator("#op-result .flash.error").filter(has_text="không có rơ-le bộ khuếch đại").wait_for()

    page.get_by_role("button", name="Cấp mã đăng ký").click()
    code = page.locator("#enrolment-code")
    code.wait_for()
    assert len(code.inner_text().strip()) == 9  # XXXX-XXXX
    qr = page.locator("img.qr")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "device-page-desktop")

    # the first-boot bundle: without a board profile the form says so under the field; with one, a zip
    page.get_by_role("button", name="Tải bộ cài đặt").click()
    page.locator("#profile-error").filter(has_text="cấu hình bo mạch").wait_for()
    page.select_option("#bundle-profile", "pi4-usb")
    with page.expect_download() as download:
        page.get_by_role("button", name="Tải bộ cài đặt").click()
    assert download.value.suggested_filename == "loa-cho-first-boot.zip"
    assert "user-data" in zipfile.ZipFile(download.value.path()).namelist()

    phone = browser_page(browser, controller, "ky-thuat", password, viewport=(390, 844))
    phone.goto(controller.api + "/console/devices/loa-cho")
    phone.get_by_role("button", name="Cấp mã đăng ký").click()
    phone.locator("img.qr").wait_for()
    # Nothing wider than the screen but the tables' own scrolling boxes.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "device-page-phone")
    phone.goto(controller.api + "/console/devices")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "devices-list-phone")


def test_device_pages_refuse_validate_and_escape(controller: ControllerHandle) -> None:
    officer_pw = create_staff(controller, "can-bo", ["officer"])
    tech_pw = create_staff(controller, "tho-may", ["technician"])
    with console_client(controller, "can-bo", officer_pw) as officer:
        response = officer.get("/console/devices", headers={"HX-Request": ""})
        assert response.status_code == 403
        assert "Không được phép" in response.text

    with console_client(controller, "tho-may", tech_pw) as tech:
        # a bad id: the error under the id field, in Vietnamese
        response = tech.post("/console/devices", data={"id": "Loa Số 1", "name": "x"})
        assert response.status_code == 422
        assert 'id="id-error"' in response.text and "không đúng định dạng" in response.text

        hostile = "<script>alert('loa')</script>"
        response = tech.post("/console/devices", data={"id": "loa-xss", "name": hostile, "zones_extra": "to-3, to-4"})
        assert response.status_code == 200, response.text
        assert "loa-xss" in response.text and "Device token" not in response.text
        again = tech.post("/console/devices", data={"id": "loa-xss"})
        assert again.status_code == 422 and "đã được dùng" in again.text

        for path in ("/console/devices", "/console/devices/loa-xss"):
            page = tech.get(path)
            assert page.status_code == 200
            assert hostile not in page.text and "&lt;script&gt;" in page.text
        assert "to-3, to-4" in tech.get("/console/devices/loa-xss/status").text

        # an operation's bad value goes back to its form, under the field
        response = tech.post("/console/devices/loa-xss/ops/volume", data={"volume": "150"})
        assert response.status_code == 422
        assert response.headers["HX-Retarget"] == "#op-volume"
        assert 'id="volume-error"' in response.text and "Không được quá 100" in response.text
        # an agent that never started: no answer in time, said in Vietnamese (not a stack trace)
        # (the wait is the page's own, so this is not run here: see the browser test for real answers)

        # zones: a bad one is named under the field
        response = tech.patch("/console/devices/loa-xss", data={"name": "Loa chợ", "zones_extra": "Tổ 5"})
        assert response.status_code == 422 and 'id="zones-error"' in response.text
        response = tech.patch("/console/devices/loa-xss", data={"name": "Loa chợ", "zones": ["to-3"]})
        assert response.status_code == 200
        assert controller.device("loa-xss")["zones"] == ["to-3"]

        # the enrolment code with its QR code as an image
        response = tech.post("/console/devices/loa-xss/enrolment")
        assert response.status_code == 200 and 'src="data:image/svg+xml;base64,' in response.text

        # the first-boot bundle: without a board profile the form says so; with one it is a zip
        response = tech.post("/console/devices/loa-xss/bundle", data={"profile": ""})
        assert response.status_code == 422 and 'id="profile-error"' in response.text
        response = tech.post("/console/devices/loa-xss/bundle", data={"profile": "pi4-usb", "hostname": "loa-cho"})
        assert response.status_code == 200, response.text[:500]
        assert response.headers["content-type"] == "application/zip"
        assert "user-data" in zipfile.ZipFile(BytesIO(response.content)).namelist()

        # a change without the CSRF header is refused
        response = tech.post("/console/devices/loa-xss/revoke", headers={"X-CSRF-Token": ""})
        assert response.status_code == 403
        response = tech.post("/console/devices/loa-xss/revoke")
        assert response.status_code == 204 and response.headers["HX-Refresh"] == "true"
        assert controller.device("loa-xss")["revoked_at"] is not None
        assert "Đã thu hồi" in tech.get("/console/devices/loa-xss").text
