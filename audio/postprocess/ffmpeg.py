"""Running ffmpeg: once to the end (:func:`run_ffmpeg`), or started ahead of need (:class:`FfmpegRun`)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from audio.postprocess.settings import PostProcessSettings
from audio.speech import SpeechError

__all__ = ["BITEXACT", "FfmpegRun", "run_ffmpeg", "tools_missing"]

#: Reproducible bytes: no metadata, no encoder version, so the same input always gives the same file.
BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]


def _command(settings: PostProcessSettings, args: list[str]) -> list[str]:
    return [settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", *args]


def run_ffmpeg(settings: PostProcessSettings, args: list[str], what: str) -> str:
    """Runs ffmpeg to the end; its stderr (where the meters print). SpeechError naming ``what`` on failure."""
    try:
        proc = subprocess.run(_command(settings, args), capture_output=True, timeout=settings.ffmpeg_timeout_s,
                              check=False)
    except FileNotFoundError:
        raise SpeechError(f"{what}: {settings.ffmpeg} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{what}: ffmpeg timed out after {settings.ffmpeg_timeout_s:g}s") from None
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SpeechError(f"{what}: ffmpeg failed ({proc.returncode}): {stderr[-400:]}")
    return stderr


class FfmpegRun:
    """One ffmpeg run started ahead of need, reading its input — audio, or its filter graph — from stdin.

    ffmpeg spends ~0.1 s loading its ~230 shared libraries before it reads anything (in this project's VM;
    less on bare metal). Started while the step before it still works, it has done that by the time its
    input is known. A filter graph comes through ``-filter_complex_script pipe:0``: ffmpeg reads it, until
    stdin closes, before it opens its input files, so those need only exist once the graph is sent.
    """

    def __init__(self, settings: PostProcessSettings, args: list[str], what: str,
                 stdout: int = subprocess.DEVNULL) -> None:
        self.settings = settings
        self.what = what
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in wait()/cancel()
        self._timed_out = threading.Event()
        self._watchdog: threading.Timer | None = None
        try:
            # stderr to a file: a full stderr pipe would stall the process.
            self.proc = subprocess.Popen(_command(settings, args), stdin=subprocess.PIPE, stdout=stdout,
                                         stderr=self._log)
        except FileNotFoundError:
            self._log.close()
            raise SpeechError(f"{what}: {settings.ffmpeg} is not installed") from None

    def _kill(self) -> None:
        self._timed_out.set()
        self.proc.kill()

    def start_clock(self) -> None:
        """From now on the run has ``ffmpeg_timeout_s`` to finish (waiting for its input does not count)."""
        if self._watchdog is None:
            self._watchdog = threading.Timer(self.settings.ffmpeg_timeout_s, self._kill)
            self._watchdog.start()

    def feed(self, data: bytes | Path) -> None:
        """Sends the input (bytes, or a file's content) and closes stdin."""
        self.start_clock()
        stdin = self.proc.stdin
        assert stdin is not None
        # A run that died stops reading: its exit status, read in wait(), says why.
        with contextlib.suppress(BrokenPipeError):
            if isinstance(data, Path):
                with data.open("rb") as fh:
                    shutil.copyfileobj(fh, stdin, 1 << 16)
            else:
                stdin.write(data)
        with contextlib.suppress(BrokenPipeError):
            stdin.close()

    def wait(self) -> str:
        """Waits for the end; the run's stderr. SpeechError when it failed or timed out."""
        self.start_clock()
        try:
            self.proc.wait()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
        self._log.seek(0)
        stderr = self._log.read().decode(errors="replace")
        self._log.close()
        if self._timed_out.is_set():
            raise SpeechError(f"{self.what}: ffmpeg timed out after {self.settings.ffmpeg_timeout_s:g}s")
        if self.proc.returncode != 0:
            raise SpeechError(f"{self.what}: ffmpeg failed ({self.proc.returncode}): {stderr[-400:]}")
        return stderr

    def cancel(self) -> None:
        """Kills the run if it still runs (it was not needed, or a step before it failed)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._log.close()


def tools_missing(settings: PostProcessSettings | None = None) -> list[str]:
    """External programs post-processing needs that are not on PATH."""
    settings = settings or PostProcessSettings()
    return [t for t in (settings.ffmpeg,) if shutil.which(t) is None]
