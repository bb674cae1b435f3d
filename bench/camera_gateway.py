"""Camera gateway: 1 vs 10 vs 50 MJPEG viewers of one camera, against one-OpenCV-reader-per-viewer.

Starts, on 127.0.0.1 with free ports in a temp dir: GStreamer's RTSP server with a live H.264 test
pattern (640x360, 15 fps, x264), Mosquitto and the controller; registers the stream as an RTSP-only
camera and, for N viewers, opens N ``live.mjpeg`` connections from this process. It measures the
controller process's CPU (utime + stime from /proc) over a window while every viewer reads, and the
frames each viewer got.

In the same run, the naive design: a child process opens N OpenCV readers of the same stream, one
per viewer, each decoding and JPEG-encoding every frame (what a per-viewer pipeline must do before
it has served a single byte, so this is a lower bound of its cost); its CPU is measured the same way.

Latency from source to viewer: the source flips between a black and a white pattern once a second
(the RTSP server reports the instant it applied each flip); viewer 0 decodes every JPEG it receives
and notes when the new brightness arrives. The raw tool (one OpenCV reader straight on the RTSP
stream) is measured the same way, in the naive child with N = 1.

    .venv/bin/python bench/camera_gateway.py
    .venv/bin/python bench/camera_gateway.py --viewers 1 10 50 --seconds 10 --json camera.json

Targets (issue 6): gateway CPU with 10 viewers ≤ 1.3x with one; latency p50 ≤ 300 ms on loopback.
Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.tools.local_stack import free_port, http_json, start_controller, start_mosquitto
from tests.rtsp_server import RtspServer

FLIP_EVERY_S = 1.0
TICKS = os.sysconf("SC_CLK_TCK")


def say(msg: str) -> None:
    print(f"[camera-bench] {msg}", file=sys.stderr, flush=True)


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    return sum(cpu_times(pid))


def brightness(jpeg_or_image: Any) -> float:
    import cv2
    import numpy as np

    image = jpeg_or_image
    if isinstance(jpeg_or_image, bytes):
        image = cv2.imdecode(np.frombuffer(jpeg_or_image, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(image[::8, ::8].mean())


class Flipper(threading.Thread):
    """Flips the source between black and white; records when each flip was applied."""

    def __init__(self, server: RtspServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.flips: list[tuple[float, str]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        pattern = "white"
        while not self.stop_event.wait(FLIP_EVERY_S):
            self.flips.append((self.server.set_pattern(pattern), pattern))
            pattern = "black" if pattern == "white" else "white"


def latencies(flips: list[tuple[float, str]], seen: list[tuple[float, float]]) -> list[float]:
    """Per flip: first arrival after it whose brightness is the new pattern's, minus the flip time (ms)."""
    out = []
    for applied, pattern in flips:
        for arrived, level in seen:
            if arrived >= applied and ((pattern == "white" and level > 200) or (pattern == "black" and level < 50)):
                out.append((arrived - applied) * 1000)
                break
    return out


class Viewer(threading.Thread):
    """One MJPEG connection; counts frames, viewer 0 also notes each frame's brightness."""

    def __init__(self, api: str, path: str, token: str, measure: bool) -> None:
        super().__init__(daemon=True)
        host, port = api.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.path, self.token, self.measure = path, token, measure
        self.frames = 0
        self.seen: list[tuple[float, float]] = []
        self.error: str | None = None
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            self.conn.request("GET", self.path, headers={"Authorization": f"Bearer {self.token}"})
            resp = self.conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            while not self.stop_event.is_set():
                line = resp.readline()
                if not line:
                    break
                if not line.startswith(b"--"):
                    continue
                length = 0
                while (header := resp.readline().strip()):
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                body = resp.read(length)
                self.frames += 1
                if self.measure:
                    self.seen.append((time.time(), brightness(body)))
        except Exception as exc:  # reported in the summary, never hangs the bench
            if not self.stop_event.is_set():
                self.error = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.stop_event.set()
        with contextlib.suppress(Exception):
            self.conn.sock.shutdown(2)  # type: ignore[union-attr]
        self.conn.close()


def run_gateway(api: str, token: str, pid: int, server: RtspServer, n: int, seconds: float) -> dict[str, Any]:
    viewers = [Viewer(api, "/api/v1/cameras/bench/live.mjpeg", token, measure=i == 0) for i in range(n)]
    for v in viewers:
        v.start()
    time.sleep(4)  # the reader opens the stream and every viewer is getting frames
    flipper = Flipper(server)
    frames0 = [v.frames for v in viewers]
    (u0, s0), t0 = cpu_times(pid), time.monotonic()
    flipper.start()
    time.sleep(seconds)
    (u1, s1), t1 = cpu_times(pid), time.monotonic()
    flipper.stop_event.set()
    flipper.join(5)
    frames = [v.frames - f for v, f in zip(viewers, frames0, strict=True)]
    errors = [v.error for v in viewers if v.error]
    lat = latencies(flipper.flips, viewers[0].seen)
    for v in viewers:
        v.close()
    for v in viewers:
        v.join(5)
    wall = t1 - t0
    return {"viewers": n, "cpu_pct": 100 * (u1 - u0 + s1 - s0) / wall, "sys_pct": 100 * (s1 - s0) / wall,
            "fps_per_viewer_min": min(frames) / wall,
            "fps_per_viewer_mean": statistics.mean(frames) / wall, "latency_ms": lat, "errors": errors}


def run_naive(url: str, n: int, seconds: float, server: RtspServer) -> dict[str, Any]:
    """The naive design in a child process (its CPU alone), flips applied from here."""
    proc = subprocess.Popen([sys.executable, __file__, "--naive-child", str(n), "--url", url,
                             "--seconds", str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        flipper = Flipper(server)
        time.sleep(4 + min(n, 50) * 0.05)
        flipper.start()
        out, err = proc.communicate(timeout=seconds + 120)
        flipper.stop_event.set()
        flipper.join(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    if proc.returncode != 0:
        raise RuntimeError(f"naive child failed: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    result["latency_ms"] = latencies(flipper.flips, [tuple(s) for s in result.pop("seen")])  # type: ignore[misc]
    return result


def naive_child(n: int, url: str, seconds: float) -> int:
    """N independent OpenCV readers, each decoding and JPEG-encoding every frame of its own stream."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS",
                          "rtsp_transport;tcp|analyzeduration;200000|probesize;32768|fflags;nobuffer")
    frames = [0] * n
    seen: list[tuple[float, float]] = []
    stop = threading.Event()

    def reader(i: int) -> None:
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000,
                                                     cv2.CAP_PROP_READ_TIMEOUT_MSEC, 10000])
        try:
            while not stop.is_set():
                ok, image = cap.read()
                if not ok:
                    break
                cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
                frames[i] += 1
                if i == 0:
                    seen.append((time.time(), brightness(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))))
        finally:
            cap.release()

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(4 + min(n, 50) * 0.05)
    frames0 = list(frames)
    cpu0, t0 = cpu_seconds(os.getpid()), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(os.getpid()), time.monotonic()
    stop.set()
    got = [f - f0 for f, f0 in zip(frames, frames0, strict=True)]
    for t in threads:
        t.join(15)
    wall = t1 - t0
    json.dump({"viewers": n, "cpu_pct": 100 * (cpu1 - cpu0) / wall, "fps_per_viewer_min": min(got) / wall,
               "fps_per_viewer_mean": statistics.mean(got) / wall, "seen": seen}, sys.stdout)
    return 0


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median CPU, with every run's latencies and errors pooled and the CPUs listed."""
    ordered = sorted(runs, key=lambda r: r["cpu_pct"])
    mid = dict(ordered[len(ordered) // 2])
    mid["cpu_runs"] = [round(r["cpu_pct"], 2) for r in runs]
    mid["latency_ms"] = [x for r in runs for x in r["latency_ms"]]
    mid["errors"] = [e for r in runs for e in r["errors"]]
    mid["fps_per_viewer_min"] = min(r["fps_per_viewer_min"] for r in runs)
    return mid


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def fmt(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:.0f}{unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per case")
    parser.add_argument("--rounds", type=int, default=3, help="gateway runs per case (the median CPU is shown)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-naive", action="store_true", help="skip the one-reader-per-viewer comparison")
    parser.add_argument("--naive-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.naive_child:
        return naive_child(ns.naive_child, ns.url, ns.seconds)

    with tempfile.TemporaryDirectory(prefix="lp-camera-bench-") as tmp:
        d = Path(tmp)
        server = RtspServer(free_port(), d / "rtsp.log", pattern="black", max_seconds=3600)
        broker = controller = None
        try:
            server.start()
            mqtt_port, http_port = free_port(), free_port()
            broker = start_mosquitto(d / "mosquitto", mqtt_port)
            controller = start_controller(d / "controller", http_port, mqtt_port, d / "controller.log",
                                          extra_env={"LP_CAMERA_VIEWER_GRACE_S": "1", "LP_LOG_LEVEL": "WARNING"})
            api = f"http://127.0.0.1:{http_port}"
            token = (d / "controller" / "admin.token").read_text().strip()
            status, body = http_json("POST", api + "/api/v1/cameras", token,
                                     {"id": "bench", "host": "127.0.0.1", "onvif": False, "stream_uri": server.url},
                                     timeout=30)
            if status != 201:
                raise RuntimeError(f"registering the camera failed: {status} {body}")
            runs: dict[int, list[dict[str, Any]]] = {n: [] for n in ns.viewers}
            # Rounds interleave the cases, so a busy moment on a shared machine does not land on one case.
            for rnd in range(ns.rounds):
                for n in ns.viewers:
                    say(f"round {rnd + 1}/{ns.rounds}: gateway, {n} viewer(s)")
                    runs[n].append(run_gateway(api, token, controller.pid, server, n, ns.seconds))
                    time.sleep(3)  # grace period: the reader stops before the next case
            rows = []
            for n in ns.viewers:
                g = median_run(runs[n])
                nv = None
                if not ns.no_naive:
                    say(f"naive, {n} reader(s)")
                    nv = run_naive(server.url, n, ns.seconds, server)
                rows.append({"viewers": n, "gateway": g, "naive": nv})
        finally:
            for proc in (controller, broker):
                if proc is not None:
                    proc.stop()
            server.stop()

    print("\nCamera gateway: one 640x360 15 fps H.264 RTSP camera, MJPEG viewers on loopback "
          f"({ns.seconds:.0f} s per case, gateway {ns.rounds} rounds; CPU % of one core)\n")
    print("| viewers | gateway CPU (median) | gateway fps/viewer (min) | p50 / p90 latency | naive CPU | "
          "naive fps/reader (min) | naive p50 latency |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        g, nv = r["gateway"], r["naive"]
        print(f"| {r['viewers']} | {g['cpu_pct']:.1f} % ({g['sys_pct']:.1f} % kernel) | "
              f"{g['fps_per_viewer_min']:.1f} | "
              f"{fmt(pct(g['latency_ms'], 0.5), ' ms')} / {fmt(pct(g['latency_ms'], 0.9), ' ms')} | "
              + (f"{nv['cpu_pct']:.1f} % | {nv['fps_per_viewer_min']:.1f} | {fmt(pct(nv['latency_ms'], 0.5), ' ms')} |"
                 if nv else "— | — | — |"))
        print(f"|  | gateway CPU per round: {', '.join(f'{c} %' for c in g['cpu_runs'])} |")
        if g["errors"]:
            print(f"|  | {len(g['errors'])} viewer error(s): {g['errors'][0]} |")
    by_n = {r["viewers"]: r for r in rows}
    if 1 in by_n and 10 in by_n:
        ratio = by_n[10]["gateway"]["cpu_pct"] / max(by_n[1]["gateway"]["cpu_pct"], 1e-6)
        print(f"\nGateway CPU, 10 viewers / 1 viewer: {ratio:.2f}x (target ≤ 1.3x) — "
              f"{'met' if ratio <= 1.3 else 'NOT met'}")
    if 1 in by_n:
        p50 = pct(by_n[1]["gateway"]["latency_ms"], 0.5)
        raw = pct(by_n[1]["naive"]["latency_ms"], 0.5) if by_n[1]["naive"] else None
        print(f"Source → viewer latency p50 with 1 viewer: {fmt(p50, ' ms')} (target ≤ 300 ms"
              f"{'' if p50 is None else ' — met' if p50 <= 300 else ' — NOT met'}); raw OpenCV reader on the "
              f"RTSP stream: {fmt(raw, ' ms')}")
    if ns.json:
        ns.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
