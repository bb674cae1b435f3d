"""``loaphuong demo``: Mosquitto, a controller on SQLite and three agents with file sinks, on this machine.

Everything lives under ``./var`` and survives a restart of the demo (same admin, same agents, same
history). Ctrl-C stops the agents, then the controller, then the broker.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
import tomllib
from pathlib import Path
from types import FrameType

from controller.accounts.auth import ADMIN_PASSWORD_FILE, ADMIN_TOKEN_FILE
from controller.broadcasts.live.icecast import start_icecast
from controller.messaging.keys import load_or_create_signing_key, write_private
from controller.processes import ManagedProcess
from controller.tools.local_stack import (
    AgentFiles,
    free_port,
    http_json,
    port_is_free,
    register_agent,
    start_agent,
    start_controller,
    start_mosquitto,
    write_agent_config,
)
from devices.protocol import public_key_to_text

#: The demo ward: three speakers in two residential quarters (khu phố).
DEMO_AGENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("loa-01", "Loa cổng UBND phường", ("khu-pho-1",)),
    ("loa-02", "Loa chợ phường", ("khu-pho-1",)),
    ("loa-03", "Loa nhà văn hóa khu phố 2", ("khu-pho-2",)),
)


def icecast_binary_found() -> bool:
    """True if Debian's icecast2 (the live-broadcast hub) is installed."""
    return shutil.which("icecast2") is not None or shutil.which("icecast") is not None


def _pick_port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()


def _agent_files(var: Path, api: str, admin_token: str, mqtt_port: int, agent_id: str, name: str,
                 zones: tuple[str, ...]) -> AgentFiles:
    """Registers the agent on first run; on later runs rewrites its config for this run's ports."""
    directory = var / "agents" / agent_id
    token_file = directory / "token"
    status, _ = http_json("GET", f"{api}/api/v1/devices/{agent_id}", admin_token)
    if status == 404:
        return write_agent_config(directory, register_agent(api, admin_token, agent_id, zones, name), zones)
    if status != 200 or not token_file.exists():
        raise RuntimeError(f"{agent_id} is registered but {token_file} is missing; delete {var} to start afresh")
    key = public_key_to_text(load_or_create_signing_key(var / "controller").public_key())
    known = {"device": {"id": agent_id}, "token": token_file.read_text().strip(), "controller_url": api,
             "controller_public_key": key, "mqtt_host": "127.0.0.1", "mqtt_port": mqtt_port}
    # Its broker account was issued at registration (the broker allows no anonymous client): keep it.
    try:
        mqtt = tomllib.loads((directory / "agent.toml").read_text(encoding="utf-8")).get("mqtt", {})
    except (OSError, tomllib.TOMLDecodeError):
        mqtt = {}
    if not (mqtt.get("username") and mqtt.get("password")):
        raise RuntimeError(f"{agent_id} has no broker account in {directory / 'agent.toml'} (made before the broker "
                           f"required one); delete {var} to start afresh")
    known |= {"mqtt_username": mqtt["username"], "mqtt_password": mqtt["password"]}
    return write_agent_config(directory, known, zones)


def main(argv: list[str]) -> int:
    """Runs the demo until Ctrl-C; returns non-zero if a component fails to start or dies."""
    parser = argparse.ArgumentParser(prog="loaphuong demo", description=__doc__)
    parser.add_argument("--var", type=Path, default=Path("var"), help="state directory (default ./var)")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--mqtt-port", type=int, default=1884)
    parser.add_argument("--run-for", type=float, default=0, help="stop after this many seconds (0 = until Ctrl-C)")
    args = parser.parse_args(argv)
    var: Path = args.var.resolve()
    var.mkdir(parents=True, exist_ok=True)
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"loaphuong demo: {tool} is not installed (make demo installs it)", file=sys.stderr)
            return 1

    stop = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    procs: list[ManagedProcess] = []
    try:
        mqtt_port = _pick_port(args.mqtt_port)
        procs.append(start_mosquitto(var / "mosquitto", mqtt_port))
        http_port = _pick_port(args.http_port)
        # Live broadcast: the controller finds Icecast through this file, written when Icecast starts below.
        icecast_file = var / "icecast" / "icecast.json"
        procs.append(start_controller(var / "controller", http_port, mqtt_port, var / "logs" / "controller.log",
                                      extra_env={"LP_ICECAST_FILE": str(icecast_file)}))
        api = f"http://127.0.0.1:{http_port}"
        live_line = "not available: icecast2 is not installed (make demo installs it)"
        if icecast_binary_found():
            ice_port = _pick_port(8000)
            procs.append(start_icecast(var / "icecast", ice_port, f"{api}/api/v1/live/icecast-auth"))
            live_line = f"{api}/console/live (Icecast on 127.0.0.1:{ice_port})"
        admin_token = (var / "controller" / ADMIN_TOKEN_FILE).read_text().strip()
        write_private(var / "admin.token", (admin_token + "\n").encode())
        password_file = var / "controller" / ADMIN_PASSWORD_FILE
        login = password_file.read_text().split() if password_file.exists() else ["admin", "(changed)"]

        files = [_agent_files(var, api, admin_token, mqtt_port, agent_id, name, zones)
                 for agent_id, name, zones in DEMO_AGENTS]
        for f in files:
            procs.append(start_agent(f, var / "logs" / f"{f.agent_id}.log"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, devices = http_json("GET", f"{api}/api/v1/devices", admin_token)
            if isinstance(devices, list) and sum(d["online"] for d in devices) >= len(files):
                break
            time.sleep(0.2)

        body = json.dumps({"text": "Kính thưa bà con, UBND phường thông báo lịch tiêm chủng.", "targets": ["all"]},
                          ensure_ascii=False)
        print(f"""
loaphuong demo is running (state in {var}).

  Console (bảng điều khiển):  {api}/console/
  First admin login:          {login[0]} / {login[1]}
  Admin API token:            {var / 'admin.token'} (mode 0600)
  MQTT broker:                127.0.0.1:{mqtt_port} (no anonymous access; to watch it with mosquitto_sub use a
                              tool account from {var / 'mosquitto' / 'tool-accounts.json'}: one connection
                              per account, and the controller's own would disconnect it; docs/security.md)
  Live (phát trực tiếp):      {live_line}
  Agents (file sinks):        {', '.join(f'{f.agent_id} → {f.sink_dir}' for f in files)}
  Logs:                       {var / 'logs'}

Send an announcement to every speaker:

  curl -s -X POST {api}/api/v1/announcements \\
       -H "Authorization: Bearer $(cat {var / 'admin.token'})" -H 'Content-Type: application/json' \\
       -d '{body}'

then watch {files[0].sink_dir}/plays.jsonl and GET {api}/api/v1/plays.
Press Ctrl-C to stop everything.
""", flush=True)
        started = time.monotonic()
        while not stop:
            dead = [p for p in procs if not p.alive]
            if dead:
                for p in dead:
                    print(f"loaphuong demo: {p.name} exited with {p.returncode}; see {p.log_path}", file=sys.stderr)
                return 1
            if args.run_for and time.monotonic() - started >= args.run_for:
                break
            time.sleep(0.2)
        print("\nstopping agents, controller and broker…", flush=True)
        return 0
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"loaphuong demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(procs):
            proc.stop()
