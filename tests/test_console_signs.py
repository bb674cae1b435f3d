"""The console's LED signs page against the real controller: composing Vietnamese text shows previews that
are the API's own preview.png bytes, content goes on signs, approvers approve sign items, and changes keep
the API's roles, Vietnamese form errors, escaping and CSRF."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
from PIL import Image

from controller.tools.local_stack import register_agent
from tests.browser import BrowserFactory, browser_factory  # noqa: F401
from tests.conftest import Broker, ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot


def _attach_sign(ctl: ControllerHandle, agent: str, name: str, width: int, height: int) -> None:
    status, body = ctl.post("/api/v1/signs", {"agent_id": agent, "name": name, "width": width, "height": height})
    assert status == 201, body


def _api_png(ctl: ControllerHandle, path: str) -> bytes:
    response = httpx.get(ctl.api + path, headers={"Authorization": f"Bearer {ctl.token}"}, timeout=20)
    assert response.status_code == 200, response.text
    return response.content


def test_compose_preview_and_put_on_signs(controller: ControllerHandle,
                                          browser_factory: BrowserFactory) -> None:  # noqa: F811
    register_agent(controller.api, controller.token, "bang-01", ["khu-pho-1"])
    _attach_sign(controller, "bang-01", "cong-uy-ban", 128, 32)
    password = create_staff(controller, "canbo", ["officer"])

    browser = browser_factory()
    page = browser_page(browser, controller, "canbo", password)
    page.goto(controller.api + "/console/signs")
    assert page.locator("h1").inner_text() == "Bảng LED"
    assert "bang-01" in page.locator("#signs-now").inner_text()
    page.fill("#sign-title", "Tiêm chủng")
    page.fill("#lines", "Tiêm chủng mở rộng\nNgày 15/12 tại UBND phường")
    page.select_option("#colour", "red")
    page.select_option("#size", "192x64")
    with page.expect_response(lambda r: "preview.png" in r.url and "size=192x64" in r.url) as shown:
        page.click("#save-preview")
    png = shown.value.body()
    assert shown.value.status == 200
    figure = page.locator("#previews figure[data-size='192x64'] img.preview")
    figure.wait_for()
    src = figure.get_attribute("src") or ""
    content_id = src.split("/sign-contents/")[1].split("/")[0]
    # The page shows the API's preview, byte for byte: what the board will show.
    assert png == _api_png(controller, f"/api/v1/sign-contents/{content_id}/preview.png?size=192x64&page=0")
    assert Image.open(io.BytesIO(png)).size == (192, 64)
    page.wait_for_function("() => [...document.querySelectorAll('#previews img.preview')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")
    on_sign = page.locator("#previews figure[data-size='128x32'] img.preview")
    assert on_sign.count() == 1
    sign_png = _api_png(controller, f"/api/v1/signs/bang-01.cong-uy-ban/preview.png?content_id={content_id}&page=0")
    assert page.evaluate("(img) => [img.naturalWidth, img.naturalHeight]", on_sign.element_handle()) == [128, 32]
    assert Image.open(io.BytesIO(sign_png)).size == (128, 32)
    # The new content is chosen in "put on signs"; put it on every sign for an hour.
    assert page.locator("#content_id").input_value() == content_id
    screenshot(page, "signs-compose-desktop")
    page.click("#put-on-signs")
    page.locator("#assign-form .flash.ok").wait_for()
    row = page.locator("#sign-items tr[data-item]")
    row.first.wait_for()
    assert "Tiêm chủng" in row.first.inner_text() and "Tất cả các bảng" in row.first.inner_text()
    status, items = controller.get("/api/v1/sign-items")
    assert status == 200 and [i["content_id"] for i in items] == [content_id]
    screenshot(page, "signs-desktop")

    phone = browser_page(browser, controller, "canbo", password, viewport=(390, 844))
    phone.goto(controller.api + "/console/signs")
    phone.select_option("#content_id", content_id)
    phone.locator("#assign-previews img.preview").first.wait_for()
    phone.wait_for_function("() => [...document.querySelectorAll('#assign-previews img.preview')]"
                            ".every((img) => img.complete && img.naturalWidth > 0)")
    screenshot(phone, "signs-phone")
    # Nothing sticks out sideways on a phone (tables scroll inside their own box).
    wide = phone.evaluate("() => [...document.querySelectorAll('body *')]"
                          ".filter((e) => e.getBoundingClientRect().right > 391 && !e.closest('.table-wrap'))"
                          ".map((e) => e.tagName + '#' + e.id + '.' + e.className)")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390, wide


def test_sign_changes_keep_roles_errors_escaping_and_approval(
        broker: Broker, controller_factory: Callable[..., ControllerHandle]) -> None:
    controller = controller_factory(broker.port, env={"LP_REQUIRE_APPROVAL": "true"})
    controller.wait_for(lambda: controller.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    register_agent(controller.api, controller.token, "bang-01", ["khu-pho-1"])
    _attach_sign(controller, "bang-01", "cho", 96, 16)
    passwords = {name: create_staff(controller, name, [role]) for name, role in
                 (("xem", "viewer"), ("kythuat", "technician"), ("canbo", "officer"), ("duyet", "approver"))}
    compose = {"title": "", "lines": "Họp tổ", "mode": "static", "colour": "amber", "align": "center",
               "dwell_s": "8", "size": "96x16"}

    with console_client(controller, "xem", passwords["xem"]) as viewer:
        page = viewer.get("/console/signs")
        assert page.status_code == 200 and "compose-form" not in page.text and "bang-01" in page.text
        assert viewer.post("/console/signs/compose", data=compose).status_code == 403
    with console_client(controller, "kythuat", passwords["kythuat"]) as technician:
        assert technician.post("/console/signs/items", data={"content_id": "x"}).status_code == 403

    with console_client(controller, "canbo", passwords["canbo"]) as officer:
        bare = officer.post("/console/signs/compose", data=compose, headers={"X-CSRF-Token": ""})
        assert bare.status_code == 403
        empty = officer.post("/console/signs/compose", data={**compose, "lines": "  \n ", "dwell_s": "0"})
        assert empty.status_code == 422
        assert 'id="lines-error"' in empty.text and "Hãy nhập chữ hoặc chọn ảnh." in empty.text
        assert 'id="dwell_s-error"' in empty.text and "Phải từ 1 trở lên." in empty.text
        not_image = officer.post("/console/signs/compose", data=compose,
                                 files={"image": ("a.png", b"<svg onload=alert(1)>", "image/png")})
        assert not_image.status_code == 422 and 'id="image-error"' in not_image.text
        picture = io.BytesIO()
        Image.new("RGB", (32, 16), (255, 0, 0)).save(picture, format="PNG")
        with_picture = officer.post("/console/signs/compose", data={**compose, "lines": ""},
                                    files={"image": ("co.png", picture.getvalue(), "image/png")})
        assert with_picture.status_code == 200, with_picture.text
        assert "/api/v1/signs/bang-01.cho/preview.png" in with_picture.text
        status, contents = controller.get("/api/v1/sign-contents")
        assert [p["kind"] for p in contents[0]["pages"]] == ["image"]
        hostile = "<img src=x onerror=alert(1)>"
        saved = officer.post("/console/signs/compose", data={**compose, "title": hostile, "lines": "<b>Chợ</b>"})
        assert saved.status_code == 200, saved.text
        assert "&lt;img src=x" in saved.text and "<img src=x" not in saved.text
        status, contents = controller.get("/api/v1/sign-contents")
        content_id = contents[0]["id"]
        no_target = officer.post("/console/signs/items", data={"content_id": content_id, "duration_min": "30"})
        assert no_target.status_code == 422 and 'id="targets-error"' in no_target.text
        assert "Hãy chọn tất cả các bảng" in no_target.text
        too_long = officer.post("/console/signs/items", data={"content_id": content_id, "target_all": "1",
                                                              "duration_min": "0"})
        assert too_long.status_code == 422 and 'id="duration_min-error"' in too_long.text
        put = officer.post("/console/signs/items", data={"content_id": content_id, "target_all": "1",
                                                         "duration_min": "30", "title": hostile})
        assert put.status_code == 200 and "Đã gửi chờ duyệt." in put.text
        assert put.headers["HX-Trigger"] == "signs-changed"
        listed = officer.get("/console/signs/items").text
        assert "&lt;img src=x" in listed and "<img src=x" not in listed and "Chờ duyệt" in listed
        status, items = controller.get("/api/v1/sign-items")
        item_id = items[0]["id"]
        assert items[0]["status"] == "pending"
        assert officer.post(f"/console/signs/items/{item_id}/approve").status_code == 403

    with console_client(controller, "duyet", passwords["duyet"]) as approver:
        assert f"/console/signs/items/{item_id}/approve" in approver.get("/console/signs/items").text
        approved = approver.post(f"/console/signs/items/{item_id}/approve")
        assert approved.status_code == 200 and "Đang hiện theo lịch" in approved.text
        again = approver.post(f"/console/signs/items/{item_id}/approve")
        assert again.status_code == 409 and "không còn chờ duyệt" in again.text
    status, items = controller.get("/api/v1/sign-items")
    assert status == 200 and items[0]["status"] == "active"
