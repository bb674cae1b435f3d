"""ONVIF test fixtures: ipycam (a third-party virtual camera), our ONVIF emulator, WS-Discovery namespaces.

ipycam runs as a subprocess started through this module (``python -m tests.onvif_fixtures ipycam …``):
the runner feeds it generated frames and, in the main network namespace, binds every socket to
127.0.0.1 and switches its WS-Discovery server off (it would multicast a Hello on the real interface).
Inside a test network namespace (tests/netns.py) it runs with discovery on, bound to the namespace's
address.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.processes import ManagedProcess
from controller.tools.local_stack import free_port

REPO = Path(__file__).resolve().parents[1]
#: Test camera processes end by themselves after this long, even if a test run is killed before teardown.
MAX_SECONDS = 900
IPYCAM_USER = "admin"
IPYCAM_PASSWORD = "Mat-khau-1"
#: ipycam's identity as configured by the runner (what describe() must read back).
IPYCAM_MAKER = "LoaPhuongTest"
IPYCAM_MODEL = "VirtualCam-T1"
IPYCAM_SERIAL = "LP-TEST-0001"


def ipycam_available() -> str | None:
    """None when ipycam and ffmpeg are usable, else the reason a test must skip."""
    import shutil

    try:
        import cv2  # noqa: F401
        import ipycam  # noqa: F401
    except ImportError as exc:
        return f"ipycam not installed ({exc}); scripts/setup.sh --test installs it"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg not installed (ipycam's RTSP server needs it)"
    return None


@dataclass
class IpycamHandle:
    """A running ipycam."""

    proc: ManagedProcess
    host: str
    onvif_port: int
    rtsp_port: int
    username: str
    password: str

    @property
    def device_url(self) -> str:
        return f"http://{self.host}:{self.onvif_port}/onvif/device_service"

    def stop(self) -> None:
        """Stops ipycam and every ffmpeg it started (they share its process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.stop(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def ipycam_command(host: str, onvif_port: int, rtsp_port: int, *, discovery: bool,
                   username: str = IPYCAM_USER, password: str = IPYCAM_PASSWORD) -> list[str]:
    """The command line that runs ipycam through this module's runner."""
    cmd = [sys.executable, "-m", "tests.onvif_fixtures", "ipycam", "--host", host, "--onvif-port", str(onvif_port),
           "--rtsp-port", str(rtsp_port), "--unused-port", str(free_port()),
           "--username", username, "--password", password, "--max-seconds", str(MAX_SECONDS)]
    return [*cmd, "--discovery"] if discovery else cmd


def wait_tcp(host: str, port: int, proc: ManagedProcess, timeout: float = 20.0) -> None:
    """Waits until ``host:port`` accepts connections or the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise AssertionError(f"{proc.name} exited early:\n{proc.log_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} did not listen on {host}:{port} within {timeout}s:\n{proc.log_text()[-3000:]}")


def start_ipycam(tmp: Path, *, host: str = "127.0.0.1", prefix: list[str] | None = None,
                 discovery: bool = False) -> IpycamHandle:
    """Starts ipycam (``prefix`` e.g. ``ip netns exec NS`` runs it inside a namespace) and waits for ONVIF."""
    onvif_port, rtsp_port = free_port(), free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [*(prefix or []), *ipycam_command(host, onvif_port, rtsp_port, discovery=discovery)]
    proc = ManagedProcess("ipycam", cmd, tmp / "ipycam.log", env=env, cwd=tmp)
    handle = IpycamHandle(proc, host, onvif_port, rtsp_port, IPYCAM_USER, IPYCAM_PASSWORD)
    try:
        if prefix:
            _wait_in_namespace(prefix, host, onvif_port, proc)
        else:
            wait_tcp(host, onvif_port, proc)
            _wait_first_frame(handle)
    except BaseException:
        handle.stop()
        raise
    return handle


def _wait_first_frame(cam: IpycamHandle, timeout: float = 20.0) -> None:
    """Waits until ipycam serves a snapshot (its frame loop has produced a frame)."""
    import base64
    import urllib.error
    import urllib.request

    auth = base64.b64encode(f"{cam.username}:{cam.password}".encode()).decode()
    req = urllib.request.Request(f"http://{cam.host}:{cam.onvif_port}/snapshot.jpg",
                                 headers={"Authorization": f"Basic {auth}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(req, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"ipycam produced no frame within {timeout}s:\n{cam.proc.log_text()[-3000:]}")


def _wait_in_namespace(prefix: list[str], host: str, port: int, proc: ManagedProcess, timeout: float = 20.0) -> None:
    import subprocess

    probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=0.5).close()"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise AssertionError(f"ipycam exited early:\n{proc.log_text()[-3000:]}")
        done = subprocess.run([*prefix, sys.executable, "-c", probe], capture_output=True, timeout=10, check=False)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"ipycam did not listen on {host}:{port}:\n{proc.log_text()[-3000:]}")


def start_emulator_process(tmp: Path, host: str, *, prefix: list[str] | None = None, endpoint: str = "",
                           discovery: bool = True, bad_replies: bool = False, advertise: str = "",
                           timeout: float = 20.0) -> tuple[ManagedProcess, int]:
    """Runs tests/onvif_emulator.py as a process (inside a namespace with ``prefix``); returns it and its port.

    With ``discovery`` it answers WS-Discovery probes — only ever inside a test namespace. ``advertise``
    makes it announce another device-service URL (a camera the controller can reach on 127.0.0.1);
    ``bad_replies`` sends malformed answers before the real one.
    """
    port = free_port()
    cmd = [*(prefix or []), sys.executable, "-m", "tests.onvif_emulator", "--host", host, "--port", str(port),
           "--max-seconds", str(MAX_SECONDS)]
    if endpoint:
        cmd += ["--endpoint", endpoint]
    if discovery:
        cmd.append("--discovery")
    if bad_replies:
        cmd.append("--bad-replies")
    if advertise:
        cmd += ["--advertise", advertise]
    tmp.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess("onvif-emulator", cmd, tmp / f"emulator-{port}.log",
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    deadline = time.monotonic() + timeout
    while "onvif emulator on" not in proc.log_text():
        if not proc.alive or time.monotonic() > deadline:
            proc.stop()
            raise AssertionError(f"emulator did not start:\n{proc.log_text()[-3000:]}")
        time.sleep(0.1)
    return proc, port


@pytest.fixture
def ipycam_camera(tmp_path: Path) -> Iterator[IpycamHandle]:
    """ipycam on 127.0.0.1 (free ports, no WS-Discovery), with credentials; stopped in teardown."""
    reason = ipycam_available()
    if reason:
        pytest.skip(reason)
    handle = start_ipycam(tmp_path / "ipycam")
    try:
        yield handle
    finally:
        handle.stop()


# ------------------------------------------------------------------------------------------ runner


def _run_ipycam(args: argparse.Namespace) -> int:
    """Runs ipycam in this process with generated frames until SIGTERM."""
    import threading

    import ipycam.camera as camera_mod
    import numpy as np
    from ipycam import CameraConfig, IPCamera

    host = args.host

    class _BoundHttpServer(camera_mod.ReusableThreadingTCPServer):  # type: ignore[misc,name-defined]
        def __init__(self, address: tuple[str, int], handler: Any) -> None:
            super().__init__((host, address[1]), handler)

    class _BoundRtspServer(camera_mod.NativeRTSPServer):  # type: ignore[misc,name-defined]
        def __init__(self, port: int = 8554, host_: str = "") -> None:
            super().__init__(port=port, host=host)

    camera_mod.ReusableThreadingTCPServer = _BoundHttpServer
    camera_mod.NativeRTSPServer = _BoundRtspServer
    if not args.discovery:
        class _NoDiscovery:
            def __init__(self, _service: Any) -> None:
                pass

            def start(self) -> None:
                pass

            def stop(self) -> None:
                pass

        camera_mod.WSDiscoveryServer = _NoDiscovery

    config = CameraConfig(
        name="Cong-UBND", manufacturer=IPYCAM_MAKER, model=IPYCAM_MODEL, serial_number=IPYCAM_SERIAL,
        local_ip=host, onvif_port=args.onvif_port, rtsp_port=args.rtsp_port, rtmp_port=args.unused_port,
        web_port=args.onvif_port, go2rtc_api_port=args.unused_port, username=args.username, password=args.password,
        main_width=640, main_height=360, main_fps=10, main_bitrate="500K",
        sub_width=320, sub_height=180, sub_fps=10, sub_bitrate="200K", hw_accel="cpu", show_timestamp=False)
    camera = IPCamera(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not camera.start():
        return 1
    print(f"ipycam ready on {host}:{args.onvif_port} rtsp {args.rtsp_port}", flush=True)
    frame = np.zeros((360, 640, 3), dtype=np.uint8)
    x = 0
    deadline = time.monotonic() + args.max_seconds
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            frame[:] = (40, 60, 30)
            frame[100:260, x:x + 80] = (255, 255, 255)  # a moving block: motion for whoever watches
            x = (x + 8) % 560
            camera.stream(frame)
    finally:
        camera.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the subprocess runners."""
    parser = argparse.ArgumentParser(prog="python -m tests.onvif_fixtures")
    sub = parser.add_subparsers(dest="what", required=True)
    cam = sub.add_parser("ipycam")
    cam.add_argument("--host", required=True)
    cam.add_argument("--onvif-port", type=int, required=True)
    cam.add_argument("--rtsp-port", type=int, required=True)
    cam.add_argument("--unused-port", type=int, required=True)
    cam.add_argument("--username", default=IPYCAM_USER)
    cam.add_argument("--password", default=IPYCAM_PASSWORD)
    cam.add_argument("--discovery", action="store_true")
    cam.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    args = parser.parse_args(argv)
    return _run_ipycam(args)


if __name__ == "__main__":
    raise SystemExit(main())
