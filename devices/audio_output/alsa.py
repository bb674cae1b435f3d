"""Playing on ALSA: aplay (decoded ahead) or mpv — the path a Raspberry Pi's DAC or USB sound card takes."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devices.audio_output.decode import decode_to_wav
from devices.audio_output.output import AudioOutput
from devices.audio_output.playback import (
    SINK_CHANNELS,
    SINK_RATE,
    OutputError,
    Playback,
    StreamPlayer,
    end_process,
    now_ms,
)
from devices.audio_output.relay import relay_input_args


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
        err = end_process(self._src)
        end_process(self._sink)
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
        started = now_ms()
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
            end_process(src)
            raise OutputError(f"cannot start aplay: {exc}") from exc
        return _PipeStreamPlayer(src, sink)
