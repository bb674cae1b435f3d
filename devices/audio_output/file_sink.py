"""The file sink: writes exactly what a speaker would play, in real time, one WAV per play, for demos and tests."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from devices.audio_output.decode import decode_to_wav
from devices.audio_output.output import AudioOutput
from devices.audio_output.playback import (
    SINK_CHANNELS,
    SINK_RATE,
    SINK_WIDTH,
    OutputError,
    Playback,
    StreamPlayer,
    end_process,
    now_ms,
)
from devices.audio_output.relay import relay_input_args

log = logging.getLogger(__name__)

#: The sink writes its WAV in chunks this long, each when it would be heard.
_CHUNK_S = 0.1
#: The file sink's stand-in for a sound card's buffer when it plays a stream (see _FileStreamPlayer).
STREAM_LEAD_S = 0.1


class _FilePlayback(Playback):
    def __init__(self, source: Path, target: Path, log_path: Path, record: dict[str, object],
                 log_lock: threading.Lock) -> None:
        super().__init__(now_ms())
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
            entry = {"event": "end", "play_id": self._record["play_id"], "ended_at": now_ms(),
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
                                              "actual_start": now_ms()}, self._lock)
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
        _append_json_line(self.log_path, {"event": "end", "play_id": play_id, "ended_at": now_ms(),
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
                self._heard_until(now_ms() + round((clock + self._frames / SINK_RATE - time.monotonic()) * 1000))
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
        return end_process(self._proc, self._done)
