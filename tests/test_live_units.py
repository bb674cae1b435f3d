"""Fast checks of the live pieces that need no running stack: Icecast's generated config, the listener
check, recording retention, the protocol's live commands."""

from __future__ import annotations

import asyncio
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.broadcasts.live.active import ActiveSession
from controller.broadcasts.live.hub import LiveHub
from controller.broadcasts.live.icecast import IcecastAccess, write_icecast_config
from controller.broadcasts.live.source import microphone_input, relay_input, source_command
from controller.messaging.keys import load_or_create_signing_key
from controller.messaging.outbox import Outbox
from controller.settings import Settings
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import LiveSession, utcnow
from devices.mqtt_link import LinkSettings, MqttLink
from devices.protocol import Priority, Signer, SpeakerLive


def test_icecast_config_is_loopback_with_url_auth_and_private_passwords(tmp_path: Path) -> None:
    conf, access = write_icecast_config(tmp_path / "ice", 18123, "http://127.0.0.1:8080/api/v1/live/icecast-auth")
    xml = conf.read_text()
    assert "<bind-address>127.0.0.1</bind-address>" in xml and "<port>18123</port>" in xml
    assert '<authentication type="url">' in xml and 'name="listener_add"' in xml
    assert "icecast-auth-user: 1" in xml and "hackme" not in xml
    access_file = tmp_path / "ice" / "icecast.json"
    assert stat.S_IMODE(access_file.stat().st_mode) == 0o600
    assert IcecastAccess.load(access_file) == access
    _conf, again = write_icecast_config(tmp_path / "ice", 18123, "http://127.0.0.1:8080/x")
    assert again.source_password != access.source_password  # fresh every start


def test_source_command_feeds_icecast_and_the_recording() -> None:
    cmd = source_command(microphone_input(), "icecast://source:pw@127.0.0.1:1/live-x.ogg", Path("/r/x.ogg"))
    assert cmd[cmd.index("-f") + 1] == "s16le" and "pipe:0" in cmd
    assert cmd.index("icecast://source:pw@127.0.0.1:1/live-x.ogg") < cmd.index("/r/x.ogg")
    assert relay_input("http://radio/x")[-1] == "http://radio/x"


def _hub(tmp_path: Path) -> LiveHub:
    settings = Settings(data_dir=tmp_path, live_recording_days=1)
    db = Database(settings.resolved_database_url())
    migrate.upgrade(db.engine)
    link = MqttLink(LinkSettings(host="127.0.0.1", port=1, client_id="t"), lambda *_: None)
    return LiveHub(settings, db, Outbox(db, Signer(load_or_create_signing_key(tmp_path)), link))


def test_listener_check_needs_an_agents_token_while_that_agent_is_in_the_session(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    sess = ActiveSession(id="Labcdef0123456789", tokens={"a": "t" * 32, "b": "u" * 32}, priority=Priority.PRIORITY,
                         owner_id=1, owner_name="admin", source="microphone", relay_url=None, title="",
                         targets={"a", "b"}, all_targets={"a", "b"})
    hub._sessions[sess.id] = sess
    assert hub.listener_agent(f"/live-{sess.id}.ogg?token={'t' * 32}") == "a"
    assert hub.listener_agent(f"/live-{sess.id}.ogg?token={'u' * 32}&ip=x") == "b"
    for mount in (f"/live-{sess.id}.ogg", f"/live-{sess.id}.ogg?token={'v' * 32}", f"/live-{sess.id}.ogg?token=",
                  f"/other.ogg?token={'t' * 32}", f"/live-Lnope.ogg?token={'t' * 32}", "", "?token=" + "t" * 32):
        assert not hub.listener_allowed(mount), mount
    # An agent taken out of the session (taken over, say): its token no longer opens the mount; the other's does.
    sess.targets.discard("a")
    assert hub.listener_agent(f"/live-{sess.id}.ogg?token={'t' * 32}") is None
    assert hub.listener_allowed(f"/live-{sess.id}.ogg?token={'u' * 32}")
    sess.ended.set()
    assert not hub.listener_allowed(f"/live-{sess.id}.ogg?token={'u' * 32}")
    hub.db.dispose()


def test_recordings_past_retention_are_deleted_and_the_record_stays(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    (tmp_path / "live").mkdir()
    for sid, days in (("Lold000000000000", 2), ("Lnew000000000000", 0)):
        (tmp_path / "live" / f"{sid}.ogg").write_bytes(b"OggS")
        with hub.db.session() as session:
            session.add(LiveSession(id=sid, username="admin", source="microphone", priority="priority", zones=[],
                                    targets=["a"], status="ended", notes=[], recording=f"live/{sid}.ogg",
                                    recording_bytes=4, ended_at=utcnow() - timedelta(days=days, hours=1)))
    assert asyncio.run(asyncio.to_thread(hub.sweep_recordings)) == 1
    assert not (tmp_path / "live" / "Lold000000000000.ogg").exists()
    assert (tmp_path / "live" / "Lnew000000000000.ogg").exists()
    with hub.db.session() as session:
        old = session.get(LiveSession, "Lold000000000000")
        assert old is not None and old.recording is None and old.recording_deleted_at is not None
    hub.db.dispose()


def test_speaker_live_refuses_a_url_with_a_query_or_a_short_token() -> None:
    ok = {"session_id": "Labcdef0123456789", "url": "http://127.0.0.1:8000/live-x.ogg", "token": "t" * 32}
    assert SpeakerLive.model_validate(ok).priority is Priority.PRIORITY
    for bad in ({"url": "http://127.0.0.1:8000/live-x.ogg?token=x"}, {"url": "file:///etc/passwd"},
                {"token": "short"}, {"session_id": "../../x"}, {"give_up_ms": 0}):
        with pytest.raises(ValidationError):
            SpeakerLive.model_validate({**ok, **bad})
