"""Remote-operation parts without a broker: the relay drivers, the amplifier around a real speaker, the log ring."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from devices.audio_output import FileSink
from devices.protocol import MAX_REPLY_DATA_BYTES, MediaSegment, PlayFinished, PlayOutcome, Priority, now_ms
from edge_agent.amplifier import (
    Amplifier,
    AmplifierBusy,
    AmplifierSection,
    GpioError,
    SysfsRelay,
    make_driver,
    section_from_profile,
)
from edge_agent.remote_ops import LogRing, PersistedOps, tone_wav
from edge_agent.speaker import PlayJob, Speaker
from tests.helpers import START_TOLERANCE_MS


@pytest.fixture
def sysfs(tmp_path: Path) -> Iterator[Path]:
    """A directory that behaves like /sys/class/gpio: writing N to export makes gpioN/{direction,value}."""
    root = tmp_path / "gpio"
    root.mkdir()
    (root / "export").write_text("")
    stop = threading.Event()

    def kernel() -> None:
        while not stop.is_set():
            text = (root / "export").read_text().strip()
            if text:
                pin = root / f"gpio{int(text)}"
                pin.mkdir(exist_ok=True)
                (pin / "direction").write_text("in\n")
                (pin / "value").write_text("0\n")
                (root / "export").write_text("")
            time.sleep(0.01)

    thread = threading.Thread(target=kernel, daemon=True)
    thread.start()
    try:
        yield root
    finally:
        stop.set()
        thread.join(2)


def test_sysfs_relay_exports_sets_direction_and_writes(sysfs: Path) -> None:
    relay = SysfsRelay(sysfs, 22)
    relay.write(True)
    assert (sysfs / "gpio22/direction").read_text() == "out\n"
    assert (sysfs / "gpio22/value").read_text() == "1\n"
    relay.write(False)
    assert (sysfs / "gpio22/value").read_text() == "0\n"


def test_sysfs_relay_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(GpioError, match="cannot set up GPIO 5"):
        SysfsRelay(tmp_path / "missing", 5).write(True)
    # export accepted but the pin never appears (no such line)
    (tmp_path / "dead").mkdir()
    (tmp_path / "dead" / "export").write_text("")
    with pytest.raises(GpioError, match="did not appear"):  # gives up by itself (the suite's timeout stops a hang)
        SysfsRelay(tmp_path / "dead", 5).write(True)


def test_config_section_refuses_bad_values() -> None:
    for bad in ({"gpio_pin": -1}, {"gpio_pin": 4, "warm_up_ms": -5}, {"gpio_pin": 4, "colour": "red"},
                {"gpio_pin": 4, "driver": "wiringpi"}):
        with pytest.raises(ValidationError):
            AmplifierSection.model_validate(bad)


def test_section_from_board_profile() -> None:
    from firmware_configs.profiles import get_profile

    amp = get_profile("pi4-usb").amplifier
    assert amp is not None
    section = section_from_profile(amp.relay_gpio, amp.active_high, amp.warmup_ms, amp.hold_s)
    assert (section.gpio_pin, section.active_low, section.warm_up_ms, section.idle_off_s) == (
        amp.relay_gpio, not amp.active_high, amp.warmup_ms, amp.hold_s)


def test_driver_choice(tmp_path: Path) -> None:
    cfg = AmplifierSection(gpio_pin=4, gpio_root=tmp_path, gpio_chip=tmp_path / "no-chip")
    assert isinstance(make_driver(cfg), SysfsRelay)  # auto without a chip (or without gpiod): sysfs
    try:
        import gpiod  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(GpioError, match="gpiod module is not installed"):
            make_driver(cfg.model_copy(update={"driver": "gpiod"}))


def _in_thread(executor: ThreadPoolExecutor) -> Callable[[Callable[[], None]], Any]:
    async def run(fn: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(executor, fn)
    return run


def test_amplifier_hold_busy_and_active_low(sysfs: Path) -> None:
    async def scenario() -> None:
        with ThreadPoolExecutor(2) as pool:
            cfg = AmplifierSection(gpio_pin=9, active_low=True, warm_up_ms=0, idle_off_s=0.2, driver="sysfs",
                                   gpio_root=sysfs)
            amp = Amplifier(cfg, _in_thread(pool))
            value = sysfs / "gpio9/value"
            await amp.acquire()
            assert amp.is_on and value.read_text() == "0\n"  # active low: on is 0
            with pytest.raises(AmplifierBusy):
                await amp.hold(False)
            amp.release()
            await asyncio.sleep(0.5)
            assert not amp.is_on and value.read_text() == "1\n"
            await amp.hold(True)
            await asyncio.sleep(0.4)
            assert amp.is_on  # held: the idle timer does not switch it off
            await amp.close()
            assert value.read_text() == "1\n"

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_scheduled_play_starts_on_time_after_the_warm_up(tmp_path: Path, sysfs: Path) -> None:
    """The amplifier is powered up warm_up_ms before a scheduled start, so the start is not delayed."""
    wav = tone_wav(440, 300)
    sha = hashlib.sha256(wav).hexdigest()
    media = tmp_path / sha
    media.write_bytes(wav)
    finished: list[PlayFinished] = []
    switched: list[tuple[int, str]] = []

    ended = asyncio.Event()

    async def emit(msg_type: str, data: BaseModel) -> None:
        if isinstance(data, PlayFinished):
            finished.append(data)
            ended.set()

    async def done(job: PlayJob, outcome: PlayOutcome | None) -> None:
        return None

    async def scenario() -> None:
        with ThreadPoolExecutor(4) as pool:
            cfg = AmplifierSection(gpio_pin=17, warm_up_ms=600, idle_off_s=0.3, driver="sysfs", gpio_root=sysfs)
            relay = SysfsRelay(sysfs, 17)

            class Recording(SysfsRelay):
                def write(self, level: bool) -> None:
                    relay.write(level)
                    switched.append((now_ms(), "on" if level else "off"))

            amp = Amplifier(cfg, _in_thread(pool), driver=Recording(sysfs, 17))
            sink = FileSink("file", tmp_path / "sink", tmp_path / "decoded")
            speaker = Speaker(sink, 80, emit, done, lambda: None, pool, lambda _s, _n: media, amp=amp)
            start = now_ms() + 1500
            segment = MediaSegment(sha256=sha, size=len(wav), duration_ms=300, mime="audio/wav")
            speaker.submit(PlayJob(play_id="tone-1", priority=Priority.NORMAL, start_at=start,
                                   latest_start=start + 5000, segments=[segment]))
            await asyncio.wait_for(ended.wait(), 10)
            await asyncio.sleep(0.6)
            line = json.loads((tmp_path / "sink" / "plays.jsonl").read_text().splitlines()[0])
            on_at = next(t for t, s in switched if s == "on")
            off_at = next(t for t, s in switched if s == "off")
            # Aimed at its start despite the warm-up (how close is bench/start_skew.py's figure).
            assert abs(line["actual_start"] - start) <= START_TOLERANCE_MS, (line, start)
            assert line["actual_start"] - on_at >= 600 - 5, (line, switched)
            assert [s for _, s in switched] == ["on", "off"], switched  # powered once, not cycled
            assert off_at - finished[0].ended_at >= 300 - 20, switched
            assert finished[0].outcome is PlayOutcome.COMPLETED
            await speaker.shutdown()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_log_ring_is_bounded() -> None:
    ring = LogRing(capacity=50)
    ring.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.ring")
    logger.addHandler(ring)
    logger.propagate = False
    try:
        for i in range(120):
            logger.warning("line %d %s", i, "x" * 2000)
        lines, truncated = ring.tail(10)
        assert len(lines) == 10 and lines[-1].startswith("line 119") and not truncated
        assert all(len(line) <= 500 for line in lines)
        lines, truncated = ring.tail(500, max_bytes=5000)
        assert truncated and len(json.dumps(lines).encode()) <= 5000 + len(lines)
        assert lines[-1].startswith("line 119")  # the newest lines are kept
        everything, _ = ring.tail(500)
        assert len(everything) == 50 and len(json.dumps(everything).encode()) < MAX_REPLY_DATA_BYTES
    finally:
        logger.removeHandler(ring)


def test_tone_and_persisted_ops(tmp_path: Path) -> None:
    data = tone_wav(1000, 250)
    path = tmp_path / "t.wav"
    path.write_bytes(data)
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (48000, 1, 12000)
    ops = PersistedOps(tmp_path / "ops.json")
    assert ops.load() == {}
    ops.save(volume=30)
    assert ops.load() == {"volume": 30}
    (tmp_path / "ops.json").write_text("{not json")
    assert ops.load() == {}  # logged and ignored: the configured values apply
