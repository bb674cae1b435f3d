"""The interface every speaker output implements: prepare ahead (slow), start on time (fast), relay streams."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

from devices.audio_output.playback import Playback, StreamPlayer
from devices.audio_output.relay import RelayPlayback


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
        playback = RelayPlayback(self, url, play_id, volume, until_ms, give_up_ms)
        playback.begin()
        return playback
