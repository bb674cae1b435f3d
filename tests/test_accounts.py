"""Accounts: several roles per user, password policy and change, admin disable/reset, lock-out, cookie
sessions with CSRF, expired sessions, a viewer refused an officer endpoint, verbatim HTML, 413."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from controller.accounts.auth import LoginThrottle
from controller.storage.engine import Database
from controller.storage.models import ApiToken, utcnow
from tests.test_accounts_support import PASSWORD, App, running_app


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One app for the module: each argon2 hash costs a fraction of a second, a fresh app a second more."""
    with running_app(tmp_path_factory.mktemp("accounts")) as handle:
        yield handle


@pytest.fixture
def app(shared_app: App) -> App:
    """The shared app with no cookies and no remembered login failures (they count per client address)."""
    shared_app.client.cookies.clear()
    shared_app.client.app.state.controller.login_throttle = LoginThrottle()  # type: ignore[attr-defined]
    return shared_app


def test_several_roles_and_role_shorthand(app: App) -> None:
    both = app.add_user("to-truong", ["security", "officer"], zones=["khu-pho-1"])
    assert both["roles"] == ["officer", "security"] and both["role"] == "officer"
    assert both["zones"] == ["khu-pho-1"]
    status, old_style = app.call("POST", "/api/v1/users", app.admin_token,
                                 {"username": "xem", "password": PASSWORD, "role": "viewer"})
    assert status == 201 and old_style["roles"] == ["viewer"]
    token = app.login("to-truong")["token"]
    assert app.call("GET", "/api/v1/camera-events", token)[0] == 200  # security
    assert app.call("GET", "/api/v1/auth/me", token)[1]["roles"] == ["officer", "security"]
    assert app.call("GET", "/api/v1/users", token)[0] == 403  # not an admin
    status, err = app.call("POST", "/api/v1/users", app.admin_token,
                           {"username": "khong-vai-tro", "password": PASSWORD})
    assert status == 422 and "role" in str(err)
    status, err = app.call("POST", "/api/v1/users", app.admin_token,
                           {"username": "ai-do", "password": PASSWORD, "roles": ["superuser"]})
    assert status == 422
    status, err = app.call("POST", "/api/v1/users", app.admin_token,
                           {"username": "ai-do", "password": PASSWORD, "roles": ["officer"], "zones": ["../x"]})
    assert status == 422 and err["detail"][0]["loc"] == ["body", "zones", 0]


def test_password_policy_and_change(app: App) -> None:
    status, err = app.call("POST", "/api/v1/users", app.admin_token,
                           {"username": "ngan", "password": "short", "roles": ["officer"]})
    assert status == 422
    status, err = app.call("POST", "/api/v1/users", app.admin_token,
                           {"username": "canbo-phuong", "password": "CANBO-PHUONG", "roles": ["officer"]})
    assert status == 422 and "username" in err["detail"]
    app.add_user("canbo", ["officer"])
    session = app.login("canbo")["token"]
    status, err = app.call("POST", "/api/v1/auth/password", session,
                           {"old_password": "sai-mat-khau", "new_password": "mat-khau-moi-123"})
    assert status == 403 and "old password" in err["detail"]
    status, err = app.call("POST", "/api/v1/auth/password", session, {"old_password": PASSWORD, "new_password": "ngan"})
    assert status == 422 and "10" in err["detail"]
    status, _ = app.call("POST", "/api/v1/auth/password", session,
                         {"old_password": PASSWORD, "new_password": "mat-khau-moi-123"})
    assert status == 204
    assert app.call("GET", "/api/v1/auth/me", session)[0] == 401  # sessions end with the old password
    assert app.client.post("/api/v1/auth/login", json={"username": "canbo", "password": PASSWORD}).status_code == 401
    assert app.login("canbo", "mat-khau-moi-123")["username"] == "canbo"


def test_admin_disables_and_resets(app: App) -> None:
    user = app.add_user("ky-thuat", ["technician"])
    token = app.login("ky-thuat")["token"]
    assert app.call("GET", "/api/v1/devices", token)[0] == 200
    status, changed = app.call("PATCH", f"/api/v1/users/{user['id']}", app.admin_token, {"disabled": True})
    assert status == 200 and changed["disabled"] is True
    assert app.call("GET", "/api/v1/devices", token)[0] == 401
    assert app.client.post("/api/v1/auth/login", json={"username": "ky-thuat", "password": PASSWORD}).status_code == 401
    app.call("PATCH", f"/api/v1/users/{user['id']}", app.admin_token, {"disabled": False, "roles": ["viewer"]})
    status, _ = app.call("POST", f"/api/v1/users/{user['id']}/password", app.admin_token,
                         {"password": "mat-khau-cap-lai-9"})
    assert status == 204
    assert app.login("ky-thuat", "mat-khau-cap-lai-9")["roles"] == ["viewer"]
    status, err = app.call("POST", f"/api/v1/users/{user['id']}/password", app.admin_token, {"password": "ky-thuat"})
    assert status == 422 and "10 characters" in err["detail"]
    me = app.call("GET", "/api/v1/auth/me", app.admin_token)[1]
    assert app.call("PATCH", f"/api/v1/users/{me['id']}", app.admin_token, {"disabled": True})[0] == 409
    assert app.call("PATCH", f"/api/v1/users/{me['id']}", app.admin_token, {"roles": ["viewer"]})[0] == 409
    assert app.call("PATCH", "/api/v1/users/9999", app.admin_token, {"disabled": True})[0] == 404


def test_lockout_after_five_failures(app: App) -> None:
    app.add_user("khoa", ["viewer"])
    for _ in range(5):
        assert app.client.post("/api/v1/auth/login", json={"username": "khoa", "password": "sai"}).status_code == 401
    locked = app.client.post("/api/v1/auth/login", json={"username": "khoa", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 800


def test_cookie_session_needs_csrf_for_changes(app: App) -> None:
    app.add_user("can-bo", ["officer"])
    response = app.client.post("/api/v1/auth/login", json={"username": "can-bo", "password": PASSWORD, "cookie": True})
    assert response.status_code == 200
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    session_cookie, csrf_cookie = cookies["lp_session"], cookies["lp_csrf"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute in session_cookie
    assert "HttpOnly" not in csrf_cookie and "SameSite=strict" in csrf_cookie
    assert "Secure" not in session_cookie  # plain http on 127.0.0.1
    csrf = response.json()["csrf_token"]
    assert app.client.cookies["lp_csrf"] == csrf

    # reads need no CSRF token; changes do
    assert app.client.get("/api/v1/auth/me").json()["username"] == "can-bo"
    refused = app.client.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "y" * 12})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = app.client.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "x" * 12},
                            headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403 and "CSRF" in wrong.json()["detail"]
    # a matching cookie and header that are not the session's own token (planted by another site) fail too
    app.client.cookies.set("lp_csrf", "f" * 64)
    planted = app.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "f" * 64})
    assert planted.status_code == 403
    app.client.cookies.set("lp_csrf", csrf)
    # a bearer token on the same client needs no CSRF token
    assert app.call("GET", "/api/v1/users", app.admin_token)[0] == 200
    # with the token the change goes through: here, logging out, which clears both cookies
    out = app.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    cleared = " ".join(out.headers.get_list("set-cookie"))
    assert 'lp_session=""' in cleared and 'lp_csrf=""' in cleared
    assert "lp_session" not in app.client.cookies
    app.client.cookies.set("lp_session", session_cookie.split(";")[0].split("=", 1)[1])
    assert app.client.get("/api/v1/auth/me").status_code == 401  # the session was revoked, not only forgotten


def test_secure_cookie_when_asked(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LP_COOKIE_SECURE", "1")
    response = app.client.post("/api/v1/auth/login", json={"username": "admin", "password": _admin_password(app),
                                                           "cookie": True})
    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))
    https = app.client.post("https://127.0.0.1/api/v1/auth/login",
                            json={"username": "admin", "password": _admin_password(app), "cookie": True})
    monkeypatch.delenv("LP_COOKIE_SECURE")
    assert all("Secure" in c for c in https.headers.get_list("set-cookie"))


def _admin_password(app: App) -> str:
    return (app.data_dir / "admin.password").read_text().split()[1]


def test_expired_session_is_refused(app: App) -> None:
    app.add_user("het-han", ["viewer"])
    token = app.login("het-han")["token"]
    cookie_login = app.login("het-han", cookie=True)
    assert app.call("GET", "/api/v1/devices", token)[0] == 200
    db = Database(f"sqlite:///{app.data_dir / 'loaphuong.sqlite3'}")
    try:
        with db.session() as session:
            session.execute(update(ApiToken).where(ApiToken.name == "console session")
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
        status, err = app.call("GET", "/api/v1/devices", token)
        assert status == 401 and "token" in err["detail"]
        assert app.client.get("/api/v1/devices").status_code == 401  # the cookie session expired too
        assert cookie_login["csrf_token"]
    finally:
        db.engine.dispose()
    assert app.call("GET", "/api/v1/devices", app.admin_token)[0] == 200  # the script token never expires


def test_viewer_refused_officer_endpoints(app: App) -> None:
    app.add_user("chi-xem", ["viewer"])
    token = app.login("chi-xem")["token"]
    assert app.call("GET", "/api/v1/announcements", token)[0] == 200
    status, err = app.call("POST", "/api/v1/announcements", token, {"text": "Xin chào", "targets": ["all"]})
    assert status == 403 and "officer" in err["detail"]
    status, err = app.call("POST", "/api/v1/schedule/items", token, {})
    assert status in (403, 422)  # an empty body may be refused first; never created either way
    new_admin = {"username": "x", "password": PASSWORD, "roles": ["admin"]}
    assert app.call("POST", "/api/v1/users", token, new_admin)[0] == 403


def test_html_in_announcement_text_is_returned_verbatim(app: App) -> None:
    assert app.call("POST", "/api/v1/devices", app.admin_token, {"id": "loa-html", "zones": ["khu-pho-9"]})[0] == 201
    officer = app.add_user("soan-tin", ["officer"])
    token = app.login(officer["username"])["token"]
    text = 'Họp tổ dân phố <script>alert("x")</script> <img src=x onerror=alert(1)> & "ngày mai"'
    status, accepted = app.call("POST", "/api/v1/announcements", token, {"text": text, "targets": ["loa-html"]})
    assert status == 202, accepted
    response = app.client.get(f"/api/v1/announcements/{accepted['id']}", headers={"Authorization": f"Bearer {token}"})
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["text"] == text


def test_oversized_body_is_413(app: App) -> None:
    big = b'{"text": "' + b"a" * (1024 * 1024 + 10) + b'", "targets": ["all"]}'
    response = app.client.post("/api/v1/announcements", content=big,
                               headers={"Authorization": f"Bearer {app.admin_token}",
                                        "Content-Type": "application/json"})
    assert response.status_code == 413 and "bytes" in response.json()["detail"]


def test_zone_scoped_officer_reaches_only_their_zones(app: App) -> None:
    for agent, zone in (("loa-01", "khu-pho-1"), ("loa-02", "khu-pho-2")):
        assert app.call("POST", "/api/v1/devices", app.admin_token, {"id": agent, "zones": [zone]})[0] == 201
    app.add_user("to-1", ["officer"], zones=["khu-pho-1"])
    token = app.login("to-1")["token"]
    beyond = ({"zones": ["khu-pho-2"]}, {"all": True}, ["all"], ["loa-02"], {"zones": ["khu-pho-1", "khu-pho-2"]})
    for targets in beyond:
        status, err = app.call("POST", "/api/v1/announcements", token, {"text": "Xin chào", "targets": targets})
        assert status == 403 and "khu-pho-1" in err["detail"], (targets, err)
    status, accepted = app.call("POST", "/api/v1/announcements", token,
                                {"text": "Xin chào", "targets": {"zones": ["khu-pho-1"]}})
    assert status == 202 and accepted["targets"] == ["loa-01"]
    # an unscoped officer reaches everyone
    app.add_user("phuong", ["officer"])
    status, _ = app.call("POST", "/api/v1/announcements", app.login("phuong")["token"],
                         {"text": "Xin chào", "targets": {"all": True}})
    assert status == 202


def test_zone_scoped_staff_cannot_cancel_or_decide_items_beyond_their_zones(app: App) -> None:
    for agent, zone in (("loa-11", "khu-pho-11"), ("loa-12", "khu-pho-12")):
        assert app.call("POST", "/api/v1/devices", app.admin_token, {"id": agent, "zones": [zone]})[0] == 201
    start = (utcnow() + timedelta(days=2)).replace(microsecond=0).isoformat()
    status, item = app.call("POST", "/api/v1/schedule/items", app.admin_token,
                            {"title": "Khu 12", "content": [{"kind": "tts", "text": "Xin chào khu phố mười hai."}],
                             "start": start, "targets": {"zones": ["khu-pho-12"]}})
    assert status == 201, item
    app.add_user("duyet-11", ["approver", "officer"], zones=["khu-pho-11"])
    token = app.login("duyet-11")["token"]
    for method, path, body in (("DELETE", f"/api/v1/schedule/items/{item['id']}", None),
                               ("POST", f"/api/v1/schedule/items/{item['id']}/approve", None),
                               ("POST", f"/api/v1/schedule/items/{item['id']}/reject", {"reason": "không"})):
        status, err = app.call(method, path, token, body)
        assert status == 403 and "khu-pho-11" in err["detail"], (path, err)
    assert app.call("GET", f"/api/v1/schedule/items/{item['id']}", token)[1]["status"] != "cancelled"
