"""Remote operations (``ops.*`` commands): volume, test tone, restart, reload, amplifier, log tail.

Each is a signed command routed through the agent's handler table like any other and answered with
one reply whose ``data`` carries the result. A request that cannot be carried out gets an error reply
and changes nothing; the agent carries on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import struct
import wave
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from devices.protocol import (
    MAX_REPLY_DATA_BYTES,
    RESTART_EXIT_CODE,
    MediaSegment,
    OpsAmplifier,
    OpsLogs,
    OpsRestart,
    OpsTone,
    OpsVolume,
    VerifiedCommand,
    now_ms,
)
from edge_agent.amplifier import Amplifier, AmplifierBusy, GpioError
from edge_agent.config import AgentConfig, ConfigError, load_config
from edge_agent.hooks import CommandHandler
from edge_agent.play_job import PlayJob

log = logging.getLogger(__name__)

#: Lines the in-memory log keeps (the newest); each is cut to :data:`MAX_LINE_CHARS`.
LOG_RING_LINES = 1000
MAX_LINE_CHARS = 500
TONE_RATE = 48_000
#: A tone may start this long after the command, time to prepare it and warm the amplifier up.
_TONE_LEAD_MS = 300
#: Settings a reload applies at once; any other change is reported as needing a restart.
_LIVE_FIELDS = ("volume", "log_level", "amplifier")

_T = TypeVar("_T")


class OpsHost(Protocol):
    """What remote operations may do to the agent they run in, and nothing more."""

    @property
    def amp(self) -> Amplifier | None:
        """The amplifier's power relay, if the agent has one."""
        ...

    async def reply(self, msg_id: str, error: str | None = None, data: dict[str, Any] | None = None) -> None:
        """Answers command ``msg_id``: ``ok`` with ``data``, or the error."""
        ...

    async def in_thread(self, fn: Callable[[], _T]) -> _T:
        """Runs blocking ``fn`` off the event loop."""
        ...

    def set_volume(self, volume: int) -> None:
        """The speaker's volume for plays that name none, from now on."""
        ...

    def keep_media(self, sha256: str, data: bytes) -> None:
        """Puts a recording into the media cache. Blocks."""
        ...

    def submit(self, job: PlayJob) -> bool:
        """Hands a play to the speaker; False if one with that id is already known."""
        ...

    def mark_state_dirty(self) -> None:
        """Asks for a fresh state message."""
        ...

    def request_stop(self) -> None:
        """Asks the agent to stop cleanly."""
        ...


class LogRing(logging.Handler):
    """Keeps the agent's newest log lines in memory (bounded), for ``ops.logs``."""

    def __init__(self, capacity: int = LOG_RING_LINES) -> None:
        super().__init__()
        self._lines: deque[str] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad log call must not break logging elsewhere
            self.handleError(record)
            return
        for line in text.splitlines() or [""]:
            self._lines.append(line[:MAX_LINE_CHARS])

    def tail(self, lines: int, max_bytes: int = MAX_REPLY_DATA_BYTES - 1024) -> tuple[list[str], bool]:
        """The newest ``lines`` lines, oldest first, cut from the oldest end to fit ``max_bytes`` of JSON."""
        picked: list[str] = []
        size = 0
        snapshot = list(self._lines)
        for line in reversed(snapshot[-lines:]):
            cost = len(json.dumps(line, ensure_ascii=False).encode()) + 1
            if size + cost > max_bytes:
                break
            picked.append(line)
            size += cost
        picked.reverse()
        return picked, len(picked) < min(lines, len(snapshot))


def install_log_ring() -> LogRing:
    """The root logger's ring (added once, formatted like the console lines)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, LogRing):
            return handler
    ring = LogRing()
    ring.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(ring)
    return ring


def tone_wav(frequency_hz: int, duration_ms: int, rate: int = TONE_RATE) -> bytes:
    """A mono 16-bit sine at -6 dBFS with 10 ms fades (no clicks), as WAV bytes."""
    frames = rate * duration_ms // 1000
    fade = max(1, rate // 100)
    step = 2 * math.pi * frequency_hz / rate
    samples = bytearray()
    for n in range(frames):
        gain = min(1.0, n / fade, (frames - 1 - n) / fade)
        samples += struct.pack("<h", int(16383 * gain * math.sin(step * n)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(samples))
    return buf.getvalue()


class PersistedOps:
    """What remote operations changed that must survive a restart (``data_dir/ops.json``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        """The saved values; an unreadable file is logged and ignored (the config's values apply)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable %s: %s", self.path, exc)
            return {}
        return raw if isinstance(raw, dict) else {}

    def save(self, **values: Any) -> None:
        """Merges ``values`` into the file atomically. Blocks."""
        data = self.load() | values
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)


class RemoteOps:
    """The ``ops.*`` handlers of one agent.

    ``config`` is the running configuration: the one the agent started with, plus what reloads applied.
    """

    def __init__(self, host: OpsHost, config: AgentConfig, config_path: Path | None, ring: LogRing) -> None:
        self._host = host
        self.config = config
        self._config_path = config_path
        self._ring = ring
        self.persisted = PersistedOps(config.data_dir / "ops.json")
        #: Exit code :func:`edge_agent.cli.main` returns once the agent has stopped.
        self.exit_code = 0

    def handlers(self) -> dict[str, CommandHandler]:
        """Command type → handler, merged into the agent's table."""
        return {
            "ops.volume": self._volume,
            "ops.tone": self._tone,
            "ops.restart": self._restart,
            "ops.reload": self._reload,
            "ops.amp": self._amp,
            "ops.logs": self._logs,
        }

    def saved_volume(self, configured: int) -> int:
        """The volume set remotely before a restart, else the configured one."""
        value = self.persisted.load().get("volume")
        return value if isinstance(value, int) and 0 <= value <= 100 else configured

    async def _reply(self, cmd: VerifiedCommand, error: str | None = None,
                     data: dict[str, Any] | None = None) -> None:
        await self._host.reply(cmd.envelope.id, error, data)

    async def _volume(self, cmd: VerifiedCommand) -> None:
        volume = cmd.data_as(OpsVolume).volume
        try:
            await self._host.in_thread(lambda: self.persisted.save(volume=volume))
        except OSError as exc:
            await self._reply(cmd, f"io_error: cannot save the volume: {exc}"[:300])
            return
        self._host.set_volume(volume)
        self._host.mark_state_dirty()
        log.info("volume set to %d by remote operation", volume)
        await self._reply(cmd, data={"volume": volume})

    async def _tone(self, cmd: VerifiedCommand) -> None:
        order = cmd.data_as(OpsTone)
        wav = await self._host.in_thread(lambda: tone_wav(order.frequency_hz, order.duration_ms))
        sha = hashlib.sha256(wav).hexdigest()
        await self._host.in_thread(lambda: self._host.keep_media(sha, wav))
        title = f"Thử loa {order.frequency_hz} Hz"
        segment = MediaSegment(sha256=sha, size=len(wav), duration_ms=order.duration_ms, mime="audio/wav",
                               title=title)
        start = now_ms() + _TONE_LEAD_MS
        job = PlayJob(play_id=cmd.envelope.id, priority=order.priority, start_at=start,
                      latest_start=max(start, cmd.envelope.exp or 0), segments=[segment], volume=order.volume,
                      title=title)
        if not self._host.submit(job):
            await self._reply(cmd, f"duplicate: play {cmd.envelope.id} already known")
            return
        await self._reply(cmd, data={"play_id": cmd.envelope.id})

    async def _restart(self, cmd: VerifiedCommand) -> None:
        reason = cmd.data_as(OpsRestart).reason
        log.warning("restart requested by remote operation%s", f": {reason}" if reason else "")
        self.exit_code = RESTART_EXIT_CODE
        await self._reply(cmd, data={"exit_code": RESTART_EXIT_CODE})
        self._host.request_stop()

    async def _reload(self, cmd: VerifiedCommand) -> None:
        if self._config_path is None:
            await self._reply(cmd, "unsupported: this agent was not started from a config file")
            return
        path = self._config_path
        try:
            new: AgentConfig = await self._host.in_thread(lambda: load_config(path))
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            await self._reply(cmd, f"config_invalid: {exc}"[:300])
            return
        applied, restart_needed = self._apply(new)
        log.info("config reloaded from %s: applied %s; needs a restart: %s", path, applied or "nothing",
                 restart_needed or "nothing")
        await self._reply(cmd, data={"applied": applied, "restart_needed": restart_needed})

    def _apply(self, new: AgentConfig) -> tuple[list[str], list[str]]:
        host = self._host
        old = self.config
        applied: list[str] = []
        restart_needed = sorted(name for name in AgentConfig.model_fields
                                if name not in _LIVE_FIELDS and getattr(old, name) != getattr(new, name))
        if new.volume != old.volume:
            # A new volume in the file is a deliberate change: it wins over one set remotely before.
            host.set_volume(new.volume)
            self.persisted.save(volume=new.volume)
            applied.append("volume")
        if new.log_level != old.log_level:
            logging.getLogger().setLevel(new.log_level)
            applied.append("log_level")
        if new.amplifier != old.amplifier:
            amp = host.amp
            live = amp is not None and new.amplifier is not None and all(
                getattr(new.amplifier, f) == getattr(amp.cfg, f)
                for f in ("gpio_pin", "active_low", "driver", "gpio_root", "gpio_chip"))
            if live and amp is not None and new.amplifier is not None:
                amp.update(new.amplifier)
                applied.extend(f"amplifier.{f}" for f in ("warm_up_ms", "idle_off_s")
                               if getattr(new.amplifier, f) != getattr(old.amplifier, f))
            else:
                restart_needed.append("amplifier")
        # Only what was applied is taken over; the rest waits for a restart with the file as it is then.
        self.config = old.model_copy(update={"volume": new.volume, "log_level": new.log_level,
                                           "amplifier": new.amplifier if "amplifier" not in restart_needed
                                           else old.amplifier})
        host.mark_state_dirty()
        return applied, sorted(restart_needed)

    async def _amp(self, cmd: VerifiedCommand) -> None:
        amp = self._host.amp
        if amp is None:
            await self._reply(cmd, "no_amplifier: this agent's config has no [amplifier] section")
            return
        on = cmd.data_as(OpsAmplifier).on
        try:
            await amp.hold(on)
        except AmplifierBusy as exc:
            await self._reply(cmd, f"busy: {exc}")
            return
        except GpioError as exc:
            log.error("amplifier: %s", exc)
            await self._reply(cmd, f"gpio_error: {exc}"[:300])
            return
        await self._reply(cmd, data={"on": amp.is_on})

    async def _logs(self, cmd: VerifiedCommand) -> None:
        lines, truncated = self._ring.tail(cmd.data_as(OpsLogs).lines)
        await self._reply(cmd, data={"lines": lines, "truncated": truncated})
