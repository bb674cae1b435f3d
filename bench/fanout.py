"""Emergency fan-out: API call → every target playing, N simulated agents against one Mosquitto.

Starts Mosquitto and the controller on 127.0.0.1 (free ports, temp dir), registers N agents in one
zone, and runs N simulated agents in this process. Each simulated agent does what a real one does
between the broker and its loudspeaker, with the real code where it matters: it subscribes to its
own topics (with gmqtt: aiomqtt, which the real agent uses, would be the limit of a thousand clients in
one process, not the system under test), checks every command with the protocol's
``Verifier`` (signature, target, expiry, replay), takes the audio attached to the command or fetches
``/media/{sha256}`` with its own device token and checks the hash, answers the command, and "starts
playing" when its clock reaches ``start_at`` (it records the instant instead of opening a sound card).

Each round posts one emergency announcement to the zone and records, per agent: command received,
audio in hand, playing. Three kinds of alarm (``--content``): a **standby** alarm recording every agent
keeps (the command is small; the simulated agents hold the file as a real one does once its window
named it), an ordinary recording sent **attached** to the command, and fresh **speech** (really rendered,
then attached). Beside each round, in the same run and with the same N subscribers: raw
``mosquitto_pub -q 1`` of a payload of the command's size to a topic they all subscribe to (receipt
time − the moment before ``mosquitto_pub`` was started).

    .venv/bin/python bench/fanout.py                     # N = 100 and 1,000, 5 rounds of each kind
    .venv/bin/python bench/fanout.py --agents 100 --rounds 3 --content standby --json fanout.json

Targets (issue 4): p99 of API → playing ≤ 1 s at N = 1,000 and within 2× of the raw broker.
Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from gmqtt import Client as MQTTClient
from gmqtt import Message, Subscription

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import controller_stack
from bench.stats import percentile
from controller.tools.local_stack import LOOPBACK, broker_security, http_json
from devices.protocol import (
    AgentStatus,
    ProtocolError,
    Reply,
    SpeakerPlay,
    Topics,
    Verifier,
    now_ms,
    parse_topic,
    public_key_from_text,
    status_payload,
)


def zone_for(n: int) -> str:
    """The zone that holds the first ``n`` simulated agents."""
    return f"first-{n}"
# The raw round goes where every agent already listens (the whole fleet's group topic), since the broker's
# ACLs let an agent read nothing else; the simulated agents tell it apart by its message type.
RAW_TOPIC = Topics.group_command("all", "bench.raw")


def log(msg: str) -> None:
    print(f"[fanout] {msg}", file=sys.stderr, flush=True)


@dataclass
class Round:
    """What every agent saw of one broadcast (ms since the epoch)."""

    t0: float
    received: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    playing: dict[str, float] = field(default_factory=dict)
    start_at: dict[str, int] = field(default_factory=dict)
    inline: int = 0
    kept: int = 0
    payload_bytes: int = 0
    fetched: int = 0
    errors: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SimAgent:
    """One simulated agent: real MQTT session, real verification, real media fetch, no sound card."""

    def __init__(self, agent_id: str, token: str, key_text: str, zones: list[str], bench: Bench,
                 password: str) -> None:
        self.agent_id = agent_id
        self.password = password
        self.zones = zones
        self.token = token
        self.bench = bench
        seen: dict[str, int] = {}

        def check_and_remember(msg_id: str, exp: int) -> bool:
            if msg_id in seen:
                return True
            seen[msg_id] = exp
            return False

        self.verifier = Verifier(public_key_from_text(key_text), agent_id, zones, check_and_remember)
        self.client: MQTTClient | None = None
        self.connected = asyncio.Event()

    async def run(self, port: int) -> None:
        """Connects, subscribes to the agent's topics and the raw topic, says online; then lives in callbacks."""
        will = Message(Topics.status(self.agent_id), status_payload(AgentStatus.OFFLINE, with_ts=False), qos=1,
                       retain=True)
        client = MQTTClient(f"agent-{self.agent_id}", will_message=will)
        client.set_auth_credentials(self.agent_id, self.password)  # its own broker account, as a real agent
        subscribed = asyncio.Event()
        client.on_message = self.on_message
        client.on_subscribe = lambda *_: subscribed.set()
        await client.connect(LOOPBACK, port, keepalive=60)
        self.client = client
        # Retained messages (the controller's status, old windows) are not part of a broadcast: not sent at all.
        subs = [Subscription(t, qos=1, retain_handling_options=2)
                for t in Topics.agent_subscriptions(self.agent_id, self.zones)]
        client.subscribe(subs)
        await subscribed.wait()
        client.publish(Topics.status(self.agent_id), status_payload(AgentStatus.ONLINE), qos=1, retain=True)
        self.connected.set()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.disconnect()

    def on_message(self, _client: MQTTClient, topic: str, payload: bytes, _qos: int, _props: Any) -> int:
        if topic == RAW_TOPIC:
            self.bench.raw_received(self.agent_id)
            return 0
        try:
            info = parse_topic(topic)
        except ProtocolError:
            return 0
        if info.kind == "cmd" and info.msg_type == "speaker.play":
            self.on_play(info, payload)
        return 0

    def on_play(self, info: Any, payload: bytes) -> None:
        """What the agent's inbox worker does with a ``speaker.play``, minus the sound card."""
        rnd = self.bench.current
        if rnd is None:
            return
        rnd.received[self.agent_id] = time.time() * 1000
        rnd.payload_bytes = len(payload)
        try:
            cmd = self.verifier.verify(payload, info)
        except ProtocolError as exc:
            self.failed(rnd, str(exc))
            return
        order = cmd.data
        assert isinstance(order, SpeakerPlay)
        if cmd.attachment is None:
            kept = self.bench.standby.get(order.sha256)
            if kept is not None:  # a standby alarm: the agent downloaded it when its window named it
                rnd.kept += 1
                self.schedule(rnd, cmd.envelope.id, order, kept)
            else:
                asyncio.get_running_loop().create_task(self.fetch_then_schedule(rnd, cmd.envelope.id, order))
            return
        rnd.inline += 1
        try:
            self.schedule(rnd, cmd.envelope.id, order, cmd.attachment)
        except ValueError as exc:
            self.failed(rnd, f"attached media: {exc}")

    async def fetch_then_schedule(self, rnd: Round, command_id: str, order: SpeakerPlay) -> None:
        try:
            resp = await self.bench.http.get(f"/media/{order.sha256}",
                                             headers={"Authorization": f"Bearer {self.token}"})
            resp.raise_for_status()
            rnd.fetched += 1
            self.schedule(rnd, command_id, order, resp.content)
        except (httpx.HTTPError, ValueError) as exc:
            self.failed(rnd, f"media: {exc}")

    def schedule(self, rnd: Round, command_id: str, order: SpeakerPlay, media: bytes) -> None:
        """Checks the audio, answers the command and starts "playing" at ``start_at``."""
        if hashlib.sha256(media).hexdigest() != order.sha256:
            raise ValueError("hash mismatch")
        rnd.ready[self.agent_id] = time.time() * 1000
        assert self.client is not None
        reply = Reply(id=command_id, status="ok", ts=now_ms())
        self.client.publish(Topics.reply(self.agent_id), reply.model_dump_json(exclude_none=True).encode(), qos=1)
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + max(0.0, order.start_at / 1000 - time.time()), self.playing, rnd, order.start_at)

    def playing(self, rnd: Round, start_at: int) -> None:
        rnd.playing[self.agent_id] = time.time() * 1000
        rnd.start_at[self.agent_id] = start_at
        self.bench.check_done()

    def failed(self, rnd: Round, why: str) -> None:
        rnd.errors.append(f"{self.agent_id}: {why}")
        self.bench.check_done()


class Bench:
    """The simulated fleet and the rounds run against it."""

    def __init__(self, n: int, api: str, admin_token: str, mqtt_port: int, zones: dict[str, list[str]]) -> None:
        self.n = n
        self.zones = zones
        self.api = api
        self.admin_token = admin_token
        self.mqtt_port = mqtt_port
        self.agents: list[SimAgent] = []
        self.current: Round | None = None
        #: Standby alarms every agent holds (each real agent downloads them when its window names them).
        self.standby: dict[str, bytes] = {}
        self.raw: dict[str, float] = {}
        self.raw_done = asyncio.Event()
        self.http = httpx.AsyncClient(base_url=api, timeout=30,
                                      limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

    def check_done(self) -> None:
        rnd = self.current
        if rnd is not None and len(rnd.playing) + len(rnd.errors) >= self.n:
            rnd.done.set()

    def raw_received(self, agent_id: str) -> None:
        self.raw[agent_id] = time.time() * 1000
        if len(self.raw) >= self.n:
            self.raw_done.set()

    async def start(self, key_text: str, tokens: dict[str, str], passwords: dict[str, str]) -> None:
        for agent_id, token in tokens.items():
            self.agents.append(SimAgent(agent_id, token, key_text, self.zones[agent_id], self, passwords[agent_id]))
        for i in range(0, len(self.agents), 50):  # a few at a time: don't overflow the broker's accept backlog
            await asyncio.wait_for(asyncio.gather(*(a.run(self.mqtt_port) for a in self.agents[i:i + 50])), 60)

    async def stop(self) -> None:
        await asyncio.gather(*(a.close() for a in self.agents), return_exceptions=True)
        await self.http.aclose()

    async def broadcast(self, content: dict[str, str]) -> Round:
        """Posts one emergency announcement to the zone and waits until every agent plays it (or failed)."""
        rnd = Round(t0=time.time() * 1000)
        self.current = rnd
        status, body = await asyncio.to_thread(
            http_json, "POST", f"{self.api}/api/v1/announcements", self.admin_token,
            {**content, "targets": {"zones": [zone_for(self.n)]}, "priority": "emergency"})
        if status != 202:
            raise RuntimeError(f"announcement refused: {status} {body}")
        await asyncio.wait_for(rnd.done.wait(), timeout=60)
        self.current = None
        return rnd

    async def raw_round(self, size: int) -> dict[str, float]:
        self.raw = {}
        self.raw_done = asyncio.Event()
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(b"x" * size)
            f.flush()
            sec = broker_security(self.mqtt_port)
            # A tool account: the controller's own would disconnect the running controller (one connection each).
            login = ["-u", sec.tools[0][0], "-P", sec.tools[0][1]] if sec is not None and sec.tools else []
            t0 = time.time() * 1000
            proc = await asyncio.create_subprocess_exec(
                "mosquitto_pub", "-h", LOOPBACK, "-p", str(self.mqtt_port), *login, "-q", "1", "-t", RAW_TOPIC,
                "-f", f.name, "-V", "mqttv5")
            await asyncio.wait_for(proc.wait(), timeout=30)
            await asyncio.wait_for(self.raw_done.wait(), timeout=60)
        return {k: v - t0 for k, v in self.raw.items()}


def register(api: str, admin_token: str,
             sizes: list[int]) -> tuple[dict[str, str], dict[str, list[str]], str, dict[str, str]]:
    """Registers max(sizes) agents; agent i is in the zone of every size larger than i."""
    tokens: dict[str, str] = {}
    passwords: dict[str, str] = {}
    zones: dict[str, list[str]] = {}
    key_text = ""
    for i in range(max(sizes)):
        agent_id = f"sim{i:04d}"
        zones[agent_id] = [zone_for(n) for n in sizes if i < n]
        status, body = http_json("POST", f"{api}/api/v1/devices", admin_token,
                                 {"id": agent_id, "name": agent_id, "zones": zones[agent_id]})
        if status != 201:
            raise RuntimeError(f"registering {agent_id}: {status} {body}")
        tokens[agent_id] = body["token"]
        passwords[agent_id] = body["mqtt_password"]
        key_text = body["controller_public_key"]
    return tokens, zones, key_text, passwords


async def run_mode(bench: Bench, mode: str, rounds: int, recordings: dict[str, str]) -> dict[str, Any]:
    """``rounds`` broadcasts of one kind (fresh speech each time, or a stored recording), each followed by
    the raw broker round with the same subscribers and a payload of the same size."""
    n = bench.n
    latency: list[float] = []
    received: list[float] = []
    ready: list[float] = []
    skew: list[float] = []
    raw: list[float] = []
    lead: list[float] = []
    sizes: list[int] = []
    inline = fetched = kept = 0
    errors: list[str] = []
    for r in range(rounds):
        if mode == "speech":
            content = {"text": f"Khẩn cấp, lần {r + 1} lúc {time.strftime('%H giờ %M phút %S giây')}: cháy tại tổ "
                               f"dân phố số {n % 97 + r}, đề nghị bà con khẩn trương sơ tán."}
        else:
            content = {"recording": recordings[mode], "text": "Còi báo cháy"}
        rnd = await bench.broadcast(content)
        errors += rnd.errors
        inline += rnd.inline
        fetched += rnd.fetched
        kept += rnd.kept
        latency += [v - rnd.t0 for v in rnd.playing.values()]
        received += [v - rnd.t0 for v in rnd.received.values()]
        ready += [v - rnd.t0 for v in rnd.ready.values()]
        skew += [abs(rnd.playing[a] - rnd.start_at[a]) for a in rnd.playing]
        lead += [rnd.start_at[a] - rnd.t0 for a in rnd.start_at]
        await asyncio.sleep(0.5)
        sizes.append(rnd.payload_bytes)
        raw += list((await bench.raw_round(rnd.payload_bytes)).values())
        log(f"N={n} {mode} round {r + 1}: playing p99 {percentile(latency[-n:], 99):.0f} ms, ready p99 "
            f"{percentile(ready[-n:], 99):.0f} ms, raw p99 {percentile(raw[-n:], 99):.0f} ms, errors {len(rnd.errors)}")
        await asyncio.sleep(1.0)
    return {
        "agents": n, "content": mode, "rounds": rounds, "errors": errors[:10], "error_count": len(errors),
        "inline": inline, "fetched": fetched, "kept": kept, "command_bytes": max(sizes, default=0),
        "playing_ms": {"p50": percentile(latency, 50), "p99": percentile(latency, 99), "max": max(latency, default=0)},
        "received_ms": {"p50": percentile(received, 50), "p99": percentile(received, 99)},
        "ready_ms": {"p50": percentile(ready, 50), "p99": percentile(ready, 99)},
        "start_at_after_call_ms": {"p50": percentile(lead, 50), "min": min(lead, default=0)},
        "start_skew_ms": {"p50": percentile(skew, 50), "p99": percentile(skew, 99), "max": max(skew, default=0)},
        "raw_ms": {"p50": percentile(raw, 50), "p99": percentile(raw, 99)},
    }


async def run_size(n: int, rounds: int, api: str, admin_token: str, mqtt_port: int, key_text: str,
                   tokens: dict[str, str], zones: dict[str, list[str]], recordings: dict[str, str],
                   modes: list[str], passwords: dict[str, str]) -> list[dict[str, Any]]:
    bench = Bench(n, api, admin_token, mqtt_port, zones)
    log(f"N={n}: connecting {n} simulated agents")
    try:
        await bench.start(key_text, tokens, passwords)
        alarm = await bench.http.get(f"/media/{recordings['standby']}",
                                     headers={"Authorization": f"Bearer {admin_token}"})
        bench.standby[recordings["standby"]] = alarm.raise_for_status().content
        await asyncio.sleep(1.0)
        return [await run_mode(bench, mode, rounds, recordings) for mode in modes]
    finally:
        await bench.stop()


def upload_siren(api: str, admin_token: str, work: Path, low: int, high: int) -> str:
    """A stored alarm recording (a two-tone siren), uploaded as staff would."""
    wav = work / f"siren-{low}.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency={low}:duration=3", "-f", "lavfi", "-i", f"sine=frequency={high}:duration=3",
                    "-filter_complex", "[0][1]concat=n=2:v=0:a=1", "-ar", "48000", "-ac", "1", str(wav)],
                   check=True, timeout=60)
    req = urllib.request.Request(f"{api}/api/v1/media", data=wav.read_bytes(), method="POST",
                                 headers={"Content-Type": "application/octet-stream",
                                          "Authorization": f"Bearer {admin_token}"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        body = json.loads(resp.read())
    return str(body["sha256"])


async def amain(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [int(s) for s in args.agents.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="lp-fanout-") as tmp, controller_stack(Path(tmp)) as stack:
        root, api, admin_token = stack.root, stack.api, stack.token
        tokens, zones, key_text, passwords = await asyncio.to_thread(register, api, admin_token, sizes)
        # Two sirens: one a standby alarm every agent keeps, one an ordinary recording (sent attached).
        recordings = {"standby": await asyncio.to_thread(upload_siren, api, admin_token, root, 660, 880),
                      "attached": await asyncio.to_thread(upload_siren, api, admin_token, root, 550, 770)}
        status, body = http_json("PUT", f"{api}/api/v1/media/{recordings['standby']}/standby", admin_token,
                                 {"standby": True})
        if status != 200:
            raise RuntimeError(f"standby refused: {status} {body}")
        for n in sizes:
            chosen = {a: t for a, t in tokens.items() if zone_for(n) in zones[a]}
            results += await run_size(n, args.rounds, api, admin_token, stack.mqtt_port, key_text, chosen, zones,
                                      recordings, args.content.split(","), passwords)
    return results


def report(results: list[dict[str, Any]]) -> str:
    """The table printed to stdout."""
    lines = ["| N | content | command | API → playing p50 / p99 | API → audio in hand p99 | raw broker p99 | "
             "ready ÷ raw | start skew p99 | errors | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        p99, raw, ready = r["playing_ms"]["p99"], r["raw_ms"]["p99"], r["ready_ms"]["p99"]
        held = 'audio attached' if r['inline'] else 'audio kept (standby)' if r['kept'] else 'audio fetched'
        how = f"{r['command_bytes'] / 1024:.1f} KiB, {held}"
        verdict = []
        if r["agents"] >= 1000:
            verdict.append("PASS ≤ 1 s" if p99 <= 1000 else "FAIL (> 1 s)")
        verdict.append("≤ 2× raw" if ready <= 2 * raw else "> 2× raw")
        lines.append(f"| {r['agents']} | {r['content']} | {how} | {r['playing_ms']['p50']:.0f} / {p99:.0f} ms | "
                     f"{ready:.0f} ms | {raw:.0f} ms | {ready / raw:.1f}× | {r['start_skew_ms']['p99']:.1f} ms | "
                     f"{r['error_count']} | {', '.join(verdict)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="100,1000", help="comma-separated N (default 100,1000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--content", default="standby,attached,speech",
                        help="what the alarm plays: a standby alarm every agent keeps, a recording sent "
                             "attached, fresh speech (sent attached); default all three")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    results = asyncio.run(amain(args))
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
