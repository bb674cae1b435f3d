"""Enrolment codes, ``loaphuong agent enroll`` and revocation, against a real controller and Mosquitto."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from controller.fleet.enrolment import (
    EnrolmentRefused,
    code_hash,
    issue_code,
    new_code,
    normalize_code,
    redeem,
    revoke,
)
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import Device, EnrolmentCode
from controller.tools.local_stack import AgentFiles, http_json, loaphuong_command, start_agent
from edge_agent.config import load_config
from tests.conftest import ControllerHandle
from tests.mqtt_tools import broker_login, publish


def test_codes_look_right_and_normalize() -> None:
    code = new_code()
    assert len(code) == 9 and code[4] == "-"
    assert normalize_code(code.lower().replace("-", " ")) == code.replace("-", "")
    assert normalize_code("ABCD-EFG") is None and normalize_code("0000-0000") is None
    assert code_hash(code) == code_hash(code.lower())


def test_codes_are_single_use_expire_and_are_replaced(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    migrate.upgrade(db.engine)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as s:
        s.add_all([Device(id="loa-a", token_hash="a" * 64), Device(id="loa-b", token_hash="b" * 64)])
        s.flush()
        a, b = s.get(Device, "loa-a"), s.get(Device, "loa-b")
        assert a is not None and b is not None
        first = issue_code(s, a, "tech", timedelta(hours=1), now=t0)
        second = issue_code(s, a, "tech", timedelta(hours=1), now=t0)  # replaces the first
        other = issue_code(s, b, "tech", timedelta(minutes=5), now=t0)
    with db.session() as s:
        with pytest.raises(EnrolmentRefused) as refused:
            redeem(s, first.code, now=t0)
        assert refused.value.reason == "used"
        with pytest.raises(EnrolmentRefused) as refused:
            redeem(s, other.code, now=t0 + timedelta(minutes=6))
        assert refused.value.reason == "expired"
        with pytest.raises(EnrolmentRefused) as refused:
            redeem(s, "ACDE-FGHJ", now=t0)
        assert refused.value.reason == "unknown"
        with pytest.raises(EnrolmentRefused) as refused:
            redeem(s, "not a code", now=t0)
        assert refused.value.reason == "malformed"
        device, creds = redeem(s, second.code, now=t0 + timedelta(minutes=1))
        assert device.id == "loa-a" and device.mqtt_password_hash and creds.mqtt_password
    with db.session() as s:
        with pytest.raises(EnrolmentRefused) as refused:
            redeem(s, second.code, now=t0 + timedelta(minutes=2))
        assert refused.value.reason == "used"
        # B is untouched by everything done to A.
        b = s.get(Device, "loa-b")
        assert b is not None and b.token_hash == "b" * 64 and b.mqtt_password_hash is None
        assert s.get(EnrolmentCode, code_hash(other.code)) is not None
        a = s.get(Device, "loa-a")
        assert a is not None
        fresh = issue_code(s, a, "tech", timedelta(hours=1), now=t0)
        revoke(s, a, now=t0)
        assert a.mqtt_password_hash is None and a.revoked_at is not None
    with db.session() as s, pytest.raises(EnrolmentRefused):
        redeem(s, fresh.code, now=t0)  # revocation voids codes not yet used
    db.dispose()


def _enrol(controller: ControllerHandle, code: str, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*loaphuong_command(), "agent", "enroll", "--controller", controller.api, "--code", code,
                           "--config", str(config), "--data-dir", str(config.parent / "data"), *extra],
                          capture_output=True, text=True, timeout=60, env={**os.environ})


def test_enrol_api_refusals_and_rate_limit(controller: ControllerHandle) -> None:
    status, body = controller.post("/api/v1/devices", {"id": "loa-x", "zones": ["khu-1"],
                                                       "board_profile": "no-such-board"})
    assert status == 422 and "no board profile" in str(body)
    status, _ = controller.post("/api/v1/devices/loa-nope/enrolment", {})
    assert status == 404
    status, body = controller.post("/api/v1/enrol", {"code": "ACDE-FGHJ", "extra": 1}, token=None)
    assert status == 422  # unknown field
    for _ in range(10):
        status, body = controller.post("/api/v1/enrol", {"code": "ACDE-FGHJ"}, token=None)
        assert status == 403 and body["detail"]["reason"] == "unknown"
    status, body = controller.post("/api/v1/enrol", {"code": "ACDE-FGHJ"}, token=None)
    assert status == 429, body
    assert "refused (unknown)" in controller.proc.log_text()


def test_enrol_run_revoke(tmp_path: Path, controller: ControllerHandle) -> None:
    status, body = controller.post("/api/v1/devices", {"id": "loa-e", "name": "Cột 3", "zones": ["khu-1"],
                                                       "board_profile": "pi4-usb"})
    assert status == 201, body
    status, issued = controller.post("/api/v1/devices/loa-e/enrolment", {})
    assert status == 201, issued
    assert issued["qr_svg"].lstrip().startswith("<?xml") and "<svg" in issued["qr_svg"]
    assert issued["uri"].startswith("loaphuong://enrol?")

    config = tmp_path / "pi" / "agent.toml"
    done = _enrol(controller, issued["uri"], config, "--file-output", str(tmp_path / "pi" / "sink"))
    assert done.returncode == 0, done.stderr
    assert "enrolled as loa-e" in done.stdout
    for name in ("agent.toml", "token"):
        assert stat.S_IMODE((config.parent / name).stat().st_mode) == 0o600
    cfg = load_config(config)
    assert cfg.agent_id == "loa-e" and cfg.zones == ["khu-1"] and cfg.mqtt.username == "loa-e"
    assert cfg.mqtt.tls_ca_file is not None and cfg.mqtt.tls_ca_file.name == "broker-ca.crt"
    assert [s.driver.kind for s in cfg.signs] == ["alpha"]  # from the pi4-usb profile
    assert cfg.amplifier is not None and cfg.amplifier.gpio_pin == 17 and cfg.amplifier.warm_up_ms == 1500
    # The broker CA is the project's; the test broker listens without TLS here, so the agent uses plain TCP.
    text = config.read_text().replace('tls_ca_file = "broker-ca.crt"\n', "")
    # No serial sign nor GPIO relay on this machine: run it with the speaker part only.
    text = text.replace("[[signs]]", "[[unused]]").replace("[amplifier]", "[[unused]]").split("[[unused]]")[0]
    config.write_text(text)
    password = load_config(config).mqtt.password
    assert password is not None

    # The same code again: refused, and the config written stays as it is.
    again = _enrol(controller, issued["code"], tmp_path / "clone" / "agent.toml")
    assert again.returncode == 1 and "used" in again.stderr
    assert not (tmp_path / "clone" / "agent.toml").exists()

    agent = start_agent(AgentFiles("loa-e", config, cfg.data_dir, tmp_path / "pi" / "sink"), tmp_path / "loa-e.log")
    try:
        controller.wait_for(lambda: controller.device("loa-e")["online"] or not agent.alive, 30, "agent online")
        assert agent.alive, agent.log_text()
        status, _ = controller.get("/media/" + "0" * 64, token=cfg.read_token())
        assert status == 404  # its token works (there is no such file)
        status, body = controller.post("/api/v1/devices/loa-e/revoke", {})
        assert status == 200 and body["revoked_at"], body
        # The broker drops the revoked agent at once: its will marks it offline.
        controller.wait_for(lambda: not controller.device("loa-e")["online"], 15, "revoked agent offline")
        assert broker_login(controller.mqtt_port, "loa-e", password) != 0
        # Its device token is gone too.
        status, _ = controller.get("/media/" + "0" * 64, token=cfg.read_token())
        assert status == 401
    finally:
        agent.stop()


def test_zone_change_rewrites_the_acl(tmp_path: Path, controller: ControllerHandle) -> None:
    status, body = controller.post("/api/v1/devices", {"id": "loa-z", "zones": ["khu-1"]})
    assert status == 201, body
    password = body["mqtt_password"]
    acl = tmp_path / "mosquitto" / "acl"
    assert "topic read lp/v1/group/khu-1/cmd/+" in acl.read_text()
    status, moved = http_json("PATCH", controller.api + "/api/v1/devices/loa-z", controller.token,
                              {"zones": ["khu-2"], "board_profile": "pi3-hifiberry-amp"})
    assert status == 200 and moved["zones"] == ["khu-2"] and moved["board_profile"] == "pi3-hifiberry-amp"
    text = acl.read_text()
    assert "topic read lp/v1/group/khu-2/cmd/+" in text and "group/khu-1/" not in text
    # The broker took it: the device now hears khu-2's group commands and no longer khu-1's.
    got: list[bytes] = []
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("loa-z", password)
    client.on_connect = lambda c, *_a: c.subscribe([("lp/v1/group/khu-1/cmd/+", 1), ("lp/v1/group/khu-2/cmd/+", 1)])
    client.on_subscribe = lambda *_a: ready.set()
    client.on_message = lambda _c, _u, m: got.append(m.payload)
    client.connect("127.0.0.1", controller.mqtt_port, keepalive=10)
    client.loop_start()
    try:
        assert ready.wait(5)
        publish(controller.mqtt_port, "lp/v1/group/khu-1/cmd/test.x", b"old-zone")
        publish(controller.mqtt_port, "lp/v1/group/khu-2/cmd/test.x", b"new-zone")
        controller.wait_for(lambda: got, 5, "the new zone's message")
        time.sleep(0.3)
        assert got == [b"new-zone"]
    finally:
        client.disconnect()
        client.loop_stop()
    status, body = http_json("PATCH", controller.api + "/api/v1/devices/loa-z", controller.token,
                             {"board_profile": "pi9"})
    assert status == 422 and "no board profile 'pi9'" in str(body)
