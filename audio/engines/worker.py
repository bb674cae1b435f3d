"""The subprocess side of the TTS engines: ``python .../audio/engines/worker.py KIND``.

Every engine speaks in a child process so that a hung or crashing library (pyttsx3 is not thread-safe
and can block forever inside espeak-ng) costs one killed process, never the controller.

The parent starts this file by its path, not as ``-m audio.engines.worker``: that would import the
``audio.engines`` package (pydantic and all, ~0.3 s) in a child that needs none of it. So this module
imports nothing from ``audio``.

Protocol: requests and replies are single JSON lines. ``gtts`` answers one request read from stdin and
exits. ``espeak`` and ``piper MODEL [CONFIG]`` get ready first (pyttsx3 initialised, or the voice
loaded), say so with ``{"ok": true, "ready": true, ...}``, then answer one request per line until stdin
closes. The parent sends an espeak worker one request only (espeak-ng carries state from one synthesis
into the next, so a second request would not give the same samples for the same text); it starts the
worker ahead of need instead. A reply is ``{"ok": true, "voice": ..., "sample_rate": ..., "synth_s": ...}`` or
``{"ok": false, "error": ...}``; a failed request does not end a long-lived worker.
Libraries may print to stdout (pyttsx3, gTTS), so the worker moves fd 1 to stderr and keeps
a private duplicate of the original stdout for replies only.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
import wave
from pathlib import Path
from typing import IO, Any

#: espeak-ng's output rate for its own voices (not MBROLA's), as pyttsx3 also assumes.
ESPEAK_RATE = 22050


def _reply_channel() -> IO[str]:
    """Keeps the real stdout for replies and points fd 1 (and ``sys.stdout``) at stderr."""
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return reply


def _send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _wav_frames(path: Path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getnframes(), w.getframerate()


class EspeakSpeaker:
    """espeak-ng, initialised by pyttsx3 and driven through pyttsx3's binding of libespeak-ng.

    pyttsx3's own loop (``save_to_file`` + ``runAndWait``) is not used for the synthesis: its ``runAndWait``
    starts with a ``stop()`` that cancels espeak-ng whenever espeak-ng looks busy, which it does for an instant
    now and then while idle — under load about one synthesis in twelve lost its rate or pitch setting or was
    cancelled outright (no file, or an empty one); and it gathers the samples with ``bytes +=``, copying
    megabytes a hundred times for a minute of speech. Here the samples go into a list through our own
    callback, the settings are queued ahead of the text in espeak-ng's command queue (nothing cancels
    them), and the first synthesis of a process gives exactly the samples of ``espeak-ng -w``.
    """

    def __init__(self) -> None:
        import pyttsx3
        from pyttsx3.drivers import _espeak

        self.espeak = _espeak
        # Initialises espeak-ng (retrieval mode, 22,050 Hz) and lists its voices.
        engine = pyttsx3.init("espeak")
        self.voices = [(str(v.id), [str(lang) for lang in (v.languages or [])]) for v in engine.getProperty("voices")]
        self._chunks: list[bytes] = []
        self._done = threading.Event()
        _espeak.SetSynthCallback(self._on_synth)

    def _on_synth(self, wav: Any, samples: int, events: Any) -> int:
        # Called on espeak-ng's own thread, one buffer (up to 1 s) of 16-bit mono samples at a time.
        if samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        i = 0
        while events[i].type != self.espeak.EVENT_LIST_TERMINATED:
            if events[i].type == self.espeak.EVENT_MSG_TERMINATED:
                self._done.set()
            i += 1
        return 0

    def _voice(self, wanted: str | None, language: str | None) -> str | None:
        for vid, _ in self.voices:
            if wanted is not None and (vid == wanted or vid.rsplit("/", 1)[-1] == wanted):
                return vid
        if language is not None:
            for vid, languages in self.voices:
                if language in languages:
                    return vid
        return None

    def speak(self, request: dict[str, Any]) -> dict[str, Any]:
        """Speaks one request into ``request["out"]`` (16-bit mono WAV) and returns the reply."""
        out = Path(request["out"])
        wanted: str | None = request.get("voice")
        language: str | None = request.get("language")
        chosen = self._voice(wanted, language)
        if chosen is None:
            return {"ok": False, "error": f"espeak-ng has no voice {wanted!r} / language {language!r}"}
        started = time.perf_counter()
        es = self.espeak
        if es.SetVoiceByName(chosen.encode()) != 0:
            return {"ok": False, "error": f"espeak-ng could not load voice {chosen!r}"}
        es.SetParameter(es.RATE, int(request["rate"]), 0)
        es.SetParameter(es.PITCH, int(request["pitch"]), 0)
        es.SetParameter(es.VOLUME, round(float(request["volume"]) * 100), 0)
        self._chunks.clear()
        self._done.clear()
        # The flags pyttsx3 uses: a pause at the end, UTF-8 text.
        if es.Synth(str(request["text"]).encode("utf-8"), flags=es.ENDPAUSE | es.CHARS_UTF8) != 0:
            return {"ok": False, "error": "espeak-ng refused the text"}
        self._done.wait()  # the parent kills this process when its timeout passes
        audio = b"".join(self._chunks)
        if not audio:
            return {"ok": False, "error": "espeak-ng produced empty audio"}
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(ESPEAK_RATE)
            w.writeframes(audio)
        return {"ok": True, "voice": chosen, "sample_rate": ESPEAK_RATE, "synth_s": time.perf_counter() - started}


def serve_espeak(channel: IO[str]) -> None:
    """Initialises pyttsx3 once and answers requests from stdin until it closes."""
    started = time.perf_counter()
    try:
        speaker = EspeakSpeaker()
    except Exception as exc:
        _send(channel, {"ok": False, "error": f"cannot start espeak-ng: {type(exc).__name__}: {exc}"})
        return
    _send(channel, {"ok": True, "ready": True, "init_s": time.perf_counter() - started})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = speaker.speak(json.loads(line))
        except Exception as exc:  # one bad request must not end the long-lived worker
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _send(channel, reply)


def speak_gtts(request: dict[str, Any]) -> dict[str, Any]:
    """Fetches speech for one request from Google Translate's TTS endpoint (needs the network)."""
    from gtts import gTTS

    out = Path(request["out"])
    tts = gTTS(request["text"], lang=request["lang"], tld=request["tld"], slow=bool(request["slow"]),
               timeout=float(request["timeout_s"]))
    tts.save(str(out))
    if not out.exists() or out.stat().st_size == 0:
        return {"ok": False, "error": "gTTS returned no audio"}
    return {"ok": True, "voice": f"{request['lang']}@{request['tld']}", "sample_rate": 24000}


def serve_piper(model: str, config: str | None, channel: IO[str]) -> None:
    """Loads a Piper voice once and answers requests from stdin until it closes."""
    from piper import PiperVoice, SynthesisConfig

    try:
        voice = PiperVoice.load(model, config_path=config)
    except Exception as exc:
        _send(channel, {"ok": False, "error": f"cannot load Piper voice {model}: {exc}"})
        return
    _send(channel, {"ok": True, "ready": True, "sample_rate": voice.config.sample_rate})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            out = Path(request["out"])
            syn = SynthesisConfig(speaker_id=request.get("speaker_id"), length_scale=request.get("length_scale"),
                                  noise_scale=request.get("noise_scale"), noise_w_scale=request.get("noise_w_scale"),
                                  volume=float(request.get("volume", 1.0)))
            started = time.perf_counter()
            with wave.open(str(out), "wb") as w:
                voice.synthesize_wav(request["text"], w, syn_config=syn)
            frames, rate = _wav_frames(out)
            if frames == 0:
                reply: dict[str, Any] = {"ok": False, "error": "Piper produced empty audio"}
            else:
                reply = {"ok": True, "voice": Path(model).stem, "sample_rate": rate,
                         "synth_s": time.perf_counter() - started}
        except Exception as exc:  # one bad request must not end the long-lived worker
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _send(channel, reply)


def main(argv: list[str]) -> int:
    """Entry point: ``espeak`` and ``piper MODEL [CONFIG]`` serve; ``gtts`` answers one request."""
    channel = _reply_channel()
    if not argv:
        _send(channel, {"ok": False, "error": "usage: worker espeak|gtts|piper MODEL [CONFIG]"})
        return 2
    kind = argv[0]
    if kind == "piper":
        serve_piper(argv[1], argv[2] if len(argv) > 2 else None, channel)
        return 0
    if kind == "espeak":
        serve_espeak(channel)
        return 0
    if kind != "gtts":
        _send(channel, {"ok": False, "error": f"unknown engine kind {kind!r}"})
        return 2
    request = json.loads(sys.stdin.read())
    try:
        reply = speak_gtts(request)
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    _send(channel, reply)
    return 0 if reply.get("ok") else 1


def _forget_own_folder() -> None:
    """Takes this file's folder off ``sys.path``, where Python put it because the file was started by path.

    The folder holds the parent's modules (``config.py``, ``base.py``, ``chain.py``...): a library that imports
    a top-level module of the same name must find its own, never ours.
    """
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not (p and Path(p).resolve() == here)]


if __name__ == "__main__":
    _forget_own_folder()
    sys.exit(main(sys.argv[1:]))
