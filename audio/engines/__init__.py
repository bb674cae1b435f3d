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

Modules: ``base`` (the interface, :class:`Synthesis`, the errors), ``config`` (a site's engine entries),
``espeak_engine`` / ``piper_engine`` / ``gtts_engine`` (one engine each), ``chain`` (:class:`EngineChain`,
:func:`build_engine`), ``workers`` (the parent side of the child processes) and ``worker`` (the child itself,
started by path). The engine modules are not named ``gtts.py`` or ``piper.py``: those names would shadow the
libraries for a child started from this folder (see ``worker.py``).
"""

from __future__ import annotations

from audio.engines.base import AllEnginesFailed, EngineFailed, SpeechEngine, Synthesis
from audio.engines.chain import EngineChain, build_engine
from audio.engines.config import EngineConfig, EspeakEngineConfig, GttsEngineConfig, PiperEngineConfig
from audio.engines.espeak_engine import EspeakEngine
from audio.engines.gtts_engine import GttsEngine
from audio.engines.piper_engine import PiperEngine
from audio.engines.workers import shutdown_workers

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
