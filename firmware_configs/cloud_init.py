"""First-boot bundle: cloud-init files (NoCloud) that install the agent on a fresh Pi and enrol it.

Copied onto the SD card's boot partition next to a Raspberry Pi OS / Debian image that runs
cloud-init, ``user-data``, ``network-config`` and ``meta-data`` make the first boot: set the host
name and time zone, install the Debian packages the agent uses, put the audio board's overlay in
``config.txt``, clone loaphuong into ``/opt/loaphuong`` with a venv holding only the ``agent`` extra,
place the systemd unit (``loaphuong install agent``), trade the one-time enrolment code for the
device's identity (``loaphuong agent enroll``), and start the agent.

The files are built as data and dumped with PyYAML, then parsed back and checked, so what is
written is always valid YAML with the ``#cloud-config`` header cloud-init needs. The enrolment code
is written to a root-only file and shredded after use, never put on a command line.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from firmware_configs.profiles import BoardProfile

#: Where the project is fetched from on first boot (``--repo``): a public git URL.
DEFAULT_REPO = "https://github.com/loaphuong/loaphuong.git"
INSTALL_DIR = "/opt/loaphuong"
#: Debian packages an agent uses at run time (a subset of scripts/setup.sh's runtime list).
AGENT_PACKAGES = ("git", "python3-venv", "alsa-utils", "ffmpeg", "opus-tools", "mpv")
ENROL_ENV = "/etc/loaphuong/enrol.env"
_CODE = re.compile(r"^[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}$")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SSID_MAX = 32


class BundleError(ValueError):
    """A bundle cannot be made from these inputs; the message says which one is wrong."""


@dataclass(frozen=True)
class BundleOptions:
    """What the technician gives besides the profile."""

    controller_url: str
    code: str
    hostname: str
    repo: str = DEFAULT_REPO
    timezone: str = "Asia/Ho_Chi_Minh"
    #: Wi-Fi profiles: the network to join (secrets never live in a profile, so they come from here).
    wifi_ssid: str | None = None
    wifi_password: str | None = None

    def check(self, profile: BoardProfile) -> None:
        """Raises BundleError naming the first bad option."""
        url = urlsplit(self.controller_url)
        if url.scheme not in ("https", "http") or not url.hostname or any(c in self.controller_url for c in " '\"$`\\"):
            raise BundleError(f"controller: {self.controller_url!r} is not an http(s) URL with a host")
        if not _CODE.match(self.code):
            raise BundleError(f"code: {self.code!r} is not an enrolment code such as ABCD-EFGH")
        if not _HOSTNAME.match(self.hostname):
            raise BundleError(f"hostname: {self.hostname!r} is not a host name (a-z, 0-9, '-', at most 63)")
        if not self.repo.startswith(("https://", "git@")) or any(c in self.repo for c in " '\"$`"):
            raise BundleError(f"repo: {self.repo!r} is not an https or ssh git URL")
        if profile.network.kind == "wifi":
            if not self.wifi_ssid or len(self.wifi_ssid.encode()) > _SSID_MAX:
                raise BundleError("wifi_ssid: a Wi-Fi profile needs the network name (1-32 bytes)")
            if self.wifi_password is not None and not 8 <= len(self.wifi_password) <= 63:
                raise BundleError("wifi_password: WPA2 passphrases are 8-63 characters")
        elif self.wifi_ssid or self.wifi_password:
            raise BundleError(f"wifi_ssid: profile {profile.name} uses {profile.network.kind}, not Wi-Fi")


def _user_data(profile: BoardProfile, opts: BundleOptions) -> dict[str, Any]:
    venv = f"{INSTALL_DIR}/.venv"
    files: list[dict[str, Any]] = [
        # Read by the enrol step below, then shredded: the code is a credential until it is used.
        {"path": ENROL_ENV, "permissions": "0600", "owner": "root:root",
         "content": f"LP_CONTROLLER='{opts.controller_url}'\nLP_CODE='{opts.code.upper()}'\n"},
    ]
    if profile.audio.dtoverlay:
        files.append({"path": "/boot/firmware/config.txt", "append": True,
                      "content": f"\n# loaphuong: {profile.audio.kind} audio ({profile.name})\n"
                                 f"dtoverlay={profile.audio.dtoverlay}\n"})
    runcmd: list[Any] = [
        ["git", "clone", "--depth", "1", opts.repo, INSTALL_DIR],
        ["python3", "-m", "venv", venv],
        [f"{venv}/bin/pip", "install", "--no-cache-dir", f"{INSTALL_DIR}[agent]"],
        "getent passwd loaphuong >/dev/null || useradd --system --home-dir /var/lib/loaphuong "
        "--shell /usr/sbin/nologin --groups audio,dialout loaphuong",
        "getent group gpio >/dev/null || groupadd --system gpio",
        ["install", "-d", "-m", "0750", "-o", "root", "-g", "loaphuong", "/etc/loaphuong"],
        [f"{venv}/bin/loaphuong", "install", "agent", "--venv", venv, "--lang", "en"],
        f". {ENROL_ENV} && {venv}/bin/loaphuong agent enroll --controller \"$LP_CONTROLLER\" --code \"$LP_CODE\"",
        ["shred", "-u", ENROL_ENV],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "loaphuong-agent.service"],
    ]
    return {
        "hostname": opts.hostname,
        "preserve_hostname": False,
        "timezone": opts.timezone,
        "ssh_pwauth": False,
        "package_update": True,
        "packages": list(AGENT_PACKAGES),
        "write_files": files,
        "runcmd": runcmd,
        "final_message": f"loaphuong agent ({profile.name}) installed and enrolled with {opts.controller_url}",
    }


def _network_config(profile: BoardProfile, opts: BundleOptions) -> dict[str, Any]:
    net = profile.network
    iface: dict[str, Any] = {"dhcp4": True, "optional": False}
    if net.kind == "ethernet":
        return {"version": 2, "ethernets": {net.interface: iface}}
    if net.kind == "wifi":
        ap: dict[str, Any] = {"password": opts.wifi_password} if opts.wifi_password else {}
        wifi = {**iface, "access-points": {opts.wifi_ssid: ap}}
        if net.wifi_country:
            wifi["regulatory-domain"] = net.wifi_country
        return {"version": 2, "wifis": {net.interface: wifi}}
    # a 4G modem: netplan hands it to NetworkManager/ModemManager with the operator's APN
    return {"version": 2, "renderer": "NetworkManager", "modems": {net.interface: {**iface, "apn": net.apn}}}


def _dump(data: dict[str, Any]) -> str:
    # Short lists inline (runcmd reads like commands); no wrapping, key order kept.
    text: str = yaml.safe_dump(data, default_flow_style=None, sort_keys=False, allow_unicode=True, width=1000)
    return text


def render(profile: BoardProfile, opts: BundleOptions) -> dict[str, str]:
    """The bundle's files by name (``user-data``, ``network-config``, ``meta-data``), validated."""
    opts.check(profile)
    files = {
        "user-data": "#cloud-config\n" + _dump(_user_data(profile, opts)),
        "network-config": _dump(_network_config(profile, opts)),
        "meta-data": _dump({"instance-id": f"loaphuong-{opts.hostname}", "local-hostname": opts.hostname}),
    }
    validate(files)
    return files


def validate(files: dict[str, str]) -> None:
    """Parses every file back; raises BundleError if one is not what cloud-init reads."""
    if not files.get("user-data", "").startswith("#cloud-config\n"):
        raise BundleError("user-data: does not start with #cloud-config")
    for name, text in files.items():
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BundleError(f"{name}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise BundleError(f"{name}: not a YAML mapping")
    net = yaml.safe_load(files["network-config"])
    if net.get("version") != 2:
        raise BundleError("network-config: not netplan version 2")


def write(files: dict[str, str], directory: Path) -> list[Path]:
    """Writes the files into ``directory`` (user-data is 0600: it holds the enrolment code)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600 if name == "user-data" else 0o644)
        out.append(path)
    return out


def zip_bytes(files: dict[str, str]) -> bytes:
    """The files as a zip archive (what the console offers to download)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()
