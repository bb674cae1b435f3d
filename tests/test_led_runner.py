"""The agent's sign runner: playlist choice, priorities, announcements, faults and reconnects."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from devices.led.settings import SignSettings
from devices.protocol import NowPlaying, Priority, SignPlaylist, SignStatus, now_ms
from edge_agent.signs import SignRunner, choose
from tests.sign_emulator import SignEmulator
from tests.test_led_alpha import start_pair


def entry(entry_id: str, lines: list[str], *, priority: str = "normal", start: int | None = None,
          end: int | None = None, signs: list[str] | None = None, mode: str = "static",
          dwell_ms: int = 500) -> dict[str, Any]:
    now = now_ms()
    return {"entry_id": entry_id, "priority": priority, "start_at": now - 1000 if start is None else start,
            "end_at": now + 3_600_000 if end is None else end, "signs": signs or [],
            "pages": [{"kind": "text", "lines": lines, "mode": mode, "dwell_ms": dwell_ms}]}


def playlist(version: int, *entries: dict[str, Any]) -> SignPlaylist:
    now = now_ms()
    return SignPlaylist.model_validate({"version": version, "window_start": now, "window_end": now + 86_400_000,
                                        "entries": list(entries)})


def virtual(name: str, directory: Path, **kw: Any) -> SignSettings:
    return SignSettings.model_validate({"name": name, "width": 128, "height": 32,
                                        "driver": {"kind": "virtual", "directory": str(directory / name)}} | kw)


def shown(directory: Path) -> list[dict[str, Any]]:
    path = directory / "shown.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def wait_until(check: Any, limit_s: float = 10) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, BaseModel]] = []

    async def __call__(self, msg_type: str, data: BaseModel) -> None:
        self.items.append((msg_type, data))


def no_media(sha: str, size: int) -> Path:
    raise OSError("no media in this test")


def test_choice_by_priority_window_and_sign() -> None:
    s = virtual("cong", Path("/tmp"))
    now = now_ms()
    pl = playlist(1, entry("a", ["Bình thường"]), entry("b", ["Ưu tiên"], priority="priority"),
                  entry("c", ["Khẩn"], priority="emergency", signs=["khac"]),
                  entry("d", ["Sau"], priority="emergency", start=now + 60_000))
    choice = choose(s, pl, None, now)
    assert choice.source == "playlist" and choice.entry_ids == ("b",)
    assert choice.recheck_at == now + 60_000
    playing = NowPlaying(play_id="p1", sha256=None, priority=Priority.NORMAL, started_at=now, title="Bản tin sáng")
    assert choose(s, pl, playing, now).entry_ids == ("b",)  # a normal announcement does not cover a priority entry
    urgent = playing.model_copy(update={"priority": Priority.EMERGENCY, "title": ""})
    c = choose(s, pl, urgent, now)
    assert c.source == "announcement" and c.pages[0].lines == ["KHẨN CẤP"]  # type: ignore[union-attr]
    assert choose(s, None, None, now).source == "idle"


async def test_runner_shows_playlist_then_announcement_then_back(tmp_path: Path) -> None:
    events = Events()
    dirty: list[int] = []
    runner = SignRunner([virtual("cong", tmp_path)], tmp_path, events, lambda: dirty.append(1), no_media)
    await runner.start()
    try:
        runner.set_playlist(playlist(1, entry("e1", ["Thông báo tiêm chủng"])))
        out = tmp_path / "cong"
        await wait_until(lambda: any(" ".join(r.get("lines", [])) == "Thông báo tiêm chủng" for r in shown(out)))
        assert runner.states()[0].source == "playlist" and runner.states()[0].entry_id == "e1"
        runner.set_playing(NowPlaying(play_id="p1", sha256=None, priority=Priority.NORMAL, started_at=now_ms(),
                                      title="Bản tin sáng"))
        await wait_until(lambda: any(" ".join(r.get("lines", [])) == "Bản tin sáng" for r in shown(out)))
        assert runner.states()[0].source == "announcement"
        runner.set_playing(None)
        count = len(shown(out))
        await wait_until(lambda: any(" ".join(r.get("lines", [])) == "Thông báo tiêm chủng"
                                     for r in shown(out)[count:]))
        runner.set_playlist(playlist(2))
        await wait_until(lambda: shown(out)[-1]["kind"] == "blank")
        assert runner.states()[0].source == "idle"
        assert dirty
    finally:
        await runner.stop()


async def test_page_that_cannot_fit_is_reported_and_skipped(tmp_path: Path) -> None:
    events = Events()
    sign = virtual("nho", tmp_path, width=64, height=16)
    runner = SignRunner([sign], tmp_path, events, lambda: None, no_media)
    await runner.start()
    try:
        bad = entry("e1", ["Ủy ban nhân dân phường Bến Nghé quận Một thông báo"])
        good = entry("e2", ["Họp"])
        runner.set_playlist(playlist(1, bad, good))
        # The sign's thread hands its status to the loop (emit_threadsafe): it may land after the next page shows.
        await wait_until(lambda: any(r.get("lines") == ["Họp"] for r in shown(tmp_path / "nho"))
                         and any(t == "sign.status" for t, _ in events.items))
        refused = [d for t, d in events.items if t == "sign.status"]
        assert len(refused) == 1 and isinstance(refused[0], SignStatus) and refused[0].code == "page_refused"
    finally:
        await runner.stop()


@pytest.mark.skipif(__import__("shutil").which("socat") is None, reason="socat not installed")
async def test_alpha_sign_fault_backoff_and_recovery(tmp_path: Path) -> None:
    events = Events()
    port = tmp_path / "serial" / "ttyA"
    sign = SignSettings.model_validate({"name": "bang", "width": 96, "height": 16, "driver": {
        "kind": "alpha", "port": str(port), "read_ack": True, "ack_timeout_s": 1.0}})
    runner = SignRunner([sign], tmp_path, events, lambda: None, no_media)
    await runner.start()
    pair = None
    emulator = None
    try:
        runner.set_playlist(playlist(1, entry("e1", ["Ủy ban"])))
        await wait_until(lambda: any(t == "sign.status" for t, _ in events.items))
        fault = events.items[0][1]
        assert isinstance(fault, SignStatus) and not fault.ok and fault.code == "port_unavailable"
        assert runner.states()[0].fault
        # the adapter is plugged in: the runner finds it on its next try
        pair = await asyncio.to_thread(start_pair, tmp_path / "serial")
        emulator = SignEmulator(str(pair.b))
        await wait_until(lambda: emulator is not None and "A" in emulator.state.texts, limit_s=15)
        statuses = [d for t, d in events.items if t == "sign.status"]
        assert isinstance(statuses[-1], SignStatus) and statuses[-1].ok and statuses[-1].code == "recovered"
        assert len(statuses) == 2  # one fault, reported once despite the retries, then the recovery
        assert emulator.state.pictures["1"].width == 96
        assert runner.states()[0].fault is None

        # The adapter is pulled while the sign runs: one port_lost, then back when it returns.
        emulator.stop()
        pair.stop()
        await wait_until(lambda: len([d for t, d in events.items if t == "sign.status"]) >= 3, limit_s=15)
        lost = [d for t, d in events.items if t == "sign.status"][2]
        assert isinstance(lost, SignStatus) and not lost.ok and lost.code in ("port_lost", "no_answer")
        pair = await asyncio.to_thread(start_pair, tmp_path / "serial")
        emulator = SignEmulator(str(pair.b))
        await wait_until(lambda: emulator is not None and "A" in emulator.state.texts, limit_s=20)
        last = [d for t, d in events.items if t == "sign.status"][-1]
        assert isinstance(last, SignStatus) and last.ok and last.code == "recovered"
    finally:
        await runner.stop()
        if emulator is not None:
            emulator.stop()
        if pair is not None:
            pair.stop()


async def test_accepted_playlist_survives_a_restart_without_the_controller(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from devices.protocol import SIGNS_TYPE, Signer, Topics, VerifiedCommand, Verifier, parse_topic

    signer = Signer(Ed25519PrivateKey.generate())
    seen: set[str] = set()

    def remember(msg_id: str, _exp: int) -> bool:
        if msg_id in seen:
            return True
        seen.add(msg_id)
        return False

    verifier = Verifier(signer.public_key, "loa-01", [], remember)
    replies: list[str] = []

    async def verify(raw: bytes, info: Any) -> VerifiedCommand:
        return verifier.verify(raw, info)

    async def reply(msg_id: str) -> None:
        replies.append(msg_id)

    info = parse_topic(Topics.signs("loa-01"))
    env = signer.command(SIGNS_TYPE, playlist(4, entry("e1", ["Lịch tiêm chủng"])), to="loa-01", ttl_ms=86_400_000)
    first = SignRunner([virtual("cong", tmp_path)], tmp_path, Events(), lambda: None, no_media)
    await first.start()
    try:
        await first.handle(info, env.to_bytes(), True, verify, reply)
        assert replies == [env.id] and first.playlist_version == 4
        await first.handle(info, env.to_bytes(), True, verify, reply)  # the retained copy again: replayed, dropped
        assert replies == [env.id]
        forged = env.model_copy(update={"sig": env.sig[::-1] if env.sig else None})
        await first.handle(info, forged.to_bytes(), False, verify, reply)
        assert first.playlist_version == 4
    finally:
        await first.stop()
    second = SignRunner([virtual("cong", tmp_path / "after")], tmp_path, Events(), lambda: None, no_media)
    await second.start()  # no controller, no broker: the stored playlist
    try:
        assert second.playlist_version == 4
        await wait_until(lambda: any(r.get("lines") == ["Lịch tiêm chủng"] for r in shown(tmp_path / "after" / "cong")))
    finally:
        await second.stop()


async def test_missing_font_is_a_sign_fault_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devices.led.fonts import FONT_ENV, load_font

    load_font.cache_clear()
    monkeypatch.setenv(FONT_ENV, str(tmp_path / "no-such-font.ttf"))
    events = Events()
    runner = SignRunner([virtual("cong", tmp_path)], tmp_path, events, lambda: None, no_media)
    await runner.start()
    try:
        runner.set_playlist(playlist(1, entry("e1", ["Họp"])))
        await wait_until(lambda: any(t == "sign.status" for t, _ in events.items))
        status = events.items[0][1]
        assert isinstance(status, SignStatus) and status.code == "no_font" and FONT_ENV in status.message
    finally:
        await runner.stop()
        monkeypatch.delenv(FONT_ENV)
        load_font.cache_clear()


async def test_a_page_shown_again_is_not_drawn_again(tmp_path: Path) -> None:
    from devices.led.content import Panel, TextPage
    from devices.led.render import RenderedPage, Renderer

    class Counting(Renderer):
        calls = 0

        def render_text(self, page: TextPage, panel: Panel, smooth: bool | None = None) -> RenderedPage:
            Counting.calls += 1
            return super().render_text(page, panel, smooth)

    runner = SignRunner([virtual("cong", tmp_path)], tmp_path, Events(), lambda: None, no_media, renderer=Counting())
    await runner.start()
    try:
        runner.set_playlist(playlist(1, entry("e1", ["Họp"], dwell_ms=500)))
        await wait_until(lambda: len(shown(tmp_path / "cong")) >= 3)
        assert Counting.calls == 1
    finally:
        await runner.stop()


def test_an_agent_without_signs_loads_no_sign_code() -> None:
    import subprocess
    import sys

    code = ("import sys, edge_agent.agent, edge_agent.cli, edge_agent.config; "
            "bad = [m for m in ('PIL', 'serial', 'pygame', 'edge_agent.signs') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
