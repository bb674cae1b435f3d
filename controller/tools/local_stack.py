"""Run the whole system on one machine: Mosquitto, the controller and agents as child processes.

Used by ``loaphuong demo``, by the tests and by the benchmarks, so all three start the real
components the same way: generated configs in a directory, 127.0.0.1 only, processes that are
always stopped (SIGTERM, then SIGKILL) even when the caller fails.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.fleet.broker_accounts import (
    BrokerAccount,
    BrokerFiles,
    ServiceAccount,
    TlsFiles,
    ensure_tls,
    hash_password,
    new_password,
    render_service_accounts,
    write_atomically,
)
from controller.messaging.keys import write_private
from controller.processes import LOOPBACK, ManagedProcess, poll_until, wait_for_tcp


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True if 127.0.0.1:``port`` can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers do: a port whose old connections linger in TIME_WAIT is free to listen on.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def http_json(method: str, url: str, token: str | None = None, body: Any = None,
              timeout: float = 10.0) -> tuple[int, Any]:
    """A small JSON HTTP client on the standard library (status, decoded body)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if not url.startswith(("http://127.", "http://localhost")):
        raise ValueError(f"local_stack only talks to this machine, not {url}")
    req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


# ------------------------------------------------------------------------------------------ mosquitto


def mosquitto_binary() -> str:
    """Path of the mosquitto broker (Debian installs it in /usr/sbin)."""
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None)
    if found is None:
        raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
    return found


@dataclass(frozen=True, slots=True)
class BrokerSecurity:
    """The security config of a broker this module started: the controller's account and the files it manages."""

    port: int
    username: str
    password: str
    password_file: Path
    acl_file: Path
    pid_file: Path
    tls: TlsFiles
    tls_port: int | None = None
    #: (username, password) of the tool accounts: read-write on ``lp/#`` like the controller, for tests and
    #: benches that watch or inject traffic beside a running controller. The broker binds a client id to
    #: its account, so each account holds one connection: a tool using the controller's would disconnect it.
    tools: tuple[tuple[str, str], ...] = ()

    def controller_env(self) -> dict[str, str]:
        """``LP_*`` settings that let a controller log in and manage the broker's accounts."""
        return {"LP_MQTT_USERNAME": self.username, "LP_MQTT_PASSWORD": self.password,
                "LP_BROKER_PASSWORD_FILE": str(self.password_file), "LP_BROKER_ACL_FILE": str(self.acl_file),
                "LP_BROKER_PID_FILE": str(self.pid_file), "LP_AGENT_MQTT_CA_FILE": str(self.tls.ca_cert)}


#: Brokers started by this process, by port: tests and benches look the controller's account up here.
_BROKERS: dict[int, BrokerSecurity] = {}
CONTROLLER_USERNAME = "loaphuong-controller"
#: How many tool accounts each local broker has (one connection each; tests hold at most a few at once).
TOOL_ACCOUNTS = 8


def broker_security(port: int) -> BrokerSecurity | None:
    """The security config of the broker this process started on ``port`` (None if it did not)."""
    return _BROKERS.get(port)


def _broker_security(directory: Path, port: int, tls_port: int | None) -> BrokerSecurity:
    """The controller's account (created once per directory, so a restarted broker keeps it) and the files."""
    directory = directory.resolve()
    account = directory / "controller-account.json"
    if account.exists():
        saved = json.loads(account.read_text(encoding="utf-8"))
    else:
        saved = {"username": CONTROLLER_USERNAME, "password": new_password()}
        write_private(account, json.dumps(saved).encode())
    tools = _tool_accounts(directory)
    sec = BrokerSecurity(port=port, username=saved["username"], password=saved["password"],
                         password_file=directory / "passwd", acl_file=directory / "acl",
                         pid_file=directory / "mosquitto.pid", tls=ensure_tls(directory / "tls"), tls_port=tls_port,
                         tools=tools)
    if not sec.password_file.exists():
        # The controller account alone; the controller rewrites both files with its agents once it runs.
        BrokerFiles(sec.password_file, sec.acl_file, None).write(
            BrokerAccount(sec.username, hash_password(sec.password)), [])
    _BROKERS[port] = sec
    return sec


def _tool_accounts(directory: Path) -> tuple[tuple[str, str], ...]:
    """The tool accounts (created once per directory) and their lines in the broker's service-accounts file."""
    saved_file = directory / "tool-accounts.json"
    if saved_file.exists():
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
    else:
        saved = [{"username": f"loaphuong-tool-{i}", "password": new_password()} for i in range(1, TOOL_ACCOUNTS + 1)]
        write_private(saved_file, json.dumps(saved).encode())
    tools = tuple((t["username"], t["password"]) for t in saved)
    services = BrokerFiles(directory / "passwd", directory / "acl", None).service_accounts_file
    if not services.exists():
        write_atomically(services, render_service_accounts(
            [ServiceAccount(user, "readwrite", hash_password(password)) for user, password in tools]))
    return tools


def write_mosquitto_config(directory: Path, port: int, tls_port: int | None = None) -> Path:
    """A broker config for this machine only: loopback listeners, persistence in ``directory``, anonymous
    access off, the password and ACL files the controller manages, and a TLS listener if ``tls_port``.

    Every listener binds the client id to the account (``use_username_as_clientid``), as a site's config
    does (controller/tools/install.py): one account can never take over another's session. It is a listener
    option in Mosquitto 2.0: written before the first ``listener`` line it would configure (and open) a
    default listener on port 1883 of every interface instead, so it follows each ``listener`` line.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sec = _broker_security(directory, port, tls_port)
    lines = [
        "# generated by loaphuong; loopback only",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {sec.password_file}",
        f"acl_file {sec.acl_file}",
        f"pid_file {sec.pid_file}",
        f"listener {port} {LOOPBACK}",
        "use_username_as_clientid true",
    ]
    if tls_port is not None:
        lines += [f"listener {tls_port} {LOOPBACK}", "use_username_as_clientid true", f"cafile {sec.tls.ca_cert}",
                  f"certfile {sec.tls.server_cert}", f"keyfile {sec.tls.server_key}", "tls_version tlsv1.2"]
    lines += [
        "persistence true",
        f"persistence_location {directory.resolve()}/",
        "autosave_interval 5",
        "max_packet_size 300000",
        # The controller's queue at the broker holds every agent's events when a burst outruns it (one
        # device flooding, a fleet resending after an outage): as on a site (install.py), deep but bounded.
        "max_queued_messages 100000",
        "max_queued_bytes 134217728",
        # Into the same file start_mosquitto sends its output to, but written by Mosquitto itself: it
        # flushes every line there, while its stdout is block-buffered (lost on kill -9, late for tests).
        f"log_dest file {directory.resolve()}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if os.geteuid() == 0:
        # As root mosquitto drops to its own user, which cannot write a root-owned directory.
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
    path = directory / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_mosquitto(directory: Path, port: int, timeout: float = 10.0, tls_port: int | None = None) -> ManagedProcess:
    """Starts Mosquitto on 127.0.0.1:``port`` (and TLS on ``tls_port``) and waits until it accepts connections.

    Anonymous access is off: :func:`broker_security` gives the controller's account, and
    :func:`start_controller` passes it on by itself.
    """
    conf = write_mosquitto_config(directory, port, tls_port)
    proc = ManagedProcess("mosquitto", [mosquitto_binary(), "-c", str(conf)], directory / "mosquitto.log")
    try:
        wait_for_tcp(port, timeout, proc)
        if tls_port is not None:
            wait_for_tcp(tls_port, timeout, proc)
        # Accepting is not yet serving: a SIGHUP (the controller's reload of the password file) that arrives before
        # the broker's main loop has installed its handlers kills it. A CONNACK comes from that loop.
        poll_until(lambda: _answers_mqtt(port), timeout, f"no CONNACK from mosquitto on {LOOPBACK}:{port}", proc,
                   0.05)
    except BaseException:
        proc.stop()
        raise
    return proc


#: MQTT 3.1.1 CONNECT, clean session, empty client id, no credentials: refused (rc 5), but answered.
_PROBE_CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0a\x00\x00"


def _answers_mqtt(port: int) -> bool:
    """True once the broker on ``port`` answers a CONNECT with a CONNACK (whatever its reason code)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            sock.sendall(_PROBE_CONNECT)
            return sock.recv(1)[:1] == b"\x20"
    except OSError:
        return False


# ----------------------------------------------------------------------------------------- controller


def loaphuong_command() -> list[str]:
    """How to run ``loaphuong`` with this interpreter, installed or not."""
    return [sys.executable, "-m", "loaphuong.cli"]


def start_controller(data_dir: Path, http_port: int, mqtt_port: int, log_path: Path,
                     extra_env: Mapping[str, str] | None = None, timeout: float = 60.0) -> ManagedProcess:
    """Starts ``loaphuong controller`` and waits for ``/healthz`` (a minute: its imports are heavy, and a
    loaded CI machine running the suite's parallel test processes has seen 25 s)."""
    sec = broker_security(mqtt_port)
    env = {**os.environ, "LP_LOG_LEVEL": "INFO", **(sec.controller_env() if sec else {}), **(extra_env or {})}
    cmd = [*loaphuong_command(), "controller", "--data-dir", str(data_dir), "--host", LOOPBACK,
           "--port", str(http_port), "--mqtt-host", LOOPBACK, "--mqtt-port", str(mqtt_port)]
    proc = ManagedProcess("controller", cmd, log_path, env=env)
    try:
        wait_for_http(f"http://{LOOPBACK}:{http_port}/healthz", timeout, proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def wait_for_http(url: str, timeout: float, proc: ManagedProcess | None = None) -> None:
    """Waits until ``url`` answers 200."""
    def answers() -> bool:
        try:
            return http_json("GET", url, timeout=1)[0] == 200
        except (OSError, ValueError):
            return False

    poll_until(answers, timeout, f"{url} did not answer", proc, 0.1)


# --------------------------------------------------------------------------------------------- agents


@dataclass(frozen=True, slots=True)
class AgentFiles:
    """Where one agent's config, data and file-sink output live."""

    agent_id: str
    config: Path
    data_dir: Path
    sink_dir: Path


def register_agent(api: str, admin_token: str, agent_id: str, zones: Sequence[str], name: str = "") -> dict[str, Any]:
    """Registers an agent through the API; returns the 201 body (with its token)."""
    status, body = http_json("POST", f"{api}/api/v1/devices", admin_token,
                             {"id": agent_id, "name": name or agent_id, "zones": list(zones)})
    if status != 201:
        raise RuntimeError(f"registering {agent_id} failed: {status} {body}")
    assert isinstance(body, dict)
    return body


def write_agent_config(directory: Path, registered: Mapping[str, Any], zones: Sequence[str],
                       output: str = "file", extra: str = "", with_ward: bool = True) -> AgentFiles:
    """Writes an agent's TOML config and token file (0600) for a file-sink or ALSA output; with its ward, as
    enrolment writes it (``with_ward=False``: a config from before wards, on the legacy group topics)."""
    agent_id = registered["device"]["id"]
    ward = registered["device"].get("ward") if with_ward else None
    ward_line = f"ward = {json.dumps(ward)}\n" if ward else ""
    directory.mkdir(parents=True, exist_ok=True)
    write_private(directory / "token", (registered["token"] + "\n").encode())
    sink = directory / "sink"
    zone_list = ", ".join(json.dumps(z) for z in zones)
    out_section = ('[output]\nkind = "file"\nname = "file-sink"\ndirectory = "sink"\n' if output == "file"
                   else '[output]\nkind = "alsa"\nname = "speaker"\ndevice = "default"\n')
    text = (
        f"# loaphuong agent {agent_id}\n"
        f'agent_id = "{agent_id}"\n'
        f"{ward_line}"
        f"zones = [{zone_list}]\n"
        f'controller_url = "{registered["controller_url"]}"\n'
        f'controller_public_key = "{registered["controller_public_key"]}"\n'
        f'token_file = "token"\n'
        f'data_dir = "data"\n'
        f"{extra}"
        f"\n[mqtt]\n"
        f'host = "{registered["mqtt_host"]}"\n'
        f"port = {registered['mqtt_port']}\n"
        f"{_mqtt_account_lines(registered)}"
        f"\n{out_section}"
    )
    config = directory / "agent.toml"
    config.write_text(text, encoding="utf-8")
    return AgentFiles(agent_id, config, directory / "data", sink)


def _mqtt_account_lines(registered: Mapping[str, Any]) -> str:
    """The agent's broker username and password, if the registration gave them."""
    if not registered.get("mqtt_username"):
        return ""
    return (f"username = {json.dumps(registered['mqtt_username'])}\n"
            f"password = {json.dumps(registered['mqtt_password'])}\n")


def start_agent(files: AgentFiles, log_path: Path, env: Mapping[str, str] | None = None) -> ManagedProcess:
    """Starts ``loaphuong agent --config …``."""
    return ManagedProcess(f"agent-{files.agent_id}", [*loaphuong_command(), "agent", "--config", str(files.config)],
                          log_path, env={**os.environ, **(env or {})})
