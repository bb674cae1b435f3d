"""TTS engines behind one interface, tried in order by an :class:`EngineChain`.

* :class:`EspeakEngine` — espeak-ng through pyttsx3, offline; the default.
* :class:`PiperEngine` — piper-tts with a site's ``.onnx`` voice.
* :class:`GttsEngine` — Google Translate's TTS through gTTS; needs the network.

Every synthesis runs in a child process (``audio/engines/worker.py``) under a timeout, so a hung
engine is killed and the chain moves on.

* espeak-ng: one child per request, as the same text must give the same samples and espeak-ng carries
  state from one synthesis into the next. Starting one (Python, pyttsx3, espeak-ng's voices) costs
  ~0.15 s, so the next child is started ahead of need, once a request has been answered (while
  post-processing keeps ffmpeg on one core), and waits ready on its stdin. A render then pays only the
  synthesis. Concurrent requests beyond the ready child start their own.
* Piper: its voice takes seconds to load, so each distinct voice file gets one long-lived worker that
  loads it once and answers requests one at a time (a lock serialises callers).
* gTTS waits on the network anyway: one child per request, started when asked.

A worker that times out or breaks is killed and a fresh one is started on the next request. Call
:func:`shutdown_workers` to stop them early; they are also stopped at interpreter exit.

All of this is blocking code; callers run it in a thread.
"""

from __future__ import annotations

import abc
import atexit
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from audio.profile import note
from audio.speech import SpeechError

__all__ = [
    "AllEnginesFailed",
    "EngineChain",
    "EngineConfig",
    "EngineFailed",
    "EspeakEngine",
    "EspeakEngineConfig",
    "GttsEngine",
    "GttsEngineConfig",
    "PiperEngine",
    "PiperEngineConfig",
    "SpeechEngine",
    "Synthesis",
    "build_engine",
    "shutdown_workers",
]

#: Workers are started by path: ``-m audio.engines.worker`` would import this package (pydantic, ~0.3 s).
_WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")


class EngineFailed(SpeechError):
    """One engine could not speak (no network, missing voice, timeout, empty audio...)."""


class AllEnginesFailed(SpeechError):
    """Every engine in the chain failed; ``failures`` holds one message per engine, in order."""

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = tuple(failures)
        super().__init__("no TTS engine could speak: " + "; ".join(self.failures))


class _EngineModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds one synthesis may take before the engine is killed; None uses the chain's default.
    timeout_s: float | None = Field(default=None, gt=0)


class EspeakEngineConfig(_EngineModel):
    """espeak-ng through pyttsx3. ``voice`` is an id (``aav/vi``) or its last part (``vi``)."""

    kind: Literal["espeak"] = "espeak"
    voice: str | None = "vi"
    #: Used when ``voice`` is None or not installed: the first voice that lists this language.
    language: str | None = "vi"
    rate: int = Field(default=150, ge=80, le=450)
    pitch: int = Field(default=50, ge=0, le=99)
    volume: float = Field(default=1.0, ge=0.0, le=1.0)


class PiperEngineConfig(_EngineModel):
    """piper-tts with a voice file; ``config`` defaults to ``model`` + ``.json``."""

    kind: Literal["piper"] = "piper"
    model: Path
    config: Path | None = None
    speaker_id: int | None = Field(default=None, ge=0)
    length_scale: float | None = Field(default=None, gt=0)
    noise_scale: float | None = Field(default=None, ge=0)
    noise_w_scale: float | None = Field(default=None, ge=0)
    volume: float = Field(default=1.0, gt=0)
    #: Loading a voice takes seconds, so it has its own, longer limit.
    load_timeout_s: float = Field(default=60.0, gt=0)


class GttsEngineConfig(_EngineModel):
    """gTTS (online)."""

    kind: Literal["gtts"] = "gtts"
    lang: str = "vi"
    tld: str = "com"
    slow: bool = False


EngineConfig = Annotated[EspeakEngineConfig | PiperEngineConfig | GttsEngineConfig, Field(discriminator="kind")]


@dataclass(frozen=True, slots=True)
class Synthesis:
    """Raw engine output, before post-processing."""

    path: Path
    engine: str
    voice: str
    sample_rate: int
    elapsed_s: float
    #: Why the engines tried before this one failed (empty when the first engine spoke).
    failures: tuple[str, ...] = ()


def _worker_command(*args: str) -> list[str]:
    return [sys.executable, str(_WORKER_SCRIPT), *args]


def _decode_reply(raw: bytes, what: str) -> dict[str, Any]:
    lines = [ln for ln in raw.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    if not lines:
        raise EngineFailed(f"{what}: the worker gave no answer")
    try:
        reply = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise EngineFailed(f"{what}: unreadable worker answer {lines[-1][:200]!r}") from None
    if not isinstance(reply, dict):
        raise EngineFailed(f"{what}: unreadable worker answer")
    return reply


class SpeechEngine(abc.ABC):
    """One way of turning text into an audio file."""

    kind: ClassVar[str]

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    @abc.abstractmethod
    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Speaks ``text`` into a new file inside ``out_dir``; raises :class:`EngineFailed`."""

    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes this engine's audio, as JSON-able data (for cache keys)."""


def _new_output(kind: str, suffix: str, out_dir: Path) -> Path:
    """A fresh, not yet existing file name in ``out_dir`` for the engine to write."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{kind}-", suffix=suffix, dir=out_dir)
    os.close(fd)
    out = Path(name)
    out.unlink()  # the engine creates it; an existing empty file would hide "wrote nothing"
    return out


def _note_engine(kind: str, reply: dict[str, Any], started_s: float, elapsed_s: float) -> None:
    """Profile rows: the synthesis inside the worker, and everything else (start, IPC, checks)."""
    synth = float(reply.get("synth_s", 0.0))
    note(f"engine: {kind} synthesis (inside the worker)", synth)
    note(f"engine: {kind} worker start", started_s)
    note(f"engine: {kind} IPC + checks", max(0.0, elapsed_s - synth - started_s))


class _OneShotEngine(SpeechEngine):
    """An engine whose every request runs in a fresh child process."""

    suffix: ClassVar[str] = ".wav"

    def worker_command(self) -> list[str]:
        """The child process that answers one JSON request on stdin."""
        return _worker_command(self.kind)

    @abc.abstractmethod
    def request(self, text: str, out: Path) -> dict[str, Any]:
        """The JSON request for ``text``."""

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Runs one child; kills it when it exceeds the timeout."""
        out = _new_output(self.kind, self.suffix, out_dir)
        started = time.monotonic()
        try:
            proc = subprocess.run(self.worker_command(), input=json.dumps(self.request(text, out)).encode(),
                                  capture_output=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            out.unlink(missing_ok=True)
            raise EngineFailed(f"{self.kind}: killed after {self.timeout_s:g}s timeout") from None
        except OSError as exc:
            raise EngineFailed(f"{self.kind}: cannot start worker: {exc}") from None
        try:
            reply = _decode_reply(proc.stdout, self.kind)
        except EngineFailed as exc:
            tail = proc.stderr.decode(errors="replace").strip()[-300:]
            out.unlink(missing_ok=True)
            raise EngineFailed(f"{exc} (exit {proc.returncode}: {tail})") from None
        if not reply.get("ok"):
            out.unlink(missing_ok=True)
            raise EngineFailed(f"{self.kind}: {reply.get('error', 'failed')}")
        if not out.exists() or out.stat().st_size == 0:
            raise EngineFailed(f"{self.kind}: produced no audio")
        elapsed = time.monotonic() - started
        _note_engine(self.kind, reply, 0.0, elapsed)
        return Synthesis(path=out, engine=self.kind, voice=str(reply.get("voice", "")),
                         sample_rate=int(reply.get("sample_rate", 0)), elapsed_s=elapsed)


class EspeakEngine(SpeechEngine):
    """espeak-ng via pyttsx3 (offline), in a pool of long-lived workers. Writes 22,050 Hz mono WAV."""

    kind = "espeak"

    def __init__(self, config: EspeakEngineConfig, timeout_s: float) -> None:
        super().__init__(config.timeout_s or timeout_s)
        self.config = config

    def worker_command(self) -> list[str]:
        """The child that initialises pyttsx3, says it is ready and answers a JSON-line request."""
        return _worker_command(self.kind)

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Speaks through the worker started ahead (or a new one); the timeout covers its start and the synthesis."""
        out = _new_output(self.kind, ".wav", out_dir)
        started = time.monotonic()
        try:
            reply, start_s = _pool(self.kind, self.worker_command(), "starting espeak-ng").speak(
                self.request(text, out), self.timeout_s)
        except EngineFailed:
            out.unlink(missing_ok=True)
            raise
        if not reply.get("ok"):
            out.unlink(missing_ok=True)
            raise EngineFailed(f"{self.kind}: {reply.get('error', 'failed')}")
        if not out.exists() or out.stat().st_size == 0:
            raise EngineFailed(f"{self.kind}: produced no audio")
        elapsed = time.monotonic() - started
        _note_engine(self.kind, reply, start_s, elapsed)
        return Synthesis(path=out, engine=self.kind, voice=str(reply.get("voice", "")),
                         sample_rate=int(reply.get("sample_rate", 0)), elapsed_s=elapsed)

    def request(self, text: str, out: Path) -> dict[str, Any]:
        """Voice, prosody and the output path for the worker."""
        c = self.config
        return {"text": text, "out": str(out), "voice": c.voice, "language": c.language, "rate": c.rate,
                "pitch": c.pitch, "volume": c.volume}

    def fingerprint(self) -> dict[str, Any]:
        """The config without its timeout."""
        return self.config.model_dump(mode="json", exclude={"timeout_s"})


class GttsEngine(_OneShotEngine):
    """gTTS (online). Writes MP3; fails at once without a network."""

    kind = "gtts"
    suffix = ".mp3"

    def __init__(self, config: GttsEngineConfig, timeout_s: float) -> None:
        super().__init__(config.timeout_s or timeout_s)
        self.config = config

    def request(self, text: str, out: Path) -> dict[str, Any]:
        """Language, domain and the output path for the worker."""
        c = self.config
        return {"text": text, "out": str(out), "lang": c.lang, "tld": c.tld, "slow": c.slow,
                "timeout_s": self.timeout_s}

    def fingerprint(self) -> dict[str, Any]:
        """The config without its timeout."""
        return self.config.model_dump(mode="json", exclude={"timeout_s"})


class _ServedWorker:
    """One long-lived child process answering JSON-line requests (pyttsx3 initialised, or a Piper voice loaded)."""

    def __init__(self, kind: str, command: list[str], start_what: str) -> None:
        self.kind = kind
        self.command = command
        self.start_what = start_what
        #: Serialises callers of a shared worker (Piper's); a pooled worker has one caller at a time anyway.
        self.lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buffer = b""
        self._ready = False

    def alive(self) -> bool:
        """True while the child runs (it may still be starting)."""
        return self._proc is not None and self._proc.poll() is None

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-300:]

    def stop(self) -> None:
        """Kills the child (if any) and forgets it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._buffer = b""
        self._ready = False

    def _read_line(self, limit_s: float, what: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        deadline = time.monotonic() + limit_s
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise EngineFailed(f"{self.kind}: {what} timed out; worker killed after {limit_s:g}s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EngineFailed(f"{self.kind}: worker exited during {what}: {self._stderr_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return _decode_reply(line, self.kind)

    def spawn(self) -> None:
        """Starts the child without waiting for it to get ready (a no-op while one runs)."""
        if self.alive():
            return
        self.stop()
        # Kept open for the worker's life (closed in stop()); a file, so a chatty child never blocks on a pipe.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, bufsize=0)
        except OSError as exc:
            self.stop()
            raise EngineFailed(f"{self.kind}: cannot start worker: {exc}") from None

    def _await_ready(self, load_timeout_s: float) -> None:
        ready = self._read_line(load_timeout_s, self.start_what)
        if not ready.get("ok"):
            raise EngineFailed(f"{self.kind}: {ready.get('error', 'the worker failed to start')}")
        self._ready = True

    def wait_ready(self, timeout_s: float) -> bool:
        """Waits up to ``timeout_s`` for a started child to say it is ready; True once it has.

        For callers that want a worker started ahead to be ready before they need it (tests, warm-up).
        A child that fails to get ready is stopped, so the next request starts a clean one.
        """
        if self._ready and self.alive():
            return True
        if not self.alive():
            return False
        with self.lock:
            try:
                self._await_ready(timeout_s)
            except EngineFailed:
                self.stop()
                return False
        return True

    def speak(self, request: dict[str, Any], timeout_s: float, load_timeout_s: float) -> tuple[dict[str, Any], float]:
        """Sends one request: the reply, and the seconds spent starting the child (0 when it was running).

        On any failure the child is killed so the next call starts clean.
        """
        # A caller queued behind a long synthesis gives up after its own timeout, so the chain can move on.
        if not self.lock.acquire(timeout=timeout_s):
            raise EngineFailed(f"{self.kind}: voice busy for {timeout_s:g}s")
        try:
            start_s = 0.0
            try:
                if not (self._ready and self.alive()):
                    # Not started, died, or started ahead and perhaps still getting ready.
                    started = time.monotonic()
                    self.spawn()
                    self._await_ready(load_timeout_s)
                    start_s = time.monotonic() - started
                proc = self._proc
                assert proc is not None and proc.stdin is not None
                proc.stdin.write((json.dumps(request) + "\n").encode())
                return self._read_line(timeout_s, "synthesis"), start_s
            except EngineFailed:
                self.stop()
                raise
            except OSError as exc:  # broken pipe: the child died between requests
                self.stop()
                raise EngineFailed(f"{self.kind}: worker failed: {exc}") from None
        finally:
            self.lock.release()


class _OneRequestWorkers:
    """Workers that answer one request each, with the next one started ahead of need (espeak-ng)."""

    def __init__(self, kind: str, command: list[str], start_what: str) -> None:
        self.kind = kind
        self.command = command
        self.start_what = start_what
        self._next: _ServedWorker | None = None
        self._lock = threading.Lock()
        self._closed = False

    def speak(self, request: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], float]:
        """One request on a fresh worker; the reply and the seconds spent waiting for the worker to be ready."""
        with self._lock:
            worker, self._next = self._next, None
        worker = worker or _ServedWorker(self.kind, self.command, self.start_what)
        try:
            return worker.speak(request, timeout_s, timeout_s)  # the ready wait counts against the timeout too
        finally:
            worker.stop()
            self._start_next()

    def _start_next(self) -> None:
        with self._lock:
            if self._closed or self._next is not None:
                return
            worker = self._next = _ServedWorker(self.kind, self.command, self.start_what)
        try:
            worker.spawn()
        except EngineFailed:  # the next request starts one itself, and reports why that fails
            with self._lock:
                if self._next is worker:
                    self._next = None

    def close(self) -> None:
        """Stops the worker started ahead; none is started after this."""
        with self._lock:
            self._closed = True
            worker, self._next = self._next, None
        if worker is not None:
            worker.stop()


_pools: dict[tuple[str, ...], _OneRequestWorkers] = {}
_piper_workers: dict[tuple[Path, Path], _ServedWorker] = {}
_workers_lock = threading.Lock()


def _pool(kind: str, command: list[str], start_what: str) -> _OneRequestWorkers:
    with _workers_lock:
        pool = _pools.get(tuple(command))
        if pool is None:
            pool = _pools[tuple(command)] = _OneRequestWorkers(kind, command, start_what)
        return pool


def _piper_worker(model: Path, config: Path) -> _ServedWorker:
    key = (model, config)
    with _workers_lock:
        worker = _piper_workers.get(key)
        if worker is None:
            worker = _piper_workers[key] = _ServedWorker("piper", _worker_command("piper", str(model), str(config)),
                                                         "loading the voice")
        return worker


def shutdown_workers() -> None:
    """Stops every long-lived engine worker (they restart on demand)."""
    with _workers_lock:
        pools = list(_pools.values())
        workers = list(_piper_workers.values())
        _pools.clear()
        _piper_workers.clear()
    for pool in pools:
        pool.close()
    for worker in workers:
        with worker.lock:
            worker.stop()


atexit.register(shutdown_workers)


class PiperEngine(SpeechEngine):
    """piper-tts with a voice file, loaded once into a long-lived worker shared by all callers."""

    kind = "piper"

    def __init__(self, config: PiperEngineConfig, timeout_s: float) -> None:
        super().__init__(config.timeout_s or timeout_s)
        self.config = config
        self.model = config.model.expanduser().resolve()
        self.voice_config = (config.config or Path(f"{config.model}.json")).expanduser().resolve()

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Speaks through the shared worker for this voice file."""
        for path in (self.model, self.voice_config):
            if not path.is_file():
                raise EngineFailed(f"piper: voice file missing: {path}")
        out = _new_output(self.kind, ".wav", out_dir)
        c = self.config
        request = {"text": text, "out": str(out), "speaker_id": c.speaker_id, "length_scale": c.length_scale,
                   "noise_scale": c.noise_scale, "noise_w_scale": c.noise_w_scale, "volume": c.volume}
        started = time.monotonic()
        try:
            reply, start_s = _piper_worker(self.model, self.voice_config).speak(request, self.timeout_s,
                                                                               c.load_timeout_s)
        except EngineFailed:
            out.unlink(missing_ok=True)
            raise
        if not reply.get("ok"):
            out.unlink(missing_ok=True)
            raise EngineFailed(f"piper: {reply.get('error', 'failed')}")
        elapsed = time.monotonic() - started
        _note_engine(self.kind, reply, start_s, elapsed)
        return Synthesis(path=out, engine=self.kind, voice=str(reply.get("voice", self.model.stem)),
                         sample_rate=int(reply.get("sample_rate", 0)), elapsed_s=elapsed)

    def fingerprint(self) -> dict[str, Any]:
        """The config plus size and mtime of the voice files, so replacing a voice invalidates the cache."""
        data = self.config.model_dump(mode="json", exclude={"timeout_s", "load_timeout_s", "model", "config"})
        for label, path in (("model", self.model), ("config", self.voice_config)):
            try:
                st = path.stat()
                data[label] = [str(path), st.st_size, st.st_mtime_ns]
            except OSError:
                data[label] = [str(path), None, None]
        return data


def build_engine(config: EspeakEngineConfig | PiperEngineConfig | GttsEngineConfig, timeout_s: float) -> SpeechEngine:
    """The engine for one config entry; ``timeout_s`` applies unless the entry sets its own."""
    if isinstance(config, EspeakEngineConfig):
        return EspeakEngine(config, timeout_s)
    if isinstance(config, PiperEngineConfig):
        return PiperEngine(config, timeout_s)
    return GttsEngine(config, timeout_s)


class EngineChain:
    """Engines tried in order; the first that produces audio speaks."""

    def __init__(self, engines: Sequence[SpeechEngine]) -> None:
        if not engines:
            raise ValueError("an engine chain needs at least one engine")
        self.engines = tuple(engines)

    @classmethod
    def from_configs(cls, configs: Sequence[EspeakEngineConfig | PiperEngineConfig | GttsEngineConfig],
                     timeout_s: float) -> EngineChain:
        """A chain built from config entries, in order."""
        return cls([build_engine(c, timeout_s) for c in configs])

    def synthesize(self, text: str, out_dir: Path) -> Synthesis:
        """Tries each engine in turn; raises :class:`AllEnginesFailed` when none speaks."""
        failures: list[str] = []
        for engine in self.engines:
            try:
                result = engine.synthesize(text, out_dir)
            except EngineFailed as exc:
                failures.append(str(exc))
                continue
            return Synthesis(path=result.path, engine=result.engine, voice=result.voice,
                             sample_rate=result.sample_rate, elapsed_s=result.elapsed_s, failures=tuple(failures))
        raise AllEnginesFailed(failures)

    def fingerprint(self) -> list[dict[str, Any]]:
        """Every engine's fingerprint, in order, tagged with its kind."""
        return [{"kind": e.kind, **e.fingerprint()} for e in self.engines]
