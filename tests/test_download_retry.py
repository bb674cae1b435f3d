"""A failed media download does not lose a broadcast: agents try again, at any controller replica they know,
and play late within the command's rules once the media comes."""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, select

from controller.storage.models import OutboxMessage
from controller.tools.local_stack import free_port, register_agent, start_agent, start_controller, write_agent_config
from devices.protocol import now_ms
from edge_agent.media_cache import MediaCache, MediaError
from edge_agent.media_retry import Backoff
from tests.conftest import AgentFactory, Broker, ControllerHandle, RunningAgent, running_controller
from tests.helpers import iso_ms
from tests.mqtt_tools import publish, wait_for_text

TEXT = "Thông báo khẩn: mất điện khu phố một từ chín giờ đến mười một giờ sáng nay."


@pytest.fixture
def replica_agent(tmp_path: Path, controller: ControllerHandle) -> Iterator[RunningAgent]:
    """loa-03, configured with two controller addresses and no ``controller_url``: a replica that is down (first)
    and the real controller."""
    registered = register_agent(controller.api, controller.token, "loa-03", ["khu-pho-1"])
    files = write_agent_config(tmp_path / "agents" / "loa-03", registered, ["khu-pho-1"])
    dead = f"http://127.0.0.1:{free_port()}"
    text = files.config.read_text().replace(f'controller_url = "{registered["controller_url"]}"\n',
                                            f'controller_urls = ["{dead}", "{registered["controller_url"]}"]\n')
    assert "controller_urls" in text
    files.config.write_text(text)
    agent = RunningAgent(files, start_agent(files, tmp_path / "loa-03.log"), registered)
    try:
        controller.wait_for(lambda: controller.device("loa-03")["online"] or not agent.proc.alive, 20, "loa-03 online")
        assert agent.proc.alive, agent.log()
        yield agent
    finally:
        agent.proc.stop()


@pytest.fixture
def controller(tmp_path: Path, broker: Broker) -> Iterator[ControllerHandle]:
    """The controller with its outbox held (overrides conftest's): the test hands the broker the controller's own
    signed command itself, right after killing it. Racing a watcher against the agents' downloads was not
    deterministic: under a loaded CI run an agent fetched the audio before the watcher's kill landed."""
    with running_controller(tmp_path, broker.port, {"LP_OUTBOX_HOLD": "1"}) as handle:
        yield handle


def _held_command(data_dir: Path) -> tuple[list[str], bytes] | None:
    """The announcement's signed speaker.play as the outbox holds it (topics, payload), once it is written."""
    engine = create_engine(f"sqlite:///{data_dir / 'loaphuong.sqlite3'}")
    try:
        with engine.connect() as conn:
            row = conn.execute(select(OutboxMessage.topics, OutboxMessage.payload)
                               .where(OutboxMessage.kind == "speaker.play", OutboxMessage.status == "pending")).first()
    finally:
        engine.dispose()
    return None if row is None else (list(row.topics), row.payload.encode())


def test_controller_killed_right_after_publishing_every_agent_still_plays(
        broker: Broker, controller: ControllerHandle, agents: AgentFactory, replica_agent: RunningAgent,
        tmp_path: Path) -> None:
    fleet = [agents("loa-01"), agents("loa-02"), replica_agent]
    start_at = now_ms() + 5000
    status, body = controller.post("/api/v1/announcements", {
        "text": TEXT, "targets": ["zone:khu-pho-1"], "priority": "priority",
        "start_at": datetime.fromtimestamp(start_at / 1000, UTC).isoformat()})
    assert status == 202, body
    held = controller.wait_for(lambda: _held_command(controller.data_dir), 60, "the command in the outbox")
    # The controller dies with kill -9, and the broker hands out the command it had just published (its own signed
    # bytes, from its outbox): every agent gets it with nobody left to serve the audio.
    os.killpg(controller.proc.pid, signal.SIGKILL)
    killed_at = now_ms()
    controller.proc.proc.wait(10)
    controller.proc.stop()  # closes its log
    topics, payload = held
    for topic in topics:
        publish(broker.port, topic, payload)

    # Every agent got the command with its controller gone: the download fails, and is tried again.
    for agent in fleet:
        wait_for_text(agent.log, "not downloaded (try 1", timeout=20)
    # The controller stays down a few seconds, as in the probe, and here until past the start time: the agents
    # must then play late rather than give up.
    time.sleep(max(3.0, (start_at + 1500 - now_ms()) / 1000))
    port = urlsplit(controller.api).port
    assert port is not None
    restart_at = now_ms()
    controller.proc = start_controller(controller.data_dir, port, broker.port, tmp_path / "controller-again.log")
    back_at = now_ms()

    # Restarted without the hold, it publishes the command again: agents drop the repeat (same command id).
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=90)
    scheduled = iso_ms(ann["deliveries"][0]["play"]["scheduled_start"])
    late: dict[str, int] = {}
    for agent in fleet:
        starts = [line for line in agent.sink_lines() if line["event"] == "start"]
        assert len(starts) == 1, (agent.agent_id, starts)  # played once, not twice
        late[agent.agent_id] = starts[0]["actual_start"] - scheduled
        # The media could only come from the restarted controller, after the start time: a late play.
        assert starts[0]["actual_start"] > restart_at > scheduled, (agent.agent_id, starts, restart_at)
    for delivery in ann["deliveries"]:
        assert delivery["play"]["outcome"] == "completed", delivery
    assert "trying the next controller" in replica_agent.log()
    print(f"\ncontroller killed {killed_at - (start_at - 5000)} ms after the post, back "
          f"{back_at - killed_at} ms later ({back_at - scheduled:+d} ms from the start time); "
          f"late by {late} ms; plays per agent: 1")


# A faster layer: the download loop's pieces against real HTTP servers on 127.0.0.1 ------------------------------


class _Server:
    """A local HTTP server that answers /media/{sha} with ``status`` (and the body for 200)."""

    def __init__(self, body: bytes, status: int) -> None:
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if status == 200 else 0))
                self.end_headers()
                if status == 200:
                    self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_moves_to_the_next_replica_on_5xx_connection_error_or_wrong_bytes(tmp_path: Path) -> None:
    body = os.urandom(5000)
    sha = hashlib.sha256(body).hexdigest()
    failing, good = _Server(b"", 503), _Server(body, 200)
    refused = f"http://127.0.0.1:{free_port()}"
    try:
        cache = MediaCache(tmp_path / "m", [refused, failing.url, good.url], "t" * 20, max_bytes=10_000)
        assert cache.fetch(sha, len(body)).read_bytes() == body
        assert failing.hits == 1 and good.hits == 1
        # A 4xx will not get better elsewhere or later: no retry.
        missing = _Server(b"", 404)
        try:
            with pytest.raises(MediaError) as info:
                MediaCache(tmp_path / "m2", [missing.url, good.url], "t" * 20, max_bytes=10_000).fetch(sha)
            assert info.value.code == "http_error" and not info.value.retryable and good.hits == 1
        finally:
            missing.close()
        # Wrong bytes: that replica's copy is bad, another may be good; wrong everywhere is not worth retrying.
        corrupt = _Server(b"\x00" * len(body), 200)
        try:
            healed = MediaCache(tmp_path / "m4", [corrupt.url, good.url], "t" * 20, max_bytes=10_000)
            assert healed.fetch(sha, len(body)).read_bytes() == body and good.hits == 2
            with pytest.raises(MediaError) as info:
                MediaCache(tmp_path / "m5", [corrupt.url], "t" * 20, max_bytes=10_000).fetch(sha)
            assert info.value.code == "hash_mismatch" and not info.value.retryable
        finally:
            corrupt.close()
        # Every replica down: one retryable error naming them.
        with pytest.raises(MediaError) as info:
            MediaCache(tmp_path / "m3", [refused, failing.url], "t" * 20, max_bytes=10_000).fetch(sha)
        assert info.value.retryable and info.value.code in ("http_error", "io_error")
        assert refused in str(info.value) and failing.url in str(info.value)
    finally:
        failing.close()
        good.close()


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(first_s=0.5, cap_s=5.0)
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, ceiling in zip(delays, [0.5, 1, 2, 4, 5, 5, 5, 5], strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_single_url_config_stays_valid_and_urls_are_merged(tmp_path: Path) -> None:
    from edge_agent.config import AgentConfig

    base = {"agent_id": "loa-01", "controller_public_key": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
            "token": "t" * 20, "data_dir": str(tmp_path), "output": {"kind": "file", "directory": str(tmp_path)}}
    one = AgentConfig.model_validate({**base, "controller_url": "http://10.0.0.1:8080"})
    assert one.media_base_urls() == ["http://10.0.0.1:8080"]
    both = AgentConfig.model_validate({**base, "controller_url": "http://10.0.0.1:8080",
                                       "controller_urls": ["http://10.0.0.2:8080/", "http://10.0.0.1:8080"]})
    assert both.media_base_urls() == ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
    with pytest.raises(ValueError, match="controller_url"):
        AgentConfig.model_validate(base)


def test_a_play_whose_media_never_comes_fails_at_its_latest_start_and_a_stop_ends_the_tries(tmp_path: Path) -> None:
    """The speaker's side, against a controller port that refuses: tries until ``latest_start``, then one
    ``error`` and ``failed`` with the reason; a stop while it tries ends the play ``stopped``, with no error."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from pydantic import BaseModel

    from devices.audio_output import FileSink
    from devices.protocol import AgentError, MediaSegment, PlayFinished, PlayOutcome, Priority
    from edge_agent.speaker import PlayJob, Speaker

    cache = MediaCache(tmp_path / "media", f"http://127.0.0.1:{free_port()}", "t" * 20, max_bytes=10_000)
    events: list[BaseModel] = []
    finished = asyncio.Queue[PlayFinished]()

    async def emit(_msg_type: str, data: BaseModel) -> None:
        events.append(data)
        if isinstance(data, PlayFinished):
            finished.put_nowait(data)

    async def done(_job: PlayJob, _outcome: PlayOutcome | None) -> None:
        return None

    def job(play_id: str, latest_in_ms: int) -> PlayJob:
        start = now_ms() + 200
        return PlayJob(play_id=play_id, priority=Priority.NORMAL, start_at=start, latest_start=start + latest_in_ms,
                       segments=[MediaSegment(sha256="ab" * 32, size=1000, duration_ms=1000)], resumable=True)

    async def scenario() -> None:
        with ThreadPoolExecutor(4) as pool:
            speaker = Speaker(FileSink("file", tmp_path / "sink", tmp_path / "decoded"), 80, emit, done,
                              lambda: None, pool, cache.fetch)
            speaker.submit(job("gives-up", 1500))
            gave_up = await asyncio.wait_for(finished.get(), 20)
            assert (gave_up.play_id, gave_up.outcome, gave_up.actual_start) == ("gives-up", PlayOutcome.FAILED, None)
            assert gave_up.reason.startswith("io_error:") and "gave up after" in gave_up.reason, gave_up.reason
            tries = int(gave_up.reason.split("gave up after ")[1].split()[0])
            assert tries >= 2, gave_up.reason  # it tried again (the last try is at the latest start itself)
            errors = [e for e in events if isinstance(e, AgentError)]
            assert [(e.code, e.ref) for e in errors] == [("io_error", "gives-up")]  # one error, when it gave up

            speaker.submit(job("stopped", 600_000))
            await asyncio.sleep(1.0)  # tries are failing now
            assert await speaker.stop(Priority.NORMAL) == 1
            stopped = await asyncio.wait_for(finished.get(), 10)
            assert (stopped.play_id, stopped.outcome, stopped.reason) == ("stopped", PlayOutcome.STOPPED,
                                                                           "stopped before start")
            assert len([e for e in events if isinstance(e, AgentError)]) == 1
            await speaker.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), 40))
