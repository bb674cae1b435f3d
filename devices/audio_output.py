"""Speaker outputs behind one interface: mpv on ALSA for real boards, a file sink for demos and tests.

Every method here blocks (decoding, spawning, writing) and is meant to be called from a worker
thread, never from the event loop.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
import wave
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

#: What the file sink writes: the rate and layout a Pi's DAC is fed at.
SINK_RATE = 48_000
SINK_CHANNELS = 1
SINK_WIDTH = 2
_CHUNK_S = 0.1
#: The file sink's stand-in for a sound card's buffer when it plays a stream (see _FileStreamPlayer).
STREAM_LEAD_S = 0.1


class OutputError(RuntimeError):
    """The output cannot play (missing player binary, undecodable media, device gone)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Playback(ABC):
    """One sound in progress; ``actual_start_ms`` is when its first sample went out."""

    def __init__(self, actual_start_ms: int) -> None:
        self.actual_start_ms = actual_start_ms
        self.error: str | None = None
        #: Something worth keeping in proof of play even when the sound completed (a relay that dropped).
        self.note: str = ""
        self._stopped = threading.Event()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped.is_set()

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until the sound ends or ``timeout`` passes; True if it has ended."""

    def stop(self) -> None:
        """Cuts the sound short; :meth:`wait` then returns promptly."""
        self._stopped.set()
        self._halt()

    @abstractmethod
    def _halt(self) -> None: ...


class AudioOutput(ABC):
    """A speaker: ``prepare`` ahead of time (slow), then ``start`` exactly at the start time (fast)."""

    kind: Literal["file", "alsa"]

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def prepare(self, media: Path, volume: int) -> Path:
        """Does the slow part (decoding) ahead; returns what :meth:`start` takes."""

    @abstractmethod
    def start(self, prepared: Path, *, play_id: str, sha256: str, volume: int) -> Playback:
        """Starts sound now and returns without waiting for it to end."""

    @abstractmethod
    def release(self, prepared: Path) -> None:
        """Frees what :meth:`prepare` made once no play needs it (decoded audio is large)."""

    @abstractmethod
    def open_stream(self, url: str, *, play_id: str, volume: int) -> StreamPlayer:
        """Starts playing a live stream now; the returned player ends when the stream does."""

    def stream_finished(self, play_id: str, stopped: bool) -> None:
        """Called once when a relay ends (after its last connection); outputs that log plays close here."""
        return None  # a speaker keeps no per-relay record

    def start_relay(self, url: str, *, play_id: str, volume: int, until_ms: int,
                    give_up_ms: int | None = None) -> Playback:
        """Plays ``url`` until ``until_ms``, reconnecting with back-off whenever the stream drops.

        With ``give_up_ms`` (a live session) a stream lost for that long ends the play early.
        """
        playback = _RelayPlayback(self, url, play_id, volume, until_ms, give_up_ms)
        playback.begin()
        return playback


class StreamPlayer(ABC):
    """One connection to a live stream, as sound; ends when the stream ends or fails."""

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Blocks up to ``timeout``; True once the stream has ended."""

    @abstractmethod
    def close(self) -> str:
        """Stops it (if still going) and returns the tail of its error output."""

    @property
    @abstractmethod
    def frames(self) -> int:
        """Samples (per channel) that have sounded so far."""


#: Back-off between reconnects to a relay stream: doubles from the first to the last value.
RELAY_BACKOFF_S = (0.5, 5.0)


def relay_input_args(url: str) -> list[str]:
    """ffmpeg arguments that read a live stream at the pace it arrives; a stall of 5 s counts as a drop.

    A URL whose path ends in ``.ogg``/``.opus`` (every live session's Icecast mount) is read as Ogg
    without probing: probing a live Ogg stream held its first ~1–2 s and dumped them at once, a delay
    that then stayed for the whole play (measured by bench/live_delay.py).
    """
    path = urllib.parse.urlsplit(url).path.lower()
    fmt = ["-f", "ogg"] if path.endswith((".ogg", ".opus")) else []
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
            "-rw_timeout", "5000000", *fmt, "-i", url, "-map", "0:a:0", "-vn"]


class _RelayPlayback(Playback):
    """A relay window: connects, plays, reconnects after drops, ends at ``until_ms`` or on stop."""

    def __init__(self, output: AudioOutput, url: str, play_id: str, volume: int, until_ms: int,
                 give_up_ms: int | None = None) -> None:
        super().__init__(_now_ms())
        self._give_up_ms = give_up_ms
        self._output = output
        self._url = url
        self._play_id = play_id
        self._volume = volume
        self._until_ms = until_ms
        self._done = threading.Event()
        self._player: StreamPlayer | None = None
        self._lock = threading.Lock()
        self.drops = 0
        self._thread = threading.Thread(target=self._run, name=f"relay-{play_id[:20]}", daemon=True)

    def begin(self) -> None:
        """Starts the connection loop."""
        self._thread.start()

    def _remaining_s(self) -> float:
        return (self._until_ms - _now_ms()) / 1000

    def _run(self) -> None:
        backoff = RELAY_BACKOFF_S[0]
        ever_heard = False
        last_error = ""
        lost_at: int | None = None
        try:
            while not self._stopped.is_set() and self._remaining_s() > 0:
                try:
                    player = self._output.open_stream(self._url, play_id=self._play_id, volume=self._volume)
                except OutputError as exc:
                    last_error = str(exc)
                    player = None
                if player is not None:
                    with self._lock:
                        self._player = player
                    while not player.wait(min(0.5, max(self._remaining_s(), 0.01))):
                        if self._stopped.is_set() or self._remaining_s() <= 0:
                            break
                    heard = player.frames > 0
                    err = player.close()
                    with self._lock:
                        self._player = None
                    if heard:
                        ever_heard = True
                        backoff = RELAY_BACKOFF_S[0]
                        if lost_at is not None:
                            lost_at = None
                    if self._stopped.is_set() or self._remaining_s() <= 0:
                        break
                    last_error = err or "stream ended"
                if lost_at is None:
                    lost_at = _now_ms()
                    self.drops += 1
                    log.warning("relay %s: stream dropped (%s); reconnecting", self._play_id, last_error[:200])
                if self._give_up_ms is not None and _now_ms() - lost_at >= self._give_up_ms:
                    # A live session's stream is gone: stop, so the schedule resumes.
                    self.error = f"live stream lost for {self._give_up_ms} ms: {last_error[:200]}"
                    break
                # A live stream is retried quickly and never past its give-up time.
                cap = RELAY_BACKOFF_S[1] if self._give_up_ms is None else 0.5
                self._stopped.wait(min(backoff, cap, max(self._remaining_s(), 0)))
                backoff = min(backoff * 2, cap)
        finally:
            if not self._stopped.is_set() and self.error is None:
                if lost_at is not None:
                    self.error = (f"relay stream lost at {lost_at} ms and not back before the window ended "
                                  f"({self.drops} drop(s)): {last_error[:200]}" if ever_heard else
                                  f"relay stream never reached: {last_error[:300]}")
                elif self.drops:
                    self.note = f"relay stream dropped {self.drops} time(s) and was reconnected"
            try:
                self._output.stream_finished(self._play_id, self._stopped.is_set())
            except Exception:  # an output's bookkeeping must not hide how the relay ended
                log.exception("relay %s: output failed to close", self._play_id)
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _halt(self) -> None:
        with self._lock:
            player = self._player
        if player is not None:
            player.close()


# ---------------------------------------------------------------------------------------- file sink


def is_ogg_opus(media: Path) -> bool:
    """True for an Ogg file whose first stream is Opus (what the controller's speech always is)."""
    try:
        with media.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    return head.startswith(b"OggS") and b"OpusHead" in head


def decode_command(media: Path, out: Path, volume: int) -> list[str]:
    """The command that decodes ``media`` to a WAV at ``out`` (opusdec for Ogg Opus, else ffmpeg)."""
    if is_ogg_opus(media) and shutil.which("opusdec"):
        # The reference decoder needs about 4 MB where ffmpeg needs about 50: on a 512 MB Pi that is
        # the difference between the agent's peak staying under its 80 MB budget or not.
        gain_db = 20 * math.log10(max(volume, 1) / 100)
        return ["opusdec", "--quiet", "--rate", str(SINK_RATE), "--no-dither", "--force-wav",
                "--gain", f"{gain_db:.2f}", str(media), str(out)]
    gain = [] if volume == 100 else ["-af", f"volume={volume / 100:.2f}"]
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(media),
            "-map", "0:a:0", *gain, "-ac", str(SINK_CHANNELS), "-ar", str(SINK_RATE), "-c:a", "pcm_s16le",
            "-f", "wav", "-bitexact", str(out)]


def decode_to_wav(media: Path, out: Path, volume: int = 100) -> None:
    """Decodes audio to 16-bit WAV at 48 kHz, scaled by ``volume`` percent (100 = the exact samples).

    Ogg Opus goes through ``opusdec`` (libopus, no dither) when it is installed, anything else
    through ffmpeg.
    """
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")  # concurrent decodes never share a file
    cmd = decode_command(media, tmp, volume)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{cmd[0]} could not run: {exc}") from exc
    if proc.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{cmd[0]} cannot decode {media.name}: {proc.stderr.decode(errors='replace')[-300:]}")
    tmp.replace(out)


class _FilePlayback(Playback):
    def __init__(self, source: Path, target: Path, log_path: Path, record: dict[str, object],
                 log_lock: threading.Lock) -> None:
        super().__init__(_now_ms())
        self._source = source
        self._target = target
        self._log_path = log_path
        self._record = record
        self._log_lock = log_lock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"filesink-{target.stem}", daemon=True)

    def begin(self) -> None:
        """Starts the writer; its first chunk goes out at once."""
        self._thread.start()

    def _run(self) -> None:
        frames_written = 0
        t0 = time.monotonic()
        try:
            with wave.open(str(self._source), "rb") as src, wave.open(str(self._target), "wb") as dst:
                dst.setnchannels(src.getnchannels())
                dst.setsampwidth(src.getsampwidth())
                dst.setframerate(src.getframerate())
                per_chunk = int(src.getframerate() * _CHUNK_S)
                chunk_index = 0
                while not self._stopped.is_set():
                    # Write each chunk when it would be heard, so a stop cuts the file where sound stopped.
                    due = t0 + chunk_index * _CHUNK_S
                    if self._stopped.wait(max(0.0, due - time.monotonic())):
                        break
                    data = src.readframes(per_chunk)
                    if not data:
                        break
                    dst.writeframes(data)
                    frames_written += len(data) // (src.getsampwidth() * src.getnchannels())
                    chunk_index += 1
                if not self._stopped.is_set():
                    # The last chunk is written at its start; the sound lasts until its end.
                    remaining = t0 + frames_written / src.getframerate() - time.monotonic()
                    self._stopped.wait(max(0.0, remaining))
        except (OSError, wave.Error, EOFError) as exc:
            self.error = f"file sink: {exc}"
            log.error("file sink failed: %s", exc)
        finally:
            entry = {"event": "end", "play_id": self._record["play_id"], "ended_at": _now_ms(),
                     "frames": frames_written, "stopped": self._stopped.is_set()}
            _append_json_line(self._log_path, entry, self._log_lock)
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _halt(self) -> None:
        pass  # the writer thread watches the stop event


def _append_json_line(path: Path, entry: dict[str, object], lock: threading.Lock) -> None:
    with lock, path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


class FileSink(AudioOutput):
    """Writes exactly the samples it plays, in real time, one WAV per play, and logs each start.

    ``plays.jsonl`` in the sink directory gets a ``start`` line (with the actual start time in ms)
    and an ``end`` line per play.
    """

    kind: Literal["file", "alsa"] = "file"

    def __init__(self, name: str, directory: Path, cache_dir: Path) -> None:
        super().__init__(name)
        self.directory = directory
        self.cache_dir = cache_dir
        self.log_path = directory / "plays.jsonl"
        self._lock = threading.Lock()
        self._relay_lock = threading.Lock()
        self._relays: dict[str, tuple[wave.Wave_write, Path]] = {}
        #: Per relay play: when its last written sample sounds (ms), for the end line.
        self._heard_until: dict[str, int] = {}
        self._seq = 0
        directory.mkdir(parents=True, exist_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._seq = sum(1 for _ in directory.glob("*.wav"))

    def prepare(self, media: Path, volume: int) -> Path:
        # The sink records the exact decoded samples; the volume goes into its log line instead.
        out = self.cache_dir / f"{media.stem}.wav"
        if not out.exists():
            decode_to_wav(media, out)
        return out

    def release(self, prepared: Path) -> None:
        prepared.unlink(missing_ok=True)

    def start(self, prepared: Path, *, play_id: str, sha256: str, volume: int) -> Playback:
        with self._lock:
            self._seq += 1
            target = self.directory / f"{self._seq:05d}-{play_id}.wav"
        record: dict[str, object] = {"event": "start", "play_id": play_id, "sha256": sha256,
                                     "file": target.name, "volume": volume}
        playback = _FilePlayback(prepared, target, self.log_path, record, self._lock)
        record["actual_start"] = playback.actual_start_ms
        _append_json_line(self.log_path, record, self._lock)
        playback.begin()
        return playback

    def open_stream(self, url: str, *, play_id: str, volume: int) -> StreamPlayer:
        # ffmpeg decodes as fast as the stream comes; the sink paces the writing itself (see
        # _FileStreamPlayer). ffmpeg's -re held an Ogg stream joined mid-way about a second back, a delay
        # a real speaker (aplay paced by the card) does not have.
        cmd = [*relay_input_args(url), "-ac", str(SINK_CHANNELS), "-ar", str(SINK_RATE),
               "-f", "s16le", "-"]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise OutputError(f"cannot start ffmpeg: {exc}") from exc
        with self._lock:
            target = self._relays.get(play_id)
            if target is None:
                self._seq += 1
                path = self.directory / f"{self._seq:05d}-{play_id}.wav"
                dst = wave.open(str(path), "wb")  # noqa: SIM115 - stays open across reconnects
                dst.setnchannels(SINK_CHANNELS)
                dst.setsampwidth(SINK_WIDTH)
                dst.setframerate(SINK_RATE)
                target = self._relays[play_id] = (dst, path)
                new = True
            else:
                new = False
        if new:
            _append_json_line(self.log_path, {"event": "start", "play_id": play_id, "sha256": None, "relay": url,
                                              "file": target[1].name, "volume": volume,
                                              "actual_start": _now_ms()}, self._lock)
        def heard_until(at_ms: int) -> None:
            self._heard_until[play_id] = at_ms

        return _FileStreamPlayer(proc, target[0], self._relay_lock, heard_until)

    def stream_finished(self, play_id: str, stopped: bool) -> None:
        with self._lock:
            target = self._relays.pop(play_id, None)
        if target is None:
            return
        with self._relay_lock:
            frames = target[0].getnframes()
            target[0].close()
        # heard_until: when the last sample sounded (closing ffmpeg afterwards takes a while, so ended_at
        # is later); the timing of any sample i is heard_until − (frames − i)/rate, if no underrun since.
        _append_json_line(self.log_path, {"event": "end", "play_id": play_id, "ended_at": _now_ms(),
                                          "heard_until": self._heard_until.pop(play_id, None), "frames": frames,
                                          "stopped": stopped}, self._lock)


class _FileStreamPlayer(StreamPlayer):
    """ffmpeg decodes the stream at its real pace; a thread appends the samples to the relay's WAV."""

    def __init__(self, proc: subprocess.Popen[bytes], dst: wave.Wave_write, lock: threading.Lock,
                 heard_until: Callable[[int], None]) -> None:
        self._proc = proc
        self._heard_until = heard_until
        self._dst = dst
        self._dst_lock = lock
        self._frames = 0
        self._done = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="filesink-relay", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        chunk = int(SINK_RATE * _CHUNK_S) * SINK_WIDTH * SINK_CHANNELS
        #: When sample 0 of this connection sounds (monotonic); moved on after an underrun, as a card's is.
        clock: float | None = None
        try:
            while data := self._proc.stdout.read1(chunk):  # type: ignore[attr-defined]
                whole = len(data) - len(data) % (SINK_WIDTH * SINK_CHANNELS)
                # Written when it would be heard, like a sound card with a STREAM_LEAD_S buffer: a stream
                # served faster than real time (a file served whole) waits here; a live stream that comes
                # in real time is written STREAM_LEAD_S after its first bytes, with room for jitter.
                now = time.monotonic()
                if clock is None:
                    clock = now + STREAM_LEAD_S
                elif now > clock + self._frames / SINK_RATE:
                    late = now - (clock + self._frames / SINK_RATE)
                    clock += late
                    log.warning("file sink relay: underrun, stream %.0f ms late", late * 1000)
                due = clock + self._frames / SINK_RATE
                if self._closing.wait(max(0.0, due - now)):
                    # Stopped: what was not yet heard is not written, but ffmpeg's output is still read
                    # to its end, so ffmpeg is never stuck on a full pipe when told to exit.
                    while self._proc.stdout.read1(chunk):  # type: ignore[attr-defined]
                        pass
                    break
                with self._dst_lock:
                    self._dst.writeframes(data[:whole])
                self._frames += whole // (SINK_WIDTH * SINK_CHANNELS)
                # Written at its start (due); its last sample sounds one chunk later.
                self._heard_until(_now_ms() + round((clock + self._frames / SINK_RATE - time.monotonic()) * 1000))
        except (OSError, ValueError, wave.Error) as exc:
            log.warning("file sink relay: %s", exc)
        finally:
            self._done.set()

    @property
    def frames(self) -> int:
        return self._frames

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def close(self) -> str:
        self._closing.set()
        return _end_process(self._proc, self._done)


def _end_process(proc: subprocess.Popen[bytes], done: threading.Event | None = None) -> str:
    """Terminates a stream process (then kills it) and returns the tail of its stderr."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
    if done is not None:
        done.wait(3)
    try:
        err = proc.stderr.read().decode(errors="replace")[-300:].strip() if proc.stderr else ""
    except ValueError:  # a stop from the event loop and the relay thread closed it at the same moment
        err = ""
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return err


# -------------------------------------------------------------------------------------- ALSA via mpv


class _ProcessPlayback(Playback):
    def __init__(self, proc: subprocess.Popen[bytes], started_ms: int) -> None:
        super().__init__(started_ms)
        self._proc = proc

    def wait(self, timeout: float | None = None) -> bool:
        try:
            rc = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        if rc != 0 and not self.stopped and self.error is None:
            err = self._proc.stderr.read().decode(errors="replace")[-300:] if self._proc.stderr else ""
            self.error = f"player exited with {rc}: {err.strip()}"
        return True

    def _halt(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(3)


class _PipeStreamPlayer(StreamPlayer):
    """ffmpeg → aplay; frames are estimated from the time the pipe has been sounding."""

    def __init__(self, src: subprocess.Popen[bytes], sink: subprocess.Popen[bytes]) -> None:
        self._src = src
        self._sink = sink
        self._t0 = time.monotonic()
        self._ended_at: float | None = None

    @property
    def frames(self) -> int:
        end = self._ended_at if self._ended_at is not None else time.monotonic()
        # A stream that failed at once (bad URL) never sounded; anything that ran over a second did.
        return int((end - self._t0) * SINK_RATE) if end - self._t0 > 1.0 else 0

    def wait(self, timeout: float) -> bool:
        try:
            self._src.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        if self._ended_at is None:
            self._ended_at = time.monotonic()
        return True

    def close(self) -> str:
        if self._ended_at is None:
            self._ended_at = time.monotonic()
        err = _end_process(self._src)
        _end_process(self._sink)
        return err


@dataclass(frozen=True, slots=True)
class AlsaSettings:
    """Which ALSA device to play on (``default`` follows the system's / ``~/.asoundrc``) and with what.

    ``aplay`` (default) plays WAV decoded ahead of time: about 3 MB while it plays, for the whole
    length of an announcement, against about 70 MB for mpv — it matters on a 512 MB Pi Zero.
    ``mpv`` decodes as it plays and needs nothing ahead.
    """

    device: str = "default"
    player: Literal["aplay", "mpv"] = "aplay"
    cache_dir: Path = Path("decoded")


class AlsaOutput(AudioOutput):
    """Plays on ALSA — the path a Raspberry Pi's DAC or USB sound card takes."""

    kind: Literal["file", "alsa"] = "alsa"

    def __init__(self, name: str, settings: AlsaSettings) -> None:
        super().__init__(name)
        self.settings = settings
        needed = [settings.player] + (["ffmpeg"] if settings.player == "aplay" else [])
        missing = [tool for tool in needed if shutil.which(tool) is None]
        if missing:
            raise OutputError(f"not installed: {', '.join(missing)}")
        settings.cache_dir.mkdir(parents=True, exist_ok=True)

    def prepare(self, media: Path, volume: int) -> Path:
        if self.settings.player == "mpv":
            return media
        # aplay has no volume control: the gain goes into the decoded samples.
        out = self.settings.cache_dir / f"{media.stem}-v{volume}.wav"
        if not out.exists():
            decode_to_wav(media, out, volume=volume)
        return out

    def release(self, prepared: Path) -> None:
        if prepared.parent == self.settings.cache_dir:
            prepared.unlink(missing_ok=True)

    def start(self, prepared: Path, *, play_id: str, sha256: str, volume: int) -> Playback:
        if self.settings.player == "aplay":
            cmd = ["aplay", "-q", "-D", self.settings.device, "--", str(prepared)]
        else:
            cmd = ["mpv", "--no-config", "--no-video", "--no-terminal", "--really-quiet",
                   "--ao=alsa", f"--audio-device=alsa/{self.settings.device}", f"--volume={volume}",
                   "--", str(prepared)]
        started = _now_ms()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            raise OutputError(f"cannot start {cmd[0]}: {exc}") from exc
        return _ProcessPlayback(proc, started)

    def open_stream(self, url: str, *, play_id: str, volume: int) -> StreamPlayer:
        # ffmpeg decodes (with the volume applied) into aplay, which the sound card paces.
        decode = [*relay_input_args(url), "-af", f"volume={volume / 100:.2f}",
                  "-ac", str(SINK_CHANNELS), "-ar", str(SINK_RATE), "-f", "s16le", "-"]
        play = ["aplay", "-q", "-D", self.settings.device, "-t", "raw", "-f", "S16_LE", "-r", str(SINK_RATE),
                "-c", str(SINK_CHANNELS), "-"]
        try:
            src = subprocess.Popen(decode, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise OutputError(f"cannot start ffmpeg: {exc}") from exc
        try:
            sink = subprocess.Popen(play, stdin=src.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            _end_process(src)
            raise OutputError(f"cannot start aplay: {exc}") from exc
        return _PipeStreamPlayer(src, sink)
