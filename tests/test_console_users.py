"""The console's users and audit pages against the real controller: an admin creates an account with two
roles and a zone, its owner signs in, the audit log lists what happened and its chain verifies intact; an
officer gets the 403 page in Vietnamese; forms say what is wrong under the field; the CSV export opens
in a spreadsheet (UTF-8 with BOM); user text is escaped.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3

import httpx

from tests.browser import BrowserFactory, browser_factory  # noqa: F401
from tests.conftest import ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot


def _admin_password(controller: ControllerHandle) -> str:
    return (controller.data_dir / "admin.password").read_text().splitlines()[1]


def test_admin_creates_an_account_and_reads_the_audit_log(controller: ControllerHandle,
                                                          browser_factory: BrowserFactory) -> None:  # noqa: F811
    browser = browser_factory()
    page = browser_page(browser, controller, "admin", _admin_password(controller))
    page.goto(controller.api + "/console/users")
    page.fill("#new-username", "nguyen.van.a")
    page.fill("#new-password", "mat-khau-rat-dai")
    page.check("input[name=roles][value=officer]")
    page.check("input[name=roles][value=approver]")
    page.fill("#new-zones-extra", "to-dan-pho-2")
    page.get_by_role("button", name="Tạo tài khoản").click()
    page.locator("#create-user .flash.ok").wait_for()
    row = page.locator("tr", has_text="nguyen.van.a")
    row.wait_for()
    assert "Cán bộ truyền thanh" in row.inner_text() and "Người duyệt" in row.inner_text()
    assert "to-dan-pho-2" in row.inner_text()
    screenshot(page, "users-desktop")

    # the new account signs in with both roles and its zone
    with console_client(controller, "nguyen.van.a", "mat-khau-rat-dai") as officer:
        account = officer.get("/console/account", headers={"HX-Request": ""})
        assert account.status_code == 200 and "to-dan-pho-2" in account.text
    # ...and as an officer, the users page is not theirs
    officer_page = browser_page(browser, controller, "nguyen.van.a", "mat-khau-rat-dai", viewport=(390, 844))
    officer_page.goto(controller.api + "/console/users")
    assert officer_page.locator("h1").inner_text() == "Không được phép"
    assert "Quản trị viên" in officer_page.locator("main").inner_text()
    screenshot(officer_page, "users-forbidden-phone")

    page.goto(controller.api + "/console/audit")
    table = page.locator("table.audit")
    assert "user.create" in table.inner_text() and "nguyen.van.a" in table.inner_text()
    assert "login.ok" in table.inner_text()
    page.get_by_role("button", name="Kiểm tra nhật ký").click()
    page.locator("#verify-ok").filter(has_text="nguyên vẹn").wait_for()
    page.fill("#f-action", "user")
    page.get_by_role("button", name="Lọc").click()
    page.wait_for_url(re.compile(r".*/console/audit\?.*action=user"))
    assert "login.ok" not in page.locator("table.audit").inner_text()
    screenshot(page, "audit-desktop")

    phone = browser_page(browser, controller, "admin", _admin_password(controller), viewport=(390, 844))
    phone.goto(controller.api + "/console/users")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "users-phone")
    phone.goto(controller.api + "/console/audit")
    phone.get_by_role("button", name="Kiểm tra nhật ký").click()
    phone.locator("#verify-ok").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "audit-phone")


def test_users_and_audit_refuse_validate_export_and_escape(controller: ControllerHandle) -> None:
    officer_pw = create_staff(controller, "can-bo", ["officer"])
    with console_client(controller, "can-bo", officer_pw) as officer:
        for path in ("/console/users", "/console/audit", "/console/audit/export.csv"):
            response = officer.get(path, headers={"HX-Request": ""})
            assert response.status_code == 403, path
            assert "Không được phép" in response.text

    # a sign-in attempt whose "username" is markup: the audit log records it, the page shows it as text
    hostile = "<img src=x onerror=alert(1)>"
    httpx.post(controller.api + "/console/login", data={"username": hostile, "password": "x"})

    with console_client(controller, "admin", _admin_password(controller)) as admin:
        bad = admin.post("/console/users", data={"username": "Nguyễn Văn A", "password": "ngan", "roles": ["officer"]})
        assert bad.status_code == 422
        assert 'id="username-error"' in bad.text and "không đúng định dạng" in bad.text
        assert 'id="password-error"' in bad.text and "Quá ngắn: ít nhất 10 ký tự" in bad.text
        no_role = admin.post("/console/users", data={"username": "b", "password": "mat-khau-rat-dai"})
        assert no_role.status_code == 422 and 'id="roles-error"' in no_role.text
        same = admin.post("/console/users", data={"username": "mat-khau-rat-dai", "password": "mat-khau-rat-dai",
                                                  "roles": ["viewer"]})
        assert same.status_code == 422 and "không trùng với tên đăng nhập" in same.text
        taken = admin.post("/console/users", data={"username": "can-bo", "password": "mat-khau-rat-dai",
                                                   "roles": ["viewer"]})
        assert taken.status_code == 422 and 'id="username-error"' in taken.text

        # edit roles and zones, disable and enable, reset the password
        users = {u["username"]: u for u in controller.get("/api/v1/users")[1]}
        uid = users["can-bo"]["id"]
        response = admin.patch(f"/console/users/{uid}", data={"roles": ["officer", "security"],
                                                              "zones_extra": "to-1 to-2"})
        assert response.status_code == 200
        assert controller.get(f"/api/v1/users/{uid}")[1]["roles"] == ["officer", "security"]
        assert controller.get(f"/api/v1/users/{uid}")[1]["zones"] == ["to-1", "to-2"]
        assert admin.patch(f"/console/users/{uid}", data={"zones": ["to-1"]}).status_code == 422  # no role
        assert admin.post(f"/console/users/{uid}/status", data={"disabled": "true"}).status_code == 200
        assert controller.get(f"/api/v1/users/{uid}")[1]["disabled"] is True
        assert admin.post(f"/console/users/{uid}/status", data={"disabled": "false"}).status_code == 200
        weak = admin.post(f"/console/users/{uid}/password", data={"password": "can-bo"})
        assert weak.status_code == 422 and 'id="password-error"' in weak.text
        assert admin.post(f"/console/users/{uid}/password", data={"password": "mat-khau-moi-123"}).status_code == 200
        # an admin cannot lock themselves out: said next to the form, in Vietnamese
        me = users["admin"]["id"]
        response = admin.post(f"/console/users/{me}/status", data={"disabled": "true"})
        assert response.status_code == 422 and "quản trị viên khác" in response.text

        # no CSRF header: refused
        response = admin.post("/console/users", data={"username": "x"}, headers={"X-CSRF-Token": ""})
        assert response.status_code == 403

        page = admin.get("/console/audit", params={"user": "<b>x</b>"})
        assert page.status_code == 200 and "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text
        page = admin.get("/console/audit", params={"action": "login.failed"})
        assert hostile not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
        bad_date = admin.get("/console/audit", params={"date_from": "31/12/2026"})
        assert bad_date.status_code == 422 and 'id="date_from-error"' in bad_date.text

        # newest first; a page further back starts before a given entry
        ids = [int(n) for n in re.findall(r'id="audit-(\d+)"', admin.get("/console/audit").text)]
        assert len(ids) > 5 and ids == sorted(ids, reverse=True)
        older = admin.get("/console/audit", params={"before": ids[2]}).text
        assert [int(n) for n in re.findall(r'id="audit-(\d+)"', older)] == ids[3:]

        export = admin.get("/console/audit/export.csv", params={"action": "user"})
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert export.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
        assert rows[0][:6] == ["id", "at", "user_id", "username", "action", "subject"]
        assert {r[4] for r in rows[1:]} >= {"user.create", "user.update", "user.password_reset"}
        assert all(r[4].startswith("user.") for r in rows[1:])

        assert "id=\"verify-ok\"" in admin.get("/console/audit/verify").text
    # an entry edited behind the log's back: verify names it
    db = sqlite3.connect(controller.data_dir / "loaphuong.sqlite3")
    try:
        row_id = db.execute("SELECT id FROM audit_events WHERE action = 'user.update' LIMIT 1").fetchone()[0]
        db.execute("UPDATE audit_events SET subject = 'someone-else' WHERE id = ?", (row_id,))
        db.commit()
    finally:
        db.close()
    with console_client(controller, "admin", _admin_password(controller)) as admin:
        broken = admin.get("/console/audit/verify").text
        assert 'id="verify-broken"' in broken and f"số {row_id}" in broken and "bị sửa" in broken
