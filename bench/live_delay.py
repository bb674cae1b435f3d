"""Mouth-to-speaker delay of a live broadcast (phát trực tiếp), split by hop, beside Snapcast.

Starts Mosquitto, the controller, Icecast 2 and one agent with a file sink on 127.0.0.1 (free ports, temp
dir). A live session is opened through the API and its WebSocket is fed exactly what the console page
sends (20 ms frames of 48 kHz mono PCM, at real-time pace): silence with ``--bursts`` 1 kHz tone bursts.
Each burst is timed at every hop, on this machine's one clock:

1. **mic** — the burst's first frame leaves the "microphone" (this script's WebSocket send);
2. **controller in/out** — the controller's WebSocket handler received the frame / wrote it into the
   encoder's stdin (the controller's ``LP_LIVE_TRACE`` hook: a per-frame timing file written when the
   session ends; off in production);
3. **encoder out** — the Ogg page holding the burst's first sample reaches Icecast: a TCP relay in front
   of Icecast (the controller is given its address as the source URL) taps the source connection;
4. **Icecast out** — that page reaches a raw HTTP listener on the mount, connected beside the agent with
   the token of an enrolled (second) agent that the session also targets, as the agent does;
5. **speaker** — the burst sounds in the agent's file sink: its ``end`` line says when the last sample it
   wrote sounded (``heard_until``), so sample i sounded at heard_until − (frames − i)/rate (the sink
   writes each chunk when it would be heard; an underrun since would shift this, and is reported).

Pages are matched to bursts by their Opus granule position (48 kHz samples from the first encoded sample,
pre-skip included), and both captured streams are decoded with ffmpeg afterwards to check the bursts
are really in them. The browser's share (AudioWorklet: a 128-sample render quantum, then up to one 20 ms
frame of accumulation before a frame is sent) happens before the WebSocket and is **computed**, not
measured. The agent hop is "Icecast out → sounded" on the assumption that the agent receives a page when
the raw listener beside it does (same Icecast, same loopback).

In the same run: the raw tool (the same PCM through the same ffmpeg encoder straight into a second
Icecast and out through the agent's player command, no controller/MQTT/agent), and Snapcast 0.26
(Debian ``snapserver``/``snapclient``, not part of the set-up): the same PCM into snapserver's pipe
source with its default 1,000 ms buffer, played by a snapclient writing to stdout (``--player file``),
timed as the client writes. ``--install-snapcast`` apt-installs it when missing; otherwise that row says
how to get it.

    .venv/bin/python bench/live_delay.py              # 20 bursts
    .venv/bin/python bench/live_delay.py --bursts 10 --json live.json --no-raw

Target (issue 9): p50 ≤ 1.5 s on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect

from bench.live_probe import (
    Listener,
    SourceTap,
    decode_ogg,
    install_snapcast,
    measure_snapcast,
    snapcast_missing,
)
from bench.stats import percentile
from controller.broadcasts.live.icecast import IcecastAccess, start_icecast
from controller.broadcasts.live.source import microphone_input, source_command
from controller.messaging.keys import write_private
from controller.tools.local_stack import (
    ManagedProcess,
    free_port,
    http_json,
    register_agent,
    start_agent,
    start_controller,
    start_mosquitto,
    write_agent_config,
)
from devices.audio_output import relay_input_args
from devices.protocol import Topics

RATE = 48_000
FRAME = 960  # samples per 20 ms frame, as the console's AudioWorklet sends them
FRAME_BYTES = FRAME * 2
#: Burst k lasts BURST_S[k % 4]: a delay longer than the spacing cannot pair a heard burst with the wrong
#: one sent (bursts of the same length are 6 s apart).
BURST_S = (0.05, 0.08, 0.11, 0.14)
SPACING_S = 1.5
LEAD_S = 2.0  # silence before the first burst (the session goes on air meanwhile)
#: Web Audio renders in 128-sample quanta; the worklet sends once it holds a 960-sample frame.
QUANTUM_MS = 128 / RATE * 1000
FRAME_MS = FRAME / RATE * 1000
SNAPCAST_DEFAULT_MS = 1000.0
HOPS = ("controller (WebSocket → encoder stdin)", "encoder (stdin → Ogg page at Icecast)",
        "Icecast (page in → page out to a listener)", "agent (page received → sounded in its sink)")


def programme(bursts: int) -> tuple[bytes, list[int]]:
    """PCM of silence with tone bursts, and the sample index where each burst starts (frame-aligned)."""
    total = int((LEAD_S + bursts * SPACING_S + 1.0) * RATE)
    samples = [0] * total
    starts = []
    for k in range(bursts):
        start = int((LEAD_S + k * SPACING_S) * RATE) // FRAME * FRAME
        starts.append(start)
        for i in range(int(BURST_S[k % len(BURST_S)] * RATE)):
            samples[start + i] = int(16000 * math.sin(2 * math.pi * 1000 * i / RATE))
    return struct.pack(f"<{total}h", *samples), starts


def onsets(samples: list[int], count: int) -> list[int]:
    """Sample indices where a burst starts: the first loud 5 ms block after a quiet stretch."""
    block = RATE // 200
    found: list[int] = []
    quiet = 0
    for i in range(0, len(samples) - block, block):
        energy = sum(abs(x) for x in samples[i:i + block]) / block
        if energy > 2000 and quiet >= 40:  # 200 ms of silence before it
            found.append(i)
            quiet = 0
        quiet = quiet + 1 if energy < 500 else 0
        if len(found) == count:
            break
    return found


def burst_kind(samples: list[int], onset: int) -> int:
    """Which of the BURST_S lengths the burst at ``onset`` has (the nearest, by its loud 5 ms blocks)."""
    block = RATE // 200
    loud = 0
    for i in range(onset, len(samples) - block, block):
        if sum(abs(x) for x in samples[i:i + block]) / block < 1000:
            break
        loud += 1
    return min(range(len(BURST_S)), key=lambda k: abs(BURST_S[k] - loud * block / RATE))


def heard_bursts(samples: list[int], count: int, when: Callable[[int], float]) -> list[tuple[float, int]]:
    """(wall time it sounded, kind) of every burst found in ``samples``; ``when`` maps a sample to a time."""
    return [(when(i), burst_kind(samples, i)) for i in onsets(samples, count)]


def heard_after(heard: list[tuple[float, int]], sent_at: float, kind: int) -> float | None:
    """When the burst of ``kind`` sent at ``sent_at`` was heard (the first of its kind after it, within
    one cycle of kinds), or None."""
    for at, k in heard:
        if k == kind and sent_at <= at < sent_at + len(BURST_S) * SPACING_S:
            return at
    return None


def delays(sent: dict[int, float], starts: list[int], heard: list[tuple[float, int]]) -> list[float]:
    """Delay of every burst heard (ms)."""
    out = []
    for k, s in enumerate(starts):
        at = heard_after(heard, sent[s * 2], k % len(BURST_S))
        if at is not None:
            out.append((at - sent[s * 2]) * 1000)
    return out


def send_paced(send: Callable[[bytes], None], pcm: bytes) -> dict[int, float]:
    """Sends 20 ms frames at real-time pace; the wall time each frame left, by its byte offset."""
    t0 = time.time()
    sent: dict[int, float] = {}
    for k, off in enumerate(range(0, len(pcm), FRAME_BYTES)):
        sent[off] = time.time()
        send(pcm[off:off + FRAME_BYTES])
        delay = t0 + (k + 1) * FRAME / RATE - time.time()
        if delay > 0:
            time.sleep(delay)
    return sent


class ProbeAgent:
    """An enrolled agent with no speaker: it reads its own ``speaker.live`` from the broker (its own
    account) and listens on the mount with the token issued to it, as a real agent would."""

    def __init__(self, registered: dict[str, Any]) -> None:
        self.agent_id = registered["device"]["id"]
        self.listener: Listener | None = None
        self.order: dict[str, Any] | None = None
        self._subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.agent_id}-bench")
        if registered.get("mqtt_username"):
            client.username_pw_set(registered["mqtt_username"], registered["mqtt_password"])
        client.on_connect = lambda c, *_: c.subscribe(Topics.command(self.agent_id, "speaker.live"), qos=1)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._message
        client.connect_async(registered["mqtt_host"], int(registered["mqtt_port"]))
        client.loop_start()
        self.client = client

    def wait_subscribed(self, timeout: float) -> None:
        if not self._subscribed.wait(timeout):
            raise RuntimeError("the probe agent could not subscribe to its commands")

    def _message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        if self.listener is not None:
            return
        self.order = json.loads(msg.payload)["data"]
        assert self.order is not None
        self.listener = Listener(f"{self.order['url']}?token={self.order['token']}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        if self.listener is not None:
            self.listener.close()


def measure_system(root: Path, pcm: bytes, starts: list[int]) -> dict[str, Any]:
    """Every hop's time for every burst, through the controller, Icecast and an agent."""
    procs: list[ManagedProcess] = []
    tap: SourceTap | None = None
    probe: ProbeAgent | None = None
    try:
        mqtt_port, http_port, ice_port = free_port(), free_port(), free_port()
        api = f"http://127.0.0.1:{http_port}"
        ice_dir, trace_dir = root / "icecast", root / "trace"
        procs.append(start_mosquitto(root / "mosquitto", mqtt_port))
        procs.append(start_icecast(ice_dir, ice_port, f"{api}/api/v1/live/icecast-auth"))
        # The controller feeds Icecast through the tap; agents listen on Icecast itself.
        tap = SourceTap(ice_port)
        real = IcecastAccess.load(ice_dir / "icecast.json")
        tapped = real.model_copy(update={"source_url": f"http://127.0.0.1:{tap.port}", "listen_url": real.source_url})
        write_private(root / "icecast-tapped.json", tapped.model_dump_json().encode())
        procs.append(start_controller(root / "controller", http_port, mqtt_port, root / "controller.log",
                                      extra_env={"LP_ICECAST_FILE": str(root / "icecast-tapped.json"),
                                                 "LP_LIVE_TRACE": str(trace_dir), "LP_LOG_LEVEL": "WARNING"}))
        token = (root / "controller" / "admin.token").read_text().strip()
        registered = register_agent(api, token, "loa-bench", ["khu-pho-1"])
        files = write_agent_config(root / "agents" / "loa-bench", registered, ["khu-pho-1"])
        procs.append(start_agent(files, root / "agent.log", {"LP_LOG_LEVEL": "WARNING"}))
        probe = ProbeAgent(register_agent(api, token, "loa-probe", ["khu-pho-1"]))
        probe.wait_subscribed(30)
        deadline = time.monotonic() + 30
        while not http_json("GET", f"{api}/api/v1/devices/loa-bench", token)[1].get("online"):
            if time.monotonic() > deadline:
                raise RuntimeError("agent did not come online")
            time.sleep(0.2)
        status, created = http_json("POST", f"{api}/api/v1/live/sessions", token,
                                    {"agents": ["loa-bench", "loa-probe"], "priority": "emergency",
                                     "title": "bench"})
        if status != 201:
            raise RuntimeError(f"session refused: {status} {created}")
        sid = created["id"]
        with connect(api.replace("http://", "ws://") + created["ws_path"]) as ws:
            ws.send(json.dumps({"token": token}))
            # 3 s more of silence: the tail reaches the speaker before the stop, and the stream never pauses
            # (a console sends frames for as long as it is live), so the sink's timeline has no gap.
            sent = send_paced(ws.send, pcm + bytes(FRAME_BYTES * 150))
            ws.send(json.dumps({"end": True}))
            time.sleep(1.0)
        trace_file = trace_dir / f"{sid}.json"
        deadline = time.monotonic() + 10
        while not trace_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        trace = json.loads(trace_file.read_text())
        frames = {int(off): (rx, wr) for off, rx, wr in trace["frames"]}
        log = [json.loads(x) for x in (files.sink_dir / "plays.jsonl").read_text().splitlines() if x.strip()]
        start = next(x for x in log if x.get("event") == "start" and x.get("play_id") == f"live-{sid}")
        end = next(x for x in log if x.get("event") == "end" and x.get("play_id") == start["play_id"])
        with wave.open(str(files.sink_dir / start["file"]), "rb") as w:
            raw = w.readframes(w.getnframes())
        played = list(struct.unpack(f"<{len(raw) // 2}h", raw))
        # The sink's end line says when its last written sample sounded; earlier samples, one by one before.
        last = (end.get("heard_until") or end["ended_at"]) / 1000
        heard = heard_bursts(played, len(starts), lambda i: float(last - (end["frames"] - i) / RATE))
        source = tap.taps.get(f"/live-{sid}.ogg")
        listener = probe.listener
        if source is None or listener is None:
            raise RuntimeError("the source tap or the probe listener saw nothing")
        rows = []
        for k, s in enumerate(starts):
            mic = sent[s * 2]
            rx, wr = frames.get(s * 2, (math.nan, math.nan))
            enc = source.when_sample_arrived(s)
            ice = listener.tap.when_sample_arrived(s)
            spk = heard_after(heard, mic, k % len(BURST_S))
            rows.append({"sample": s, "mic": mic, "ctl_in": rx, "ctl_out": wr, "enc": enc, "ice": ice, "spk": spk})
        # Underruns while the session played (the stop's own last chunk is not one).
        agent_log = (root / "agent.log").read_text(errors="replace").split("speaker.live_end", 1)[0]
        late = [float(m) for m in re.findall(r"file sink relay: underrun, stream (\d+) ms late", agent_log)]
        checks = {"sink_underruns": len(late), "sink_underrun_ms": sum(late),
                  "encoder_stream_bursts": _burst_check(decode_ogg(source.body_after_headers()), starts),
                  "listener_status": listener.status, "listener_agent": probe.agent_id,
                  "going_on_air_ms": {**{step: (at - sent[0]) * 1000 for step, at in trace["steps"].items()},
                                      "first page at the probe": (listener.tap.first_page_at() - sent[0]) * 1000},
                  "listener_bursts_decoded": len(onsets(decode_ogg(listener.tap.body_after_headers()), len(starts)))}
        return {"rows": rows, "checks": checks}
    finally:
        if probe is not None:
            probe.close()
        for proc in reversed(procs):
            proc.stop()
        if tap is not None:
            tap.close()


def _burst_check(decoded: list[int], starts: list[int]) -> str:
    """Where the bursts are in the encoder's whole stream, decoded (sample 0 = first sample encoded)."""
    found = onsets(decoded, len(starts))
    offsets = [(f - s) / RATE * 1000 for f, s in zip(found, starts, strict=False)]
    if not offsets:
        return "no bursts found"
    return f"{len(found)}/{len(starts)} bursts at their sample, {min(offsets):+.1f}…{max(offsets):+.1f} ms"


class _AllowAll(http.server.BaseHTTPRequestHandler):
    """The raw pipeline's listener check: everyone may listen."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("icecast-auth-user", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def measure_raw(root: Path, pcm: bytes, starts: list[int]) -> list[float]:
    """The same encoder → Icecast → the agent's decoder command, without controller or agent (ms), timed as
    the decoder writes (the file sink's stand-in for a card buffer, STREAM_LEAD_S, is not in it)."""
    auth = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AllowAll)
    threading.Thread(target=auth.serve_forever, daemon=True).start()
    port = free_port()
    ice = start_icecast(root / "raw-icecast", port, f"http://127.0.0.1:{auth.server_address[1]}/")
    src: subprocess.Popen[bytes] | None = None
    player: subprocess.Popen[bytes] | None = None
    try:
        access = IcecastAccess.load(root / "raw-icecast" / "icecast.json")
        mount = "/raw.ogg"
        cmd = source_command(microphone_input(), f"icecast://source:{access.source_password}@127.0.0.1:{port}{mount}",
                             root / "raw-recording.ogg")
        src = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert src.stdin is not None
        stdin = src.stdin
        stdin.write(bytes(FRAME_BYTES * 50))  # 1 s of silence so the mount exists before the player connects
        stdin.flush()
        time.sleep(1.0)
        player = subprocess.Popen([*relay_input_args(f"http://127.0.0.1:{port}{mount}"),
                                   "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        arrivals: list[tuple[float, int]] = []  # (wall time, samples so far) per chunk read
        got = bytearray()

        def read() -> None:
            assert player is not None and player.stdout is not None
            while chunk := player.stdout.read1(4096):  # type: ignore[attr-defined]
                got.extend(chunk)
                arrivals.append((time.time(), len(got) // 2))

        threading.Thread(target=read, daemon=True).start()

        def write(frame: bytes) -> None:
            stdin.write(frame)
            stdin.flush()

        sent = send_paced(write, pcm)
        time.sleep(1.5)
        samples = list(struct.unpack(f"<{len(got) // 2}h", bytes(got[:len(got) // 2 * 2])))
        return delays(sent, starts, heard_bursts(samples, len(starts), lambda i: _chunk_time(arrivals, i)))
    finally:
        for proc in (player, src):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
        ice.stop()
        auth.shutdown()


def _chunk_time(arrivals: list[tuple[float, int]], sample: int) -> float:
    """When ``sample`` was written by a player read in chunks: its chunk's arrival, plus its place in it
    (a player that writes a chunk at the start of the audio it holds)."""
    before = 0
    for at, upto in arrivals:
        if upto > sample:
            return at + (sample - before) / RATE
        before = upto
    return math.nan


def run_snapcast(root: Path, pcm: bytes, starts: list[int]) -> tuple[list[float], str]:
    """Mouth-to-speaker through Snapcast on loopback (ms), and a note."""
    samples, arrivals, sent = measure_snapcast(root / "snapcast", pcm, FRAME_BYTES, send_paced)
    heard = heard_bursts(samples, len(starts), lambda i: _chunk_time(arrivals, i))
    chunk_ms = 0.0
    if len(arrivals) > 2:
        chunk_ms = (arrivals[-1][1] - arrivals[1][1]) / (len(arrivals) - 2) / RATE * 1000
    return delays(sent, starts, heard), f"snapclient wrote {chunk_ms:.0f} ms chunks"


def stats(values: list[float]) -> tuple[float, float]:
    """p50 and p95."""
    return percentile(values, 50), percentile(values, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-raw", action="store_true", help="skip the raw encoder → Icecast → player run")
    parser.add_argument("--no-snapcast", action="store_true", help="skip the Snapcast run")
    parser.add_argument("--keep", type=Path, default=None, help="work in this (new) directory and keep it (logs)")
    parser.add_argument("--install-snapcast", action="store_true",
                        help="apt-get install snapserver snapclient if missing (not part of the set-up)")
    args = parser.parse_args()
    pcm, starts = programme(args.bursts)
    raw: list[float] = []
    snap: list[float] = []
    snap_note = "skipped (--no-snapcast)"
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            root = args.keep.resolve()
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lp-live-bench-")))
        os.chmod(root, 0o755)  # Icecast runs as nobody when started as root
        print("measuring mouth-to-speaker through controller, Icecast and an agent, hop by hop…", file=sys.stderr)
        system = measure_system(root, pcm, starts)
        if not args.no_raw:
            print("measuring the raw encoder → Icecast → player pipeline…", file=sys.stderr)
            raw = measure_raw(root, pcm, starts)
        if not args.no_snapcast:
            if snapcast_missing() and args.install_snapcast:
                print("installing snapserver and snapclient (apt-get)…", file=sys.stderr)
                install_snapcast()
            missing = snapcast_missing()
            if missing:
                snap_note = missing
            else:
                print("measuring Snapcast (snapserver pipe source → snapclient, default buffer)…", file=sys.stderr)
                snap, snap_note = run_snapcast(root, pcm, starts)
    report(args, system, raw, snap, snap_note)


def report(args: argparse.Namespace, system: dict[str, Any], raw: list[float], snap: list[float],
           snap_note: str) -> None:
    """Prints the tables (and writes ``--json``)."""
    rows = [r for r in system["rows"] if r["spk"] is not None and r["enc"] is not None and r["ice"] is not None
            and not math.isnan(r["ctl_out"])]
    stages = ("mic", "ctl_out", "enc", "ice", "spk")
    hops = {name: [(r[b] - r[a]) * 1000 for r in rows] for name, a, b in zip(HOPS, stages, stages[1:], strict=False)}
    total = [(r["spk"] - r["mic"]) * 1000 for r in rows]
    ws_in = [(r["ctl_in"] - r["mic"]) * 1000 for r in rows]
    browser = QUANTUM_MS + FRAME_MS  # worst case: an onset just after a frame began waits a whole frame
    figures: dict[str, Any] = {
        "bursts_sent": args.bursts, "bursts_timed_at_every_hop": len(rows),
        "mouth_to_speaker_ms": dict(zip(("p50", "p95"), stats(total), strict=True)),
        "hops_ms": {name: dict(zip(("p50", "p95"), stats(v), strict=True)) for name, v in hops.items()},
        "websocket_only_ms": dict(zip(("p50", "p95"), stats(ws_in), strict=True)),
        "browser_computed_ms": {"quantum": QUANTUM_MS, "frame": FRAME_MS, "worst": browser},
        "raw_ms": dict(zip(("p50", "p95"), stats(raw), strict=True)), "raw_heard": len(raw),
        "snapcast_ms": dict(zip(("p50", "p95"), stats(snap), strict=True)), "snapcast_heard": len(snap),
        "snapcast_note": snap_note, "checks": system["checks"], "rows": system["rows"],
    }
    p50, p95 = stats(total)
    print(f"mouth-to-speaker (WebSocket send → agent's sink), {len(rows)} of {args.bursts} bursts timed at every hop: "
          f"p50 {p50:.0f} ms, p95 {p95:.0f} ms; with the browser's computed worst case "
          f"(+{browser:.0f} ms) p50 ≈ {p50 + browser:.0f} ms (target ≤ 1500 ms)")
    print(f"  {'hop':<48} {'p50 ms':>8} {'p95 ms':>8} {'share of p50s':>14}")
    print(f"  {'browser (computed: 128-sample quantum + one 20 ms frame)':<48} {browser:8.0f} {browser:8.0f}")
    sum_p50 = sum(percentile(v, 50) for v in hops.values())
    for name, values in hops.items():
        h50, h95 = stats(values)
        print(f"  {name:<48} {h50:8.1f} {h95:8.1f} {100 * h50 / sum_p50:13.1f} %")
    w50, w95 = stats(ws_in)
    print(f"  (of the controller hop, WebSocket send → handler: p50 {w50:.1f} ms, p95 {w95:.1f} ms)")
    checks = system["checks"]
    print(f"checks: encoder stream decoded: {checks['encoder_stream_bursts']}; raw listener "
          f"({checks['listener_agent']}'s token): {checks['listener_status']}, "
          f"{checks['listener_bursts_decoded']} bursts decoded; "
          f"going on air, ms after the first frame: "
          f"{', '.join(f'{k} {v:.0f}' for k, v in checks['going_on_air_ms'].items())}; file sink underruns: "
          f"{checks['sink_underruns']} ({checks['sink_underrun_ms']:.0f} ms: later bursts' agent hop is overstated "
          f"by at most that)")
    if raw:
        r50, r95 = stats(raw)
        print(f"raw tool (same encoder → Icecast → the agent's decoder command, no controller/agent, no sink): "
              f"p50 {r50:.0f} ms, p95 {r95:.0f} ms over {len(raw)} bursts")
    if snap:
        s50, s95 = stats(snap)
        print(f"Snapcast 0.26 (pipe source → snapclient --player file, default {SNAPCAST_DEFAULT_MS:.0f} ms buffer): "
              f"p50 {s50:.0f} ms, p95 {s95:.0f} ms over {len(snap)} bursts ({snap_note})")
    else:
        print(f"Snapcast: not measured: {snap_note}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
