"""The console's frame against the real controller: signing in and out, where a stale or missing session
goes, CSRF, the language switch, error pages, and the change stream."""

from __future__ import annotations

import re
import time

import httpx

from tests.conftest import AgentFactory, ControllerHandle
from tests.console_support import console_client, create_staff


def _client(ctl: ControllerHandle) -> httpx.Client:
    return httpx.Client(base_url=ctl.api, timeout=20, follow_redirects=False)


def test_sign_in_goes_back_to_the_page_asked_for_and_sign_out_ends_the_session(controller: ControllerHandle) -> None:
    password = create_staff(controller, "can-bo", ["officer"])
    with _client(controller) as client:
        first = client.get("/console/account")
        assert first.status_code == 303
        assert first.headers["location"] == "/console/login?next=%2Fconsole%2Faccount"
        form = client.get(first.headers["location"])
        assert form.status_code == 200 and 'lang="vi"' in form.text and "Đăng nhập" in form.text
        assert 'value="/console/account"' in form.text
        signed = client.post("/console/login", data={"username": "can-bo", "password": password,
                                                      "next": "/console/account"})
        assert signed.status_code == 303 and signed.headers["location"] == "/console/account"
        cookies = signed.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("lp_session="))
        assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie.replace("Strict", "strict")
        page = client.get("/console/account")
        assert page.status_code == 200
        assert "can-bo" in page.text and "Cán bộ truyền thanh" in page.text
        # signing out needs the CSRF header like every change
        refused = client.post("/console/logout")
        assert refused.status_code == 403 and "Trang đã cũ" in refused.text
        out = client.post("/console/logout", headers={"X-CSRF-Token": client.cookies["lp_csrf"],
                                                      "HX-Request": "true"})
        assert out.status_code == 204 and out.headers["HX-Redirect"] == "/console/login"
        assert client.get("/console/account").status_code == 303


def test_login_errors_are_shown_in_vietnamese_and_never_leave_the_site(controller: ControllerHandle) -> None:
    with _client(controller) as client:
        empty = client.post("/console/login", data={"username": "", "password": ""})
        assert empty.status_code == 422
        assert re.search(r'id="username-error">Trường này là bắt buộc', empty.text)
        assert 'aria-invalid="true"' in empty.text
        wrong = client.post("/console/login", data={"username": "admin", "password": "not-it",
                                                    "next": "https://evil.example/"})
        assert wrong.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in wrong.text
        assert "evil.example" not in wrong.text
        admin_password = (controller.data_dir / "admin.password").read_text().split()[1]
        for target in ("https://evil.example/", "//evil.example/x", "/api/v1/users", "/console/login"):
            ok = client.post("/console/login", data={"username": "admin", "password": admin_password,
                                                     "next": target})
            assert ok.status_code == 303 and ok.headers["location"] == "/console/", target
        # five wrong passwords for one name lock it out for a while (throttled like the API's login)
        for _ in range(6):
            last = client.post("/console/login", data={"username": "ghost", "password": "nope-nope"})
        assert last.status_code == 429 and "quá nhiều lần" in last.text and "Retry-After" in last.headers


def test_english_on_request_and_error_pages_without_traces(controller: ControllerHandle) -> None:
    password = create_staff(controller, "xem", ["viewer"])
    with console_client(controller, "xem", password) as client:
        del client.headers["HX-Request"]
        missing = client.get("/console/no-such-page")
        assert missing.status_code == 404 and "Không tìm thấy" in missing.text and "Traceback" not in missing.text
        switched = client.get("/console/lang/en", params={"next": "/console/account"})
        assert switched.status_code == 303 and switched.headers["location"] == "/console/account"
        english = client.get("/console/account")
        assert 'lang="en"' in english.text and "My account" in english.text and "Viewer" in english.text
        assert client.get("/console/no-such-page").text.count("Not found") >= 1
        # a role the viewer lacks: the console's own 403, naming what is needed
        client.cookies.set("lp_lang", "vi")
        denied = client.get("/console/users")
        assert denied.status_code in (403, 404)
        if denied.status_code == 403:
            assert "Quản trị viên" in denied.text
        # an oversized form is refused before it is read
        big = client.post("/console/account/password", content=b"x" * (1024 * 1024 + 10),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert big.status_code == 413 and "Quá lớn" in big.text and "Traceback" not in big.text


def test_htmx_requests_without_a_session_are_sent_to_the_login_page(controller: ControllerHandle) -> None:
    with _client(controller) as client:
        stale = client.post("/console/account/password", headers={"HX-Request": "true"},
                            cookies={"lp_session": "expired-or-forged", "lp_csrf": "x"})
        assert stale.status_code == 401
        assert stale.headers["HX-Redirect"].startswith("/console/login?next=")


def test_password_change_shows_errors_by_the_field_then_signs_out(controller: ControllerHandle) -> None:
    password = create_staff(controller, "ky-thuat", ["technician"])
    with console_client(controller, "ky-thuat", password) as client:
        wrong = client.post("/console/account/password", data={"old_password": "nope", "new_password": "x"})
        assert wrong.status_code == 422 and 'id="old_password-error"' in wrong.text
        assert "Mật khẩu hiện tại không đúng" in wrong.text
        weak = client.post("/console/account/password", data={"old_password": password, "new_password": "short"})
        assert weak.status_code == 422 and 'id="new_password-error"' in weak.text
        done = client.post("/console/account/password",
                           data={"old_password": password, "new_password": "a-much-longer-secret"})
        assert done.status_code == 204 and done.headers["HX-Redirect"] == "/console/login?changed=1"
        assert client.get("/console/account").status_code == 401  # htmx client: HX-Redirect to login
    with console_client(controller, "ky-thuat", "a-much-longer-secret"):
        pass


def test_the_change_stream_names_what_changed(controller: ControllerHandle, agents: AgentFactory) -> None:
    password = create_staff(controller, "xem-2", ["viewer"])
    with console_client(controller, "xem-2", password) as client:
        del client.headers["HX-Request"]
        seen: list[str] = []
        with client.stream("GET", "/console/events", params={"kinds": "fleet"}, timeout=30) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            agents("loa-sse")  # registering and coming online makes the agent report
            deadline = time.monotonic() + 20
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    seen.append(line.removeprefix("event: "))
                    break
                assert time.monotonic() < deadline, "no fleet event within 20 s"
        assert seen == ["fleet"]
