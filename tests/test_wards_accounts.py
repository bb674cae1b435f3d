"""Wards as tenants, the accounts side: the unit tree through the API, roles granted on units, admins who
manage only their units' accounts, an audit log each admin reads for their own units, and a single-ward
database migrated into the first ward with nothing lost."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from controller.accounts import audit_chain
from controller.storage.engine import Database
from controller.storage.migrate import upgrade
from controller.storage.models import AuditEvent, Device, RoleGrant, Unit, User
from tests.test_accounts_support import App, running_app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with running_app(tmp_path) as handle:
        yield handle


def _ward(app: App, ward_id: str, name: str) -> None:
    status, body = app.call("POST", "/api/v1/units", app.admin_token,
                            {"id": ward_id, "kind": "ward", "name": name, "parent": "city"})
    assert status == 201, body


def _token(app: App, username: str, **body: Any) -> tuple[int, str]:
    created = app.add_user(username, **body)
    return created["id"], app.login(username)["token"]


def test_city_admin_builds_the_tree_and_ward_staff_see_only_their_ward(app: App) -> None:
    _ward(app, "binh-phu", "Phường Bình Phú")
    _ward(app, "an-lac", "Phường An Lạc")
    status, units = app.call("GET", "/api/v1/units", app.admin_token)
    assert status == 200
    assert units[0]["id"] == "city"
    assert {"binh-phu", "an-lac", "ward"} <= {u["id"] for u in units}

    _, officer = _token(app, "can-bo-bp", roles=["officer"], unit="binh-phu")
    status, me = app.call("GET", "/api/v1/auth/me", officer)
    assert status == 200 and me["grants"] == [{"role": "officer", "unit": "binh-phu"}]
    assert me["wards"] == ["binh-phu"]
    assert [u["id"] for u in app.call("GET", "/api/v1/units", officer)[1]] == ["binh-phu"]

    # Another ward reads exactly like a unit nobody has.
    missing = app.call("GET", "/api/v1/units/khong-co", officer)
    other = app.call("GET", "/api/v1/units/an-lac", officer)
    assert missing[0] == other[0] == 404
    assert other[1]["detail"] == missing[1]["detail"].replace("khong-co", "an-lac")

    # The kinds stay in order, ids stay unique.
    assert app.call("POST", "/api/v1/units", app.admin_token,
                    {"id": "to-1", "kind": "ward", "name": "x", "parent": "binh-phu"})[0] == 409
    assert app.call("POST", "/api/v1/units", app.admin_token,
                    {"id": "an-lac", "kind": "ward", "name": "x", "parent": "city"})[0] == 409
    assert app.call("POST", "/api/v1/units", app.admin_token,
                    {"id": "Bad Id", "kind": "ward", "name": "x", "parent": "city"})[0] == 422


def test_ward_admins_manage_their_own_ward_only(app: App) -> None:
    _ward(app, "binh-phu", "Phường Bình Phú")
    _ward(app, "an-lac", "Phường An Lạc")
    _, bp_admin = _token(app, "qtv-bp", roles=["admin"], unit="binh-phu")
    al_id, _ = _token(app, "can-bo-al", roles=["officer"], unit="an-lac")
    both_id, _ = _token(app, "hai-phuong", roles=["viewer"], grants=[{"role": "viewer", "unit": "binh-phu"},
                                                                       {"role": "viewer", "unit": "an-lac"}])

    # Roles without a unit go to the one unit the ward admin administers.
    status, created = app.call("POST", "/api/v1/users", bp_admin,
                               {"username": "can-bo-bp", "password": "mat-khau-dai-1", "roles": ["officer"]})
    assert status == 201 and created["grants"] == [{"role": "officer", "unit": "binh-phu"}]

    listed = {u["username"] for u in app.call("GET", "/api/v1/users", bp_admin)[1]}
    assert listed == {"qtv-bp", "can-bo-bp", "hai-phuong"}
    assert app.call("GET", f"/api/v1/users/{al_id}", bp_admin)[0] == 404
    assert app.call("GET", "/api/v1/users/1", bp_admin)[0] == 404  # the city's first admin
    assert app.call("PATCH", f"/api/v1/users/{al_id}", bp_admin, {"disabled": True})[0] == 404
    assert app.call("POST", f"/api/v1/users/{al_id}/password", bp_admin, {"password": "mat-khau-moi-1"})[0] == 404

    # Granting beyond the ward: the other ward and the city are not there for this admin.
    refused = app.call("POST", "/api/v1/users", bp_admin, {"username": "x1", "password": "mat-khau-dai-1",
                                                           "grants": [{"role": "officer", "unit": "an-lac"}]})
    assert refused[0] == 404 and "an-lac" in refused[1]["detail"]
    assert app.call("POST", "/api/v1/users", bp_admin, {"username": "x2", "password": "mat-khau-dai-1",
                                                        "roles": ["admin"], "unit": "city"})[0] == 404
    # An account that also holds roles elsewhere is seen, but changed only by an admin above both wards.
    assert app.call("PATCH", f"/api/v1/users/{both_id}", bp_admin, {"disabled": True})[0] == 403
    status, both = app.call("GET", f"/api/v1/users/{both_id}", app.admin_token)
    assert status == 200 and both["disabled"] is False

    # Changing roles keeps them where they were held: a ward officer made approver is not lifted to the city.
    status, changed = app.call("PATCH", f"/api/v1/users/{created['id']}", app.admin_token,
                               {"roles": ["officer", "approver"]})
    assert status == 200
    assert {(g["role"], g["unit"]) for g in changed["grants"]} == {("officer", "binh-phu"), ("approver", "binh-phu")}
    # A city admin administering one unit (the city) may still grant in any ward below it.
    status, moved = app.call("PATCH", f"/api/v1/users/{created['id']}", app.admin_token,
                             {"grants": [{"role": "officer", "unit": "an-lac"}]})
    assert status == 200 and moved["grants"] == [{"role": "officer", "unit": "an-lac"}]
    assert app.call("GET", f"/api/v1/users/{created['id']}", bp_admin)[0] == 404


def test_each_admin_reads_the_audit_of_their_units(app: App) -> None:
    _ward(app, "binh-phu", "Phường Bình Phú")
    _ward(app, "an-lac", "Phường An Lạc")
    _, bp_admin = _token(app, "qtv-bp", roles=["admin"], unit="binh-phu")
    _, al_admin = _token(app, "qtv-al", roles=["admin"], unit="an-lac")
    assert app.call("POST", "/api/v1/users", bp_admin, {"username": "can-bo-bp", "password": "mat-khau-dai-1",
                                                        "roles": ["officer"]})[0] == 201
    assert app.call("PATCH", "/api/v1/units/an-lac", al_admin, {"name": "Phường An Lạc (mới)"})[0] == 200

    def subjects(token: str) -> set[tuple[str, str]]:
        return {(r["action"], r["subject"]) for r in app.call("GET", "/api/v1/audit", token)[1]}

    bp, al, city = subjects(bp_admin), subjects(al_admin), subjects(app.admin_token)
    assert ("user.create", "can-bo-bp") in bp and ("user.create", "can-bo-bp") not in al
    assert ("unit.update", "an-lac") in al and ("unit.update", "an-lac") not in bp
    assert not {s for s in bp if s[0] == "unit.create"}  # the wards were created at the city level
    assert {("unit.create", "binh-phu"), ("user.create", "can-bo-bp"), ("unit.update", "an-lac")} <= city

    response = app.client.get("/api/v1/audit?format=csv", headers={"Authorization": f"Bearer {bp_admin}"})
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert table and {row["unit"] for row in table} == {"binh-phu"}
    # The chain runs through every ward's rows and still holds.
    assert app.call("GET", "/api/v1/audit/verify", bp_admin)[1]["ok"] is True


def test_a_unit_is_removed_only_when_empty(app: App) -> None:
    _ward(app, "binh-phu", "Phường Bình Phú")
    assert app.call("POST", "/api/v1/devices", app.admin_token, {"id": "loa-bp-01", "ward": "binh-phu"})[0] == 201
    status, body = app.call("DELETE", "/api/v1/units/binh-phu", app.admin_token)
    assert status == 409 and "1 devices" in body["detail"]
    assert app.call("DELETE", "/api/v1/units/city", app.admin_token)[0] == 409
    # A ward with history (here: an account created in it) keeps its audit rows, so it stays.
    _ward(app, "an-lac", "Phường An Lạc")
    _token(app, "can-bo-al", roles=["officer"], unit="an-lac")
    status, body = app.call("DELETE", "/api/v1/units/an-lac", app.admin_token)
    assert status == 409 and "audit" in body["detail"]
    # A mistyped ward that never held anything goes.
    _ward(app, "an-lc", "Phường An Lạc (gõ nhầm)")
    assert app.call("DELETE", "/api/v1/units/an-lc", app.admin_token)[0] == 204
    assert app.call("GET", "/api/v1/units/an-lc", app.admin_token)[0] == 404


def test_a_single_ward_database_moves_into_the_first_ward(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(db.engine, "0011")
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, password_hash, role, roles, zones, disabled, created_at) "
                          "VALUES ('admin', 'x', 'admin', '[\"admin\"]', '[]', 0, :t), "
                          "('can-bo', 'x', 'officer', '[\"officer\", \"approver\"]', '[\"kp-1\"]', 0, :t)"),
                     {"t": now})
        conn.execute(text("INSERT INTO devices (id, name, zones, token_hash, enabled, status, capabilities, outputs, "
                          "created_at, suspicious_plays, inbox_dropped) VALUES ('loa-01', '', '[\"kp-1\"]', 'h', 1, "
                          "'online', '[]', '[]', :t, 0, 0)"), {"t": now})
        # Rows that refer to the tables the migration rebuilds: a rebuild with foreign keys on deletes them.
        conn.execute(text("INSERT INTO announcements (id, text, priority, targets, status, created_at) "
                          "VALUES ('a1', 'Thông báo', 'normal', '[\"loa-01\"]', 'sent', :t)"), {"t": now})
        conn.execute(text("INSERT INTO deliveries (announcement_id, agent_id, command_id, exp_ms, status, "
                          "updated_at) VALUES ('a1', 'loa-01', 'c1', 1, 'sent', :t)"), {"t": now})
        conn.execute(text("INSERT INTO plays (agent_id, play_id, attempt, announcement_id, priority, output, "
                          "scheduled_start_ms, outcome, updated_at) VALUES ('loa-01', 'p1', 0, 'a1', 'normal', "
                          "'', 1, 'played', :t)"), {"t": now})
        conn.execute(text("INSERT INTO device_events (id, agent_id, type, ts_ms, data, received_at) "
                          "VALUES ('e1', 'loa-01', 'play.finished', 1, '{}', :t)"), {"t": now})
        # An audit row hashed the way it was before wards (no unit in what is hashed).
        digest = audit_chain.chain_hash("", audit_chain.canonical(1, now, None, "system", "before.wards", "x", {}))
        conn.execute(text("INSERT INTO audit_events (id, at, user_id, username, action, subject, detail, prev_hash, "
                          "hash) VALUES (1, :t, NULL, 'system', 'before.wards', 'x', '{}', '', :h)"),
                     {"t": now, "h": digest})
    upgrade(db.engine)

    with db.session() as session:
        assert {(u.id, u.kind, u.parent_id) for u in session.scalars(select(Unit))} == \
            {("city", "city", None), ("ward", "ward", "city")}
        grants = {(g.user_id, g.role, g.unit_id) for g in session.scalars(select(RoleGrant))}
        admin = session.scalar(select(User).where(User.username == "admin"))
        officer = session.scalar(select(User).where(User.username == "can-bo"))
        assert admin is not None and officer is not None
        assert grants == {(admin.id, "admin", "city"), (officer.id, "officer", "ward"),
                          (officer.id, "approver", "ward")}
        assert officer.zones == ["kp-1"]
        device = session.get(Device, "loa-01")
        assert device is not None and device.ward_id == "ward"
        assert session.scalar(select(AuditEvent.unit_id)) == "ward"
        for table in ("deliveries", "plays", "device_events"):
            assert session.scalar(text(f"SELECT count(*) FROM {table}")) == 1, table
        assert session.scalar(text("SELECT ward_id FROM plays")) == "ward"
        assert audit_chain.verify(session)[1] is None
