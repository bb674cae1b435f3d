"""``loaphuong agent enroll``: trade a one-time code for this Pi's identity and write its config.

The controller answers ``POST /api/v1/enrol`` with the agent id, zones, the command-signing public key,
a device token, a broker account (and the CA that signed the broker's certificate) and the board
profile. This writes ``agent.toml`` (0600), ``token`` (0600) and ``broker-ca.crt`` next to it, checks
the result with the agent's own config loader, and only then replaces the old files, so a failed
enrolment never leaves a half-written config. Standard library HTTP only (the agent stays small).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pydantic import ValidationError

from devices.enrolment import EnrolmentIdentity
from edge_agent.amplifier import section_from_profile
from edge_agent.config import ConfigError, load_config
from edge_agent.groups import GROUPS_FILE
from firmware_configs.profiles import BoardProfile, ProfileError, parse_profile

DEFAULT_CONFIG = Path("/etc/loaphuong/agent.toml")
DEFAULT_DATA_DIR = Path("/var/lib/loaphuong/agent")


class EnrolError(Exception):
    """Enrolment failed; the message says why (shown to the technician as is)."""


def parse_code(text: str, controller: str | None) -> tuple[str, str]:
    """(controller URL, code) from ``--code`` (a code, or the ``loaphuong://enrol?…`` a QR code holds)."""
    if text.startswith("loaphuong://"):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query)
        code = (query.get("code") or [""])[0]
        controller = controller or (query.get("controller") or [""])[0]
    else:
        code = text
    if not code.strip():
        raise EnrolError("no enrolment code given")
    if not controller:
        raise EnrolError("give --controller https://… (or the loaphuong://enrol?… text of the QR code)")
    return controller.rstrip("/"), code.strip()


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        # The answer carries secrets: only HTTPS, except to this machine (tests, a controller on the Pi itself).
        raise EnrolError(f"{url}: the controller must be reached over https:// (http only to this machine)")


def fetch_identity(controller: str, code: str, ca_file: Path | None = None, timeout: float = 30.0) -> EnrolmentIdentity:
    """Asks the controller for this device's identity; :class:`EnrolError` with its reason if refused."""
    _check_url(controller)
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    url = f"{controller}/api/v1/enrol"
    req = urllib.request.Request(url, data=json.dumps({"code": code}).encode(),  # noqa: S310 (checked above)
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310 (checked above)
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise EnrolError(f"the controller refused: {exc.code} {_detail(exc.read())}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EnrolError(f"cannot reach {controller}: {exc}") from None
    try:
        return EnrolmentIdentity.model_validate_json(body)
    except ValidationError as exc:
        raise EnrolError(f"the controller's answer is not an identity: {exc}") from None


def _detail(raw: bytes) -> str:
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        return raw.decode(errors="replace")[:300]
    if isinstance(detail, dict):
        return f"{detail.get('reason')}: {detail.get('message')}"
    return str(detail)


def _q(value: object) -> str:
    """A TOML basic string (JSON's escapes are a subset TOML accepts)."""
    return json.dumps(str(value), ensure_ascii=False)


def render_config(identity: EnrolmentIdentity, profile: BoardProfile | None, data_dir: Path,
                  file_output: Path | None = None) -> str:
    """The agent's TOML config for ``identity`` on a board described by ``profile``."""
    zones = ", ".join(_q(z) for z in identity.zones)
    lines = [
        f"# written by loaphuong agent enroll for {identity.agent_id}; enrolling again rotates its secrets",
        f"agent_id = {_q(identity.agent_id)}",
        *([f"ward = {_q(identity.ward)}"] if identity.ward else []),
        f"zones = [{zones}]",
        f"controller_url = {_q(identity.controller_url)}",
        f"controller_public_key = {_q(identity.controller_public_key)}",
        'token_file = "token"',
        f"data_dir = {_q(data_dir)}",
        "",
        "[mqtt]",
        f"host = {_q(identity.mqtt.host)}",
        f"port = {identity.mqtt.port}",
        f"username = {_q(identity.mqtt.username)}",
        f"password = {_q(identity.mqtt.password)}",
    ]
    if identity.mqtt.ca_certificate:
        lines.append('tls_ca_file = "broker-ca.crt"')
    lines += ["", "[output]"]
    if file_output is not None:
        lines += ['kind = "file"', 'name = "file-sink"', f"directory = {_q(file_output)}"]
    else:
        device = profile.audio.alsa_device if profile else "default"
        lines += ['kind = "alsa"', 'name = "speaker"', f"device = {_q(device)}"]
    if profile is not None and profile.amplifier is not None:
        amp = profile.amplifier
        section = section_from_profile(amp.relay_gpio, amp.active_high, amp.warmup_ms, amp.hold_s)
        lines += ["", "[amplifier]", f"gpio_pin = {section.gpio_pin}",
                  f"active_low = {str(section.active_low).lower()}", f"warm_up_ms = {section.warm_up_ms}",
                  f"idle_off_s = {section.idle_off_s}"]
    if profile is not None and profile.sign is not None:
        sign = profile.sign
        lines += ["", "[[signs]]", 'name = "sign"', f"width = {sign.width}", f"height = {sign.height}",
                  "[signs.driver]", f"kind = {_q(sign.protocol)}", f"port = {_q(sign.port)}", f"baud = {sign.baud}"]
    return "\n".join(lines) + "\n"


def _write(path: Path, data: str, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    os.chmod(tmp, mode)
    return tmp


def write_identity(identity: EnrolmentIdentity, config: Path, data_dir: Path,
                   file_output: Path | None = None) -> BoardProfile | None:
    """Writes config, token and CA next to ``config``; checks the config loads before replacing anything."""
    profile = None
    if identity.board_profile is not None:
        try:
            profile = parse_profile(identity.board_profile, "the controller's board profile")
        except ProfileError as exc:
            raise EnrolError(str(exc)) from None
    config.parent.mkdir(parents=True, exist_ok=True)
    staged = [(_write(config.parent / "token", identity.token + "\n", 0o600), config.parent / "token")]
    if identity.mqtt.ca_certificate:
        staged.append((_write(config.parent / "broker-ca.crt", identity.mqtt.ca_certificate, 0o644),
                       config.parent / "broker-ca.crt"))
    text = render_config(identity, profile, data_dir, file_output)
    staged.append((_write(config, text, 0o600), config))
    try:
        # Check the new config as the agent will read it (token and CA paths resolve to the staged names).
        check = config.with_name(f".{config.name}.check")
        check.write_text(text.replace('token_file = "token"', f'token_file = {_q(staged[0][0].name)}'),
                         encoding="utf-8")
        try:
            loaded = load_config(check)
        finally:
            check.unlink(missing_ok=True)
    except ConfigError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise EnrolError(f"the config from the controller does not load: {exc}") from None
    for tmp, final in staged:
        os.replace(tmp, final)
    # Groups the controller gave the old identity must not outlive it: the new config's ward and zones rule.
    (loaded.data_dir / GROUPS_FILE).unlink(missing_ok=True)
    return profile


def main(argv: list[str]) -> int:
    """``loaphuong agent enroll --controller URL --code XXXX-XXXX [--config PATH]``; exit 0, or 1 with the reason."""
    parser = argparse.ArgumentParser(
        prog="loaphuong agent enroll",
        description="Fetch this device's identity with a one-time code and write its config.")
    parser.add_argument("--controller", help="the controller's URL, https://…")
    parser.add_argument("--code", required=True, help="XXXX-XXXX, or the loaphuong://enrol?… text of the QR code")
    parser.add_argument("--config", "-c", type=Path, default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"default {DEFAULT_DATA_DIR}")
    parser.add_argument("--ca-file", type=Path, help="CA bundle that signed the controller's HTTPS certificate")
    parser.add_argument("--file-output", type=Path,
                        help="write plays to WAV files in this folder instead of a sound card (demo, tests)")
    args = parser.parse_args(argv)
    try:
        controller, code = parse_code(args.code, args.controller)
        identity = fetch_identity(controller, code, args.ca_file)
        profile = write_identity(identity, args.config, args.data_dir, args.file_output)
    except EnrolError as exc:
        print(f"loaphuong agent enroll: {exc}", file=sys.stderr)
        return 1
    board = f", board profile {profile.name}" if profile else ""
    print(f"enrolled as {identity.agent_id} (zones: {', '.join(identity.zones) or 'none'}{board}); "
          f"config written to {args.config}; start it with: loaphuong agent --config {args.config}")
    return 0
