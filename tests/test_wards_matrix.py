"""The role matrix's unit dimension: every route of the real app, called by an admin of ward A (who holds every
role there) naming ward B's device, zone, item, announcement, camera, sign, live session, recording, account or
the ward itself, answers exactly as it answers for an id nobody has (same status, same body but for the id) —
and changes nothing of B's. Every list page and export
of A leaves B's ids out.

Ward B's rows are written straight to the database (no broker, camera or Icecast is needed to own a row).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select, text

from controller.accounts.auth import token_hash
from controller.api.deps import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, csrf_for
from controller.storage.engine import Database
from controller.storage.models import (
    Announcement,
    ApiToken,
    Camera,
    CameraDiscovery,
    CameraEvent,
    Device,
    LiveSession,
    MediaFile,
    MediaWard,
    ScheduleItem,
    Sign,
    SignContent,
    SignItem,
    User,
    Zone,
)
from tests.test_role_matrix import BODY_METHODS, Case, route_cases, served  # noqa: F401 - a fixture
from tests.ward_support import add_staff, add_ward

B_SHA = "b" * 64
#: Ward B's ids, by the path parameter that names them. Distinctive, so a page that shows one is caught.
B_IDS: dict[str, str] = {
    "device_id": "loa-phuong-b", "agent_id": "loa-phuong-b", "zone_id": "kp-phuong-b",
    "announcement_id": "annphuongb0000000000000000000001", "camera_id": "cam-phuong-b", "event_id": "evphuongb0001",
    "content_id": "scphuongb00000000000000000000001", "sign_id": "bang-phuong-b", "session_id": "live-phuong-b-0001",
    "sha256": B_SHA, "unit_id": "phuong-b", "preset_token": "p1", "op": "tone",
    "broadcast_id": "cbphuongb0000000000000000000001", "token_id": "737373",
}
SCHEDULE_ITEM = "itphuongb0000000000000000000001"
SIGN_ITEM = "siphuongb0000000000000000000001"
#: Where the id names a new row (create-or-replace) in a space every ward shares: zone ids are unique across the
#: deployment (they are topic segments), so an id another ward uses is refused as taken, without saying where.
GLOBAL_IDS = {"/api/v1/zones/{zone_id}"}
#: Parameters that name no ward's row (the language cookie), and the microphone socket (not plain HTTP).
SKIPPED = {"/console/lang/{code}", "/api/v1/live/sessions/{session_id}/audio"}


def _ward_b(session: Any) -> tuple[int, int]:
    """Ward B and one of everything a ward owns; the ids of B's account and camera discovery."""
    add_ward(session, "phuong-a")
    add_ward(session, "phuong-b")
    # Ids long enough that taking them out of an answer cannot take out a digit of anything else.
    b_user = User(id=626262, username="can-bo-phuong-b", password_hash="not a hash")
    b_user.set_grants([("officer", "phuong-b")])
    session.add(b_user)
    session.flush()
    session.add(ApiToken(id=int(B_IDS["token_id"]), user_id=b_user.id, token_hash=secrets.token_hex(32), name="b"))
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    device = "loa-phuong-b"
    session.add(Device(id=device, ward_id="phuong-b", zones=["kp-phuong-b"], token_hash=secrets.token_hex(32)))
    session.add(Zone(id="kp-phuong-b", ward_id="phuong-b", name="Khu phố B"))
    session.add(MediaFile(sha256=B_SHA, size=10, duration_ms=1000, mime="audio/ogg", source="upload"))
    session.flush()
    session.add(MediaWard(sha256=B_SHA, ward_id="phuong-b"))
    session.add(ScheduleItem(id=SCHEDULE_ITEM, ward_id="phuong-b", title="Bản tin phường B", priority="normal",
                             content=[{"kind": "media", "sha256": B_SHA}],
                             segments=[{"kind": "media", "sha256": B_SHA, "size": 10, "duration_ms": 1000,
                                        "mime": "audio/ogg", "title": ""}],
                             targets={"all": True, "zones": [], "agents": []}, start_local="2030-01-01T07:00:00",
                             status="pending", saved_ms=now_ms))
    session.add(Announcement(id=B_IDS["announcement_id"], ward_id="phuong-b", text="Thông báo phường B",
                             priority="normal", targets=[device], status="sent", media_sha256=B_SHA))
    session.add(Camera(id="cam-phuong-b", ward_id="phuong-b", host="127.0.0.1", port=9, password_enc="x",
                       stream_uri="rtsp://127.0.0.1:9/b", onvif=False, agent_id=device))
    session.flush()
    session.add(CameraEvent(id=B_IDS["event_id"], ward_id="phuong-b", camera_id="cam-phuong-b", type="motion",
                            ts_ms=now_ms))
    discovery = CameraDiscovery(id=515151, ward_id="phuong-b", agent_id=device, endpoint="urn:uuid:b", host="127.0.0.1",
                                xaddrs=["http://127.0.0.1:9/onvif/device_service"])
    session.add(discovery)
    session.add(SignContent(id=B_IDS["content_id"], ward_id="phuong-b", title="Biển B",
                            pages=[{"kind": "text", "lines": ["B"]}]))
    session.add(Sign(id="bang-phuong-b", agent_id=device, name="main", width=64, height=16))
    session.flush()
    session.add(SignItem(id=SIGN_ITEM, ward_id="phuong-b", content_id=B_IDS["content_id"], priority="normal",
                         targets={"signs": ["bang-phuong-b"]}, start_local="2030-01-01T07:00:00",
                         duration_ms=60_000, status="pending"))
    session.add(LiveSession(id=B_IDS["session_id"], ward_id="phuong-b", username="can-bo-phuong-b", source="mic",
                            priority="normal", targets=[device], status="live"))
    session.flush()
    return b_user.id, discovery.id


def _snapshot(db: Database) -> dict[str, list[Any]]:
    """Every row of every table that belongs to ward B (or is B's account or B itself), as JSON text."""
    tables: dict[str, list[Any]] = {}
    with db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            columns = {c["name"] for c in inspect(conn).get_columns(table)}
            if "ward_id" in columns:
                where = "ward_id = 'phuong-b'"
            elif table == "units":
                where = "id = 'phuong-b'"
            elif table in ("users", "role_grants"):
                where = ("username = 'can-bo-phuong-b'" if table == "users" else "unit_id = 'phuong-b'")
            elif table == "signs":
                where = "id = 'bang-phuong-b'"
            else:
                continue
            rows = conn.execute(text(f"SELECT * FROM {table} WHERE {where}")).mappings().all()
            tables[table] = sorted(json.dumps(dict(r), default=str, sort_keys=True) for r in rows)
    return tables


def _ids(case: Case, b_user: int, b_discovery: int) -> dict[str, str]:
    ids = dict(B_IDS, user_id=str(b_user), discovery_id=str(b_discovery))
    sign_item = "/sign-items/" in case.path or "/signs/items/" in case.path
    ids["item_id"] = SIGN_ITEM if sign_item else SCHEDULE_ITEM
    return ids


def _unknown(ids: dict[str, str]) -> dict[str, str]:
    """Ids of the same kinds that no ward has."""
    return {k: (v if k in ("preset_token", "op") else str(987654 + len(k)) if v.isdigit() else
                "f" * 64 if k == "sha256" else "khong-co-" + k.replace("_", "-"))
            for k, v in ids.items()}


def _url(case: Case, ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: ids[m.group(1)], case.path)


def _neutral(body: str, ids: dict[str, str]) -> str:
    """The answer with the ids it was asked about taken out, so two answers about different ids compare."""
    for key, value in sorted(ids.items(), key=lambda kv: -len(kv[1])):
        if key not in ("preset_token", "op"):
            body = body.replace(value, f"<{key}>")
    return body


@pytest.fixture(scope="module")
def ward_a_admin(served: tuple[str, Any, Path]) -> Iterator[tuple[list[str], int, int]]:  # noqa: F811
    """Ward B with its rows, and fresh tokens (one per request) of an admin of ward A."""
    _base, _app, data_dir = served
    db = Database(f"sqlite:///{data_dir / 'loaphuong.sqlite3'}")
    try:
        with db.session() as session:
            b_user, b_discovery = _ward_b(session)
            a_admin, _ = add_staff(session, [("admin", "phuong-a")], username="qtv-phuong-a")
            tokens = [secrets.token_urlsafe(32) for _ in range(600)]
            expires = datetime.now(UTC) + timedelta(hours=1)
            session.add_all(ApiToken(user_id=a_admin.id, token_hash=token_hash(t), name="matrix", expires_at=expires)
                            for t in tokens)
        yield tokens, b_user, b_discovery
    finally:
        db.engine.dispose()


def _send(client: httpx.Client, case: Case, url: str, token: str) -> httpx.Response:
    client.cookies.clear()
    if case.console:
        headers = {CSRF_HEADER: csrf_for(token)}
        cookies = {SESSION_COOKIE: token, CSRF_COOKIE: csrf_for(token)}
        form: dict[str, str] | None = {} if case.method in BODY_METHODS else None
        request = client.build_request(case.method, url, data=form, headers=headers, cookies=cookies)
    else:
        body: dict[str, Any] | None = {} if case.method in BODY_METHODS else None
        request = client.build_request(case.method, url, json=body, headers={"Authorization": f"Bearer {token}"})
    return client.send(request, stream=True)


def _head(response: httpx.Response, limit: int = 512 * 1024) -> str:
    """The first bytes of a response; streams (event streams, live views) are not read at all."""
    kind = response.headers.get("content-type", "")
    if "event-stream" in kind or "multipart" in kind or kind.startswith(("image/", "audio/")):
        return ""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data.decode("utf-8", "replace")


def test_another_wards_ids_answer_as_unknown_and_change_nothing(
        served: tuple[str, Any, Path], ward_a_admin: tuple[list[str], int, int]) -> None:  # noqa: F811
    base, app, data_dir = served
    tokens, b_user, b_discovery = ward_a_admin
    cases = [c for c in route_cases(app)[0] if "{" in c.path and c.path not in SKIPPED]
    assert len(cases) > 70
    db = Database(f"sqlite:///{data_dir / 'loaphuong.sqlite3'}")
    before = _snapshot(db)
    assert all(before[t] for t in ("devices", "zones", "schedule_items", "announcements", "cameras", "sign_items",
                                   "live_sessions", "media_wards", "units", "users"))
    wrong: list[str] = []
    tried = 0
    with httpx.Client(base_url=base, timeout=20, follow_redirects=False) as client:
        for case in cases:
            answers = []
            for ids in (_ids(case, b_user, b_discovery), _unknown(_ids(case, b_user, b_discovery))):
                # The same token for both, so a page that prints the session's CSRF token prints the same one.
                response = _send(client, case, _url(case, ids), tokens[tried])
                try:
                    answers.append((response.status_code, _neutral(_head(response), ids)))
                finally:
                    response.close()
            tried += 1
            (b_status, b_body), (unknown_status, unknown_body) = answers
            if case.path in GLOBAL_IDS and b_status == 409:
                continue
            if (b_status in (200, 201, 202, 204) and b_body != unknown_body) or b_status in (401, 403):
                wrong.append(f"{case.method} {case.path}: {b_status} {b_body[:160]!r}")
            elif (b_status, b_body) != (unknown_status, unknown_body):
                wrong.append(f"{case.method} {case.path}: B's id answers {b_status} {b_body[:120]!r}, an unknown "
                             f"id {unknown_status} {unknown_body[:120]!r}")
    db.engine.dispose()
    db = Database(f"sqlite:///{data_dir / 'loaphuong.sqlite3'}")
    try:
        after = _snapshot(db)
    finally:
        db.engine.dispose()
    assert not wrong, "\n".join(wrong)
    changed = [t for t in before if before[t] != after.get(t)]
    assert not changed, f"ward B's rows changed in {changed}"
    print(f"{tried} route methods tried with ward B's ids as ward A's admin: all unknown, nothing changed")


def test_ward_a_lists_and_exports_leave_ward_b_out(
        served: tuple[str, Any, Path], ward_a_admin: tuple[list[str], int, int]) -> None:  # noqa: F811
    base, app, _data_dir = served
    tokens, _b_user, _ = ward_a_admin
    cases = [c for c in route_cases(app)[0] if "{" not in c.path and c.method == "GET"]
    assert len(cases) > 20
    leaks: list[str] = []
    with httpx.Client(base_url=base, timeout=20, follow_redirects=False) as client:
        for n, case in enumerate(cases):
            for url in (case.path, case.path + ("&" if "?" in case.path else "?") + "format=csv"):
                response = _send(client, case, url, tokens[-1 - 2 * n - (url != case.path)])
                try:
                    body = _head(response)
                finally:
                    response.close()
                named = sorted(v for k, v in B_IDS.items() if k not in ("preset_token", "op") and v in body)
                named += [i for i in (SCHEDULE_ITEM, SIGN_ITEM, "can-bo-phuong-b", "phuong-b") if i in body]
                if named:
                    leaks.append(f"GET {url} ({response.status_code}) shows {named}")
    assert not leaks, "\n".join(leaks)


def test_the_city_sees_ward_b(served: tuple[str, Any, Path],  # noqa: F811
                              ward_a_admin: tuple[list[str], int, int]) -> None:
    """The same rows are there for the city's admin: the 404s above are the ward's boundary, not broken rows."""
    base, _app, data_dir = served
    token = (data_dir / "admin.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=20, headers=headers) as client:
        for path in ("/api/v1/devices/loa-phuong-b", "/api/v1/zones/kp-phuong-b",
                     f"/api/v1/schedule/items/{SCHEDULE_ITEM}", f"/api/v1/announcements/{B_IDS['announcement_id']}",
                     "/api/v1/cameras/cam-phuong-b", f"/api/v1/sign-contents/{B_IDS['content_id']}",
                     f"/api/v1/live/sessions/{B_IDS['session_id']}", "/api/v1/units/phuong-b"):
            assert client.get(path).status_code == 200, path
    db = Database(f"sqlite:///{data_dir / 'loaphuong.sqlite3'}")
    try:
        with db.session() as session:
            assert session.scalar(select(Device.ward_id).where(Device.id == "loa-phuong-b")) == "phuong-b"
    finally:
        db.engine.dispose()
