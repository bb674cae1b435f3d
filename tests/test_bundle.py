"""First-boot bundle: cloud-init files rendered from every board profile, parsed back, bad input refused."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from firmware_configs.cloud_init import ENROL_ENV, BundleError, BundleOptions, render, zip_bytes
from firmware_configs.profiles import get_profile, list_profiles, parse_profile
from tests.conftest import ControllerHandle

URL = "https://loa.example.vn"


def opts(**kw: str) -> BundleOptions:
    base = {"controller_url": URL, "code": "ACDE-FGHJ", "hostname": "loa-01"}
    return BundleOptions(**(base | kw))


@pytest.mark.parametrize("profile", list_profiles(), ids=lambda p: p.name)
def test_every_profile_renders_valid_cloud_config(profile: object) -> None:
    from firmware_configs.profiles import BoardProfile

    assert isinstance(profile, BoardProfile)
    extra = {"wifi_ssid": "UBND-Phuong", "wifi_password": "matkhau-wifi"} if profile.network.kind == "wifi" else {}
    files = render(profile, opts(**extra))
    assert set(files) == {"user-data", "network-config", "meta-data"}
    assert files["user-data"].startswith("#cloud-config\n")
    user = yaml.safe_load(files["user-data"])
    assert user["hostname"] == "loa-01" and user["timezone"] == "Asia/Ho_Chi_Minh"
    # the code travels in a root-only file, never on a command line, and is shredded after use
    env = next(f for f in user["write_files"] if f["path"] == ENROL_ENV)
    assert env["permissions"] == "0600" and "LP_CODE='ACDE-FGHJ'" in env["content"] and URL in env["content"]
    commands = [c if isinstance(c, str) else " ".join(c) for c in user["runcmd"]]
    assert not any("ACDE-FGHJ" in c for c in commands)
    order = ["pip install", "loaphuong install agent", "agent enroll", f"shred -u {ENROL_ENV}",
             "enable --now loaphuong-agent.service"]
    positions = [next(i for i, c in enumerate(commands) if step in c) for step in order]
    assert positions == sorted(positions), commands
    assert "/opt/loaphuong[agent]" in commands[positions[0]]  # only the agent extra on a Pi
    overlays = [f for f in user["write_files"] if f["path"] == "/boot/firmware/config.txt"]
    if profile.audio.dtoverlay:
        assert overlays and f"dtoverlay={profile.audio.dtoverlay}" in overlays[0]["content"] and overlays[0]["append"]
    else:
        assert not overlays
    net = yaml.safe_load(files["network-config"])
    assert net["version"] == 2
    section = {"ethernet": "ethernets", "wifi": "wifis", "modem": "modems"}[profile.network.kind]
    assert profile.network.interface in net[section]
    if profile.network.kind == "modem":
        assert net[section][profile.network.interface]["apn"] == profile.network.apn
    if profile.network.kind == "wifi":
        assert net["wifis"][profile.network.interface]["access-points"] == {"UBND-Phuong": {"password": "matkhau-wifi"}}
    assert yaml.safe_load(files["meta-data"])["instance-id"] == "loaphuong-loa-01"
    with zipfile.ZipFile(io.BytesIO(zip_bytes(files))) as zf:
        assert sorted(zf.namelist()) == ["meta-data", "network-config", "user-data"]


def _profile(kind: str) -> object:
    base = get_profile("pi4-usb").model_dump(exclude_none=True)
    network = {"ethernet": {"kind": "ethernet", "interface": "eth0"},
               "wifi": {"kind": "wifi", "interface": "wlan0", "wifi_country": "VN"},
               "modem": {"kind": "modem", "interface": "wwan0", "apn": "m-wap"}}[kind]
    return parse_profile(base | {"network": network})


@pytest.mark.parametrize(("kind", "kw", "field"), [
    ("ethernet", {"code": "ABC"}, "code"),
    ("ethernet", {"code": "ACDE-FGHJ; rm -rf /"}, "code"),
    ("ethernet", {"controller_url": "ftp://x"}, "controller"),
    ("ethernet", {"controller_url": "https://x/'$(reboot)'"}, "controller"),
    ("ethernet", {"hostname": "Loa_01"}, "hostname"),
    ("ethernet", {"repo": "file:///etc"}, "repo"),
    ("ethernet", {"wifi_ssid": "x"}, "wifi_ssid"),
    ("wifi", {}, "wifi_ssid"),
    ("wifi", {"wifi_ssid": "x", "wifi_password": "short"}, "wifi_password"),
])
def test_bad_options_refused_naming_the_field(kind: str, kw: dict[str, str], field: str) -> None:
    profile = _profile(kind)
    with pytest.raises(BundleError, match=rf"^{field}:"):
        render(profile, opts(**kw))  # type: ignore[arg-type]


def test_modem_profile_network() -> None:
    net = yaml.safe_load(render(_profile("modem"), opts())["network-config"])  # type: ignore[arg-type]
    assert net["modems"]["wwan0"]["apn"] == "m-wap" and net["renderer"] == "NetworkManager"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loaphuong.cli", "firmware", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_cli_writes_the_bundle(tmp_path: Path) -> None:
    out = _cli("bundle", "--profile", "pi4-usb", "--controller", URL, "--code", "acde-fghj", "-o", str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr
    assert "Đã ghi" in out.stdout
    user_data = tmp_path / "b" / "user-data"
    assert user_data.read_text().startswith("#cloud-config\n")
    assert oct(user_data.stat().st_mode & 0o777) == "0o600"  # it holds the enrolment code
    assert yaml.safe_load(user_data.read_text())["hostname"] == "loa-acdefghj"
    bad = _cli("bundle", "--profile", "pi9-nothing", "--controller", URL, "--code", "ACDE-FGHJ", "-o", str(tmp_path))
    assert bad.returncode == 2 and "no board profile 'pi9-nothing'" in bad.stderr
    bad = _cli("bundle", "--profile", "pi4-usb", "--controller", "nope", "--code", "ACDE-FGHJ", "-o", str(tmp_path))
    assert bad.returncode == 2 and "controller:" in bad.stderr


def _post_zip(api: str, path: str, token: str, body: dict[str, object]) -> tuple[int, bytes, str]:
    req = urllib.request.Request(api + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_api_bundle_carries_a_working_one_time_code(controller: ControllerHandle) -> None:
    status, body = controller.post("/api/v1/devices", {"id": "loa_bundle", "zones": ["khu-pho-1"],
                                                       "board_profile": "pi4-usb"})
    assert status == 201, body
    status, raw, ctype = _post_zip(controller.api, "/api/v1/devices/loa_bundle/bundle.zip", controller.token, {})
    assert status == 200 and ctype == "application/zip", raw[:300]
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        user_data = zf.read("user-data").decode()
    assert user_data.startswith("#cloud-config\n")
    user = yaml.safe_load(user_data)
    assert user["hostname"] == "loa-bundle"
    env = next(f for f in user["write_files"] if f["path"] == ENROL_ENV)["content"]
    code = env.split("LP_CODE='")[1].split("'")[0]
    # the code in the bundle is the device's real one-time code: it enrols once, then never again
    status, identity = controller.post("/api/v1/enrol", {"code": code}, token=None)
    assert status == 200, identity
    assert controller.post("/api/v1/enrol", {"code": code}, token=None)[0] == 403
    # no profile, an unknown profile, a bad option: 422 naming it, and no code is issued
    controller.post("/api/v1/devices", {"id": "loa-bare", "zones": []})
    status, raw, _ = _post_zip(controller.api, "/api/v1/devices/loa-bare/bundle.zip", controller.token, {})
    assert status == 422 and b"profile" in raw
    status, raw, _ = _post_zip(controller.api, "/api/v1/devices/loa-bare/bundle.zip", controller.token,
                               {"profile": "pi4-usb", "hostname": "Not_A_Host"})
    assert status == 422 and b"hostname" in raw
    status, raw, _ = _post_zip(controller.api, "/api/v1/devices/nobody/bundle.zip", controller.token, {})
    assert status == 404
    status, raw, _ = _post_zip(controller.api, "/api/v1/devices/loa-bare/bundle.zip", "wrong", {})
    assert status == 401
