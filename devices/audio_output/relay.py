"""A relay window on any output: connect to the stream, play it, reconnect with back-off after drops."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Protocol

from devices.audio_output.playback import OutputError, Playback, StreamPlayer, now_ms

log = logging.getLogger(__name__)


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


class StreamSource(Protocol):
    """What a relay needs of its output: a connection to the stream, and word when the relay has ended."""

    def open_stream(self, url: str, *, play_id: str, volume: int) -> StreamPlayer:
        """Starts playing a live stream now; the returned player ends when the stream does."""
        ...

    def stream_finished(self, play_id: str, stopped: bool) -> None:
        """Called once when a relay ends (after its last connection)."""
        ...


class RelayPlayback(Playback):
    """A relay window: connects, plays, reconnects after drops, ends at ``until_ms`` or on stop."""

    def __init__(self, output: StreamSource, url: str, play_id: str, volume: int, until_ms: int,
                 give_up_ms: int | None = None) -> None:
        super().__init__(now_ms())
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
        return (self._until_ms - now_ms()) / 1000

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
                    lost_at = now_ms()
                    self.drops += 1
                    log.warning("relay %s: stream dropped (%s); reconnecting", self._play_id, last_error[:200])
                if self._give_up_ms is not None and now_ms() - lost_at >= self._give_up_ms:
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
