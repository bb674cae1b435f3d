"""The controller's sign service without a network: recurrence, targets, priorities, signed playlists."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.broadcasts.media_store import MediaStore
from controller.messaging.outbox import Outbox
from controller.settings import Settings
from controller.signs import (
    SignAttach,
    SignContentInput,
    SignInputError,
    SignItemInput,
    SignService,
    SignTargets,
    occurrences,
)
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import Device, User
from devices.mqtt_link import LinkSettings, MqttLink
from devices.protocol import Signer, SignPlaylist, Topics, Verifier, now_ms, parse_topic

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_occurrences_follow_the_schedule_rules() -> None:
    start = datetime(2026, 12, 1, 7, 0)
    day = 86_400_000
    w0 = int(datetime(2026, 12, 2, 0, 0, tzinfo=TZ).timestamp() * 1000)
    daily = occurrences(start, "FREQ=DAILY", None, 3_600_000, w0, w0 + 2 * day, TZ)
    assert [datetime.fromtimestamp(ms / 1000, TZ).strftime("%d %H:%M") for ms in daily] == ["02 07:00", "03 07:00"]
    # an occurrence still showing at the window start is included
    late = occurrences(datetime(2026, 12, 1, 23, 30), None, None, 3_600_000, w0, w0 + day, TZ)
    assert len(late) == 1
    assert occurrences(start, "FREQ=DAILY", datetime(2026, 12, 2, 12, 0), 60_000, w0, w0 + 3 * day, TZ) == \
        daily[:1]
    assert occurrences(start, "FREQ=WEEKLY;BYDAY=SA", None, 60_000, w0, w0 + 2 * day, TZ) == []


@pytest.fixture
def service(tmp_path: Path) -> SignService:
    settings = Settings(data_dir=tmp_path, timezone="Asia/Ho_Chi_Minh")
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate.upgrade(db.engine)
    with db.session() as session:
        session.add(User(id=1, username="officer", password_hash="x", role="officer"))
        for agent, zones in (("loa-01", ["khu-1"]), ("loa-02", ["khu-2"]), ("loa-03", ["khu-1"])):
            session.add(Device(id=agent, zones=zones, token_hash=agent * 3))
    link = MqttLink(LinkSettings(host="127.0.0.1", port=1, client_id="unused"), lambda *_: None)
    outbox = Outbox(db, Signer(Ed25519PrivateKey.generate()), link)
    return SignService(settings, db, MediaStore(tmp_path / "media"), outbox)


def _content(svc: SignService, text: str) -> str:
    with svc.db.session() as session:
        user = session.get(User, 1)
        assert user is not None
        return svc.save_content(session, SignContentInput.model_validate(
            {"title": text, "pages": [{"kind": "text", "lines": [text]}]}), user).id


def _item(svc: SignService, content_id: str, targets: dict[str, object], priority: str = "normal",
          start: datetime | None = None, duration_ms: int = 3_600_000) -> str:
    with svc.db.session() as session:
        user = session.get(User, 1)
        assert user is not None
        start = start or datetime.now(TZ) - timedelta(minutes=5)
        return svc.create_item(session, SignItemInput.model_validate({
            "content_id": content_id, "targets": targets, "priority": priority, "start": start.isoformat(),
            "duration_ms": duration_ms}), user).id


def _playlist(svc: SignService, payload: bytes, agent: str) -> SignPlaylist:
    verifier = Verifier(svc.outbox.public_key, agent, [], lambda _i, _e: False)
    cmd = verifier.verify(payload, parse_topic(Topics.signs(agent)))
    assert isinstance(cmd.data, SignPlaylist)
    return cmd.data


def test_playlists_reach_the_targeted_signs_signed_and_only_when_changed(service: SignService) -> None:
    with service.db.session() as session:
        for agent, name, size in (("loa-01", "cong", (96, 16)), ("loa-01", "cho", (128, 32)),
                                  ("loa-02", "cong", (96, 16))):
            service.attach(session, SignAttach(agent_id=agent, name=name, width=size[0], height=size[1]))
        with pytest.raises(SignInputError):
            service.attach(session, SignAttach(agent_id="loa-01", name="cong", width=96, height=16))
    notice = _content(service, "Thông báo tiêm chủng")
    urgent = _content(service, "Cảnh báo lũ")
    _item(service, notice, {"zones": ["khu-1"]})
    _item(service, urgent, {"signs": ["loa-02.cong"]}, priority="emergency")
    out = {o.agent_id: o for o in service.build(None)}
    assert set(out) == {"loa-01", "loa-02"}  # loa-03 has no signs
    one = _playlist(service, out["loa-01"].payload, "loa-01")
    assert [(e.signs, e.title) for e in one.entries] == [(["cho", "cong"], "Thông báo tiêm chủng")]
    two = _playlist(service, out["loa-02"].payload, "loa-02")
    assert [(e.signs, e.priority.value) for e in two.entries] == [(["cong"], "emergency")]
    assert one.entries[0].start_at <= now_ms() < one.entries[0].end_at
    assert service.build(None) == []  # nothing changed: nothing sent
    with service.db.session() as session:
        service.detach(session, "loa-01.cho")
    again = {o.agent_id: o for o in service.build({"loa-01"})}
    pl = _playlist(service, again["loa-01"].payload, "loa-01")
    assert pl.version == one.version + 1 and pl.entries[0].signs == ["cong"]
    with service.db.session() as session:
        now = service.now(session)
    planned = {n["sign"].id: n["planned"] for n in now}
    assert planned["loa-02.cong"]["priority"] == "emergency"
    assert planned["loa-01.cong"]["title"] == "Thông báo tiêm chủng"


def test_bad_items_are_refused_with_the_field(service: SignService) -> None:
    content = _content(service, "Họp tổ dân phố")
    with pytest.raises(SignInputError) as caught:
        _item(service, content, {"signs": ["loa-09.x"]})
    assert caught.value.field == "targets"
    with service.db.session() as session:
        user = session.get(User, 1)
        assert user is not None
        with pytest.raises(SignInputError) as bad_rule:
            service.create_item(session, SignItemInput.model_validate({
                "content_id": content, "targets": {"all": True}, "start": "2026-12-01T07:00:00",
                "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "duration_ms": 60_000}), user)
        assert bad_rule.value.field == "rrule"
    with pytest.raises(ValueError, match="not both"):
        SignTargets.model_validate({"all": True, "zones": ["khu-1"]})
    assert json.dumps(SignTargets(zones=["khu-1"]).model_dump())


def test_with_approval_required_items_wait_for_another_approver(service: SignService) -> None:
    from controller.signs import SignForbidden

    service.settings = service.settings.model_copy(update={"require_approval": True})
    with service.db.session() as session:
        session.add(User(id=2, username="approver", password_hash="x", role="approver"))
        service.attach(session, SignAttach(agent_id="loa-01", name="cong", width=96, height=16))
    content = _content(service, "Thông báo")
    item_id = _item(service, content, {"all": True})
    out = {o.agent_id: o for o in service.build(None)}
    assert _playlist(service, out["loa-01"].payload, "loa-01").entries == []  # pending: not on the signs
    with service.db.session() as session:
        officer, approver = session.get(User, 1), session.get(User, 2)
        assert officer is not None and approver is not None
        with pytest.raises(SignForbidden):
            service.decide(session, item_id, officer, True)  # not an approver (and its author)
        service.decide(session, item_id, approver, True)
        with pytest.raises(SignInputError):
            service.decide(session, item_id, approver, True)  # no longer pending
    out = {o.agent_id: o for o in service.build(None)}
    assert [e.item_id for e in _playlist(service, out["loa-01"].payload, "loa-01").entries] == [item_id]


def test_now_shows_each_signs_own_last_fault(service: SignService) -> None:
    from controller.storage.models import DeviceEvent

    with service.db.session() as session:
        for name in ("cong", "cho"):
            service.attach(session, SignAttach(agent_id="loa-01", name=name, width=96, height=16))
        session.add(DeviceEvent(id="e1", agent_id="loa-01", type="sign.status", ts_ms=1,
                                data={"sign": "cong", "ok": False, "code": "port_lost", "message": "gone"}))
        session.add(DeviceEvent(id="e2", agent_id="loa-01", type="sign.status", ts_ms=2,
                                data={"sign": "cho", "ok": True, "code": "recovered", "message": ""}))
    with service.db.session() as session:
        faults = {n["sign"].id: n["last_fault"] for n in service.now(session)}
    assert faults["loa-01.cong"]["code"] == "port_lost" and faults["loa-01.cho"] is None
    with service.db.session() as session:
        session.add(DeviceEvent(id="e3", agent_id="loa-01", type="sign.status", ts_ms=3,
                                data={"sign": "cong", "ok": True, "code": "recovered", "message": ""}))
    with service.db.session() as session:
        assert all(n["last_fault"] is None for n in service.now(session))
