"""The subprocess side of the TTS engines: ``python -m audio.engines.worker KIND``.

Every engine speaks in a child process so that a hung or crashing library (pyttsx3 is not thread-safe
and can block forever inside espeak-ng) costs one killed process, never the controller.

Protocol: requests and replies are single JSON lines. ``espeak`` and ``gtts`` answer one request read
from stdin and exit; ``piper`` loads its voice once, then answers one request per line until stdin
closes. A reply is ``{"ok": true, "voice": ..., "sample_rate": ...}`` or ``{"ok": false, "error": ...}``.
Libraries print to stdout (pyttsx3 prints "Audio saved…"), so the worker moves fd 1 to stderr and keeps
a private duplicate of the original stdout for replies only.
"""

from __future__ import annotations

import json
import os
import sys
import wave
from pathlib import Path
from typing import IO, Any


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


def speak_espeak(request: dict[str, Any]) -> dict[str, Any]:
    """Speaks one request with espeak-ng through pyttsx3 and returns the reply."""
    import pyttsx3

    out = Path(request["out"])
    engine = pyttsx3.init("espeak")
    # pyttsx3's first save after init() writes nothing; an empty loop run first makes the real one count.
    engine.runAndWait()
    wanted_voice: str | None = request.get("voice")
    language: str | None = request.get("language")
    voices = engine.getProperty("voices")
    chosen: str | None = None
    for v in voices:
        vid = str(v.id)
        if wanted_voice is not None and (vid == wanted_voice or vid.rsplit("/", 1)[-1] == wanted_voice):
            chosen = vid
            break
    if chosen is None and language is not None:
        for v in voices:
            if language in [str(lang) for lang in (v.languages or [])]:
                chosen = str(v.id)
                break
    if chosen is None:
        return {"ok": False, "error": f"espeak-ng has no voice {wanted_voice!r} / language {language!r}"}
    engine.setProperty("voice", chosen)
    engine.setProperty("rate", int(request["rate"]))
    engine.setProperty("pitch", int(request["pitch"]))
    engine.setProperty("volume", float(request["volume"]))
    engine.save_to_file(request["text"], str(out))
    engine.runAndWait()
    if not out.exists():
        return {"ok": False, "error": "pyttsx3 wrote no file"}
    frames, rate = _wav_frames(out)
    if frames == 0:
        return {"ok": False, "error": "pyttsx3 wrote empty audio"}
    return {"ok": True, "voice": chosen, "sample_rate": rate}


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
            with wave.open(str(out), "wb") as w:
                voice.synthesize_wav(request["text"], w, syn_config=syn)
            frames, rate = _wav_frames(out)
            if frames == 0:
                reply: dict[str, Any] = {"ok": False, "error": "Piper produced empty audio"}
            else:
                reply = {"ok": True, "voice": Path(model).stem, "sample_rate": rate}
        except Exception as exc:  # one bad request must not end the long-lived worker
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _send(channel, reply)


def main(argv: list[str]) -> int:
    """Entry point: ``espeak`` / ``gtts`` answer one request; ``piper MODEL [CONFIG]`` serves."""
    channel = _reply_channel()
    if not argv:
        _send(channel, {"ok": False, "error": "usage: worker espeak|gtts|piper MODEL [CONFIG]"})
        return 2
    kind = argv[0]
    if kind == "piper":
        serve_piper(argv[1], argv[2] if len(argv) > 2 else None, channel)
        return 0
    request = json.loads(sys.stdin.read())
    try:
        if kind == "espeak":
            reply = speak_espeak(request)
        elif kind == "gtts":
            reply = speak_gtts(request)
        else:
            reply = {"ok": False, "error": f"unknown engine kind {kind!r}"}
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    _send(channel, reply)
    return 0 if reply.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
