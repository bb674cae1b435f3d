"""The hash-chained audit log: recorded actions, filters and CSV export for admins, `loaphuong audit verify`
catching an edited, deleted or reordered row, and a chain that stays linear under concurrent writers."""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update

from controller.accounts import audit_chain
from controller.storage.engine import Database
from controller.storage.migrate import upgrade
from controller.storage.models import AuditEvent
from loaphuong.cli import main as loaphuong_main
from tests.test_accounts_support import PASSWORD, App, running_app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with running_app(tmp_path) as handle:
        yield handle


def _db(data_dir: Path) -> Database:
    return Database(f"sqlite:///{data_dir / 'loaphuong.sqlite3'}")


def test_actions_are_recorded_and_admins_filter_and_export(app: App) -> None:
    assert app.client.post("/api/v1/auth/login", json={"username": "admin", "password": "sai"}).status_code == 401
    app.add_user("can-bo", ["officer"])
    token = app.login("can-bo")["token"]
    assert app.call("POST", "/api/v1/devices", app.admin_token, {"id": "loa-01", "zones": ["khu-pho-1"]})[0] == 201
    status, accepted = app.call("POST", "/api/v1/announcements", token,
                                {"text": "Xin chào bà con", "targets": ["loa-01"]})
    assert status == 202
    # The audit row of the send is written when the speech is rendered, in the background: wait for it, so the
    # log read below is the whole log (rows written while the checks run would make them race the renderer).
    deadline = time.monotonic() + 60
    while app.call("GET", f"/api/v1/announcements/{accepted['id']}", token)[1]["status"] == "rendering":
        assert time.monotonic() < deadline, "the announcement was never rendered"
        time.sleep(0.1)

    status, rows = app.call("GET", "/api/v1/audit", app.admin_token)
    assert status == 200
    actions = [r["action"] for r in rows]
    for expected in ("login.failed", "user.create", "login.ok", "announcement.create", "announcement.send"):
        assert expected in actions, actions
    assert rows[0]["prev_hash"] == "" and all(r["prev_hash"] == p["hash"] for p, r in itertools.pairwise(rows))
    created = next(r for r in rows if r["action"] == "announcement.create")
    assert created["username"] == "can-bo" and created["subject"] == accepted["id"]

    assert [r["action"] for r in app.call("GET", "/api/v1/audit?user=can-bo", app.admin_token)[1]] == \
        ["login.ok", "announcement.create", "announcement.send"]
    assert {r["action"] for r in app.call("GET", "/api/v1/audit?action=login", app.admin_token)[1]} == \
        {"login.ok", "login.failed"}
    assert app.call("GET", "/api/v1/audit?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z", app.admin_token)[1] == []
    assert len(app.call("GET", "/api/v1/audit?from=2000-01-01T00:00:00Z", app.admin_token)[1]) == len(rows)
    assert app.call("GET", "/api/v1/audit?from=yesterday", app.admin_token)[0] == 422

    response = app.client.get("/api/v1/audit?format=csv&action=login",
                              headers={"Authorization": f"Bearer {app.admin_token}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["action"] for r in table} == {"login.ok", "login.failed"} and all(len(r["hash"]) == 64 for r in table)

    assert app.call("GET", "/api/v1/audit", token)[0] == 403  # officers do not read the audit log
    assert app.call("GET", "/api/v1/audit/verify", app.admin_token)[1] == {
        "ok": True, "rows": len(rows) + 0, "broken_row": None, "reason": None}


def _seed(data_dir: Path, count: int) -> list[int]:
    """Writes ``count`` chained rows (through the app's own code) to a fresh database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = _db(data_dir)
    try:
        upgrade(db.engine)
        with db.session() as session:
            for i in range(count):
                audit_chain.record(session, None, "test.event", f"item-{i}", {"i": i, "chữ": "tiếng Việt <b>"})
        with db.session() as session:
            return list(session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
    finally:
        db.engine.dispose()


def _verify(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = loaphuong_main(["audit", "verify", "--data-dir", str(data_dir)])
    return code, capsys.readouterr().out


def _tamper(data_dir: Path, sql: str) -> None:
    db = _db(data_dir)
    try:
        with db.session() as session:
            session.execute(text(sql))
    finally:
        db.engine.dispose()


def test_verify_finds_edited_deleted_and_reordered_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _seed(tmp_path / "ok", 6)
    code, out = _verify(tmp_path / "ok", capsys)
    assert code == 0 and out.startswith("audit log intact: 6 rows, chain verified; last hash ")

    _seed(tmp_path / "edited", 6)
    _tamper(tmp_path / "edited", f"UPDATE audit_events SET subject = 'khác' WHERE id = {ids[3]}")
    code, out = _verify(tmp_path / "edited", capsys)
    assert code == 1 and f"row {ids[3]}" in out and "edited" in out

    _seed(tmp_path / "deleted", 6)
    _tamper(tmp_path / "deleted", f"DELETE FROM audit_events WHERE id = {ids[2]}")
    code, out = _verify(tmp_path / "deleted", capsys)
    assert code == 1 and f"row {ids[3]}" in out and "link broken" in out

    _seed(tmp_path / "reordered", 6)  # swap two rows' whole contents, hashes included
    _tamper(tmp_path / "reordered", f"""
        UPDATE audit_events SET id = -1 WHERE id = {ids[1]};
    """)
    _tamper(tmp_path / "reordered", f"UPDATE audit_events SET id = {ids[1]} WHERE id = {ids[4]}")
    _tamper(tmp_path / "reordered", f"UPDATE audit_events SET id = {ids[4]} WHERE id = -1")
    code, out = _verify(tmp_path / "reordered", capsys)
    assert code == 1 and f"row {ids[1]}" in out

    # A rewritten row whose hash was recomputed still breaks the link to the next row.
    _seed(tmp_path / "rehashed", 6)
    db = _db(tmp_path / "rehashed")
    try:
        with db.session() as session:
            row = session.get(AuditEvent, ids[2])
            assert row is not None and row.prev_hash is not None
            row.detail = {"i": 99}
            row.hash = audit_chain.chain_hash(row.prev_hash, audit_chain.canonical(
                row.id, row.at, row.user_id, row.username, row.action, row.subject, row.detail))
    finally:
        db.engine.dispose()
    code, out = _verify(tmp_path / "rehashed", capsys)
    assert code == 1 and f"row {ids[3]}" in out

    assert loaphuong_main(["audit", "verify", "--data-dir", str(tmp_path / "nowhere")]) == 2


def test_chain_stays_linear_under_concurrent_writers(tmp_path: Path) -> None:
    _seed(tmp_path, 1)
    db = _db(tmp_path)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            start.wait(timeout=10)
            for i in range(15):
                with db.session() as session:
                    audit_chain.record(session, None, "test.concurrent", f"{n}-{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        with db.session() as session:
            count, broken = audit_chain.verify(session)
            hashes = list(session.scalars(select(AuditEvent.prev_hash)))
        assert broken is None and count == 1 + 8 * 15
        assert len(set(hashes)) == len(hashes)  # no two rows claim the same predecessor
    finally:
        db.engine.dispose()


def test_a_rolled_back_change_leaves_no_gap(tmp_path: Path) -> None:
    _seed(tmp_path, 2)
    db = _db(tmp_path)
    try:
        with pytest.raises(RuntimeError), db.session() as session:
            audit_chain.record(session, None, "test.rolled_back")
            raise RuntimeError("the change failed")
        with db.session() as session:
            audit_chain.record(session, None, "test.after")
        with db.session() as session:
            assert audit_chain.verify(session) == (3, None)
            session.execute(delete(AuditEvent).where(AuditEvent.action == "test.after"))
            session.execute(update(AuditEvent).where(AuditEvent.id == 1).values(username="ai-do"))
            assert audit_chain.verify(session)[1] == audit_chain.ChainBreak(1, "hash mismatch: the row was edited")
    finally:
        db.engine.dispose()


def test_camera_and_user_changes_are_audited(app: App) -> None:
    user = app.add_user("bao-ve", ["security"], password=PASSWORD)
    app.call("PATCH", f"/api/v1/users/{user['id']}", app.admin_token, {"zones": ["khu-pho-2"]})
    actions = [(r["action"], r["subject"]) for r in app.call("GET", "/api/v1/audit?action=user", app.admin_token)[1]]
    assert actions == [("user.create", "bao-ve"), ("user.update", "bao-ve")]


def test_migration_0008_chains_old_rows_and_fills_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from alembic import command

    from controller.storage.migrate import alembic_config

    db = _db(tmp_path)
    try:
        cfg = alembic_config(str(db.engine.url))
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, username, password_hash, role, disabled, created_at) "
                              "VALUES (1, 'cu', 'x', 'approver', 0, '2026-11-01 08:00:00.000000')"))
            for i in range(3):
                conn.execute(text("INSERT INTO audit_events (at, user_id, username, action, subject, detail) VALUES "
                                  f"('2026-11-0{i + 1} 08:00:00.123456', 1, 'cu', 'old.event', 's{i}', "
                                  f"'{{\"n\": {i}, \"chữ\": \"ô\"}}')"))
        upgrade(db.engine)
        with db.session() as session:
            assert session.execute(text("SELECT roles FROM users")).scalar_one() == '["approver"]'
            assert audit_chain.verify(session) == (3, None)
            audit_chain.record(session, None, "new.event")
        with db.session() as session:
            assert audit_chain.verify(session) == (4, None)
    finally:
        db.engine.dispose()
    assert _verify(tmp_path, capsys)[0] == 0
