"""The agent's sign runner: shows the signed ``sign.playlist`` (and the announcement that plays) on each sign.

Every sign gets its own thread that owns its driver: rendering big frames, serial writes and pygame all
block, and pygame must stay on the thread that opened it. The event loop only hands over new playlists
and the speaker's now-playing through thread-safe setters; the threads report back through
``emit`` (queued on the loop) and ``on_change`` (state dirty).

A sign that fails (port gone, no answer, no display) is reported once with ``sign.status``, closed and
retried with back-off (1 s doubling to 60 s); when it works again a ``recovered`` status follows. A page
that cannot be laid out is reported (``page_refused``) and skipped; the others still show.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from devices.led.content import ImagePage, SignColour, SignMode, TextPage
from devices.led.drivers import Showing, SignDriver, SignFault, build_driver
from devices.led.fonts import FontError
from devices.led.render import LayoutError, RenderedPage, Renderer
from devices.led.settings import SignSettings
from devices.protocol import (
    SIGNS_TYPE,
    NowPlaying,
    Priority,
    ProtocolError,
    SignNow,
    SignPlaylist,
    SignPlaylistEntry,
    SignStatus,
    TopicInfo,
    VerifiedCommand,
    now_ms,
    parse_envelope,
    parse_model,
)

log = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 60.0
#: Longest a sign with nothing to show sleeps before looking at the clock again.
IDLE_CHECK_S = 60.0
PLAYLIST_FILE = "sign_playlist.json"
#: Drawn pages a sign keeps (a 1920×1080 scroll is a few MB; LED pages are tiny).
DRAWN_CACHE = 16
#: An image page whose file is not downloaded yet is tried again after this long.
RETRY_MEDIA_S = 10.0

Emit = Callable[[str, BaseModel], Coroutine[Any, Any, None]]
Verify = Callable[[bytes, TopicInfo], Awaitable[VerifiedCommand]]
Reply = Callable[[str], Awaitable[None]]
FetchMedia = Callable[[str, int], Path]


@dataclass(frozen=True, slots=True)
class _Choice:
    """What a sign should show now."""

    source: Literal["playlist", "announcement", "idle"]
    pages: tuple[TextPage | ImagePage, ...] = ()
    entry_ids: tuple[str, ...] = ()
    item_ids: tuple[str | None, ...] = ()
    priority: Priority | None = None
    #: For each page, the index of the entry it belongs to.
    page_entries: tuple[int, ...] = ()
    key: str = ""
    #: When to look again even if nothing wakes the sign (ms since epoch).
    recheck_at: int | None = None


def choose(settings: SignSettings, playlist: SignPlaylist | None, playing: NowPlaying | None, now: int) -> _Choice:
    """The highest-priority live entries for this sign, or the announcement that plays, or nothing."""
    entries: list[SignPlaylistEntry] = []
    upcoming: list[int] = []
    if playlist is not None:
        for entry in playlist.entries:
            if entry.signs and settings.name not in entry.signs:
                continue
            if entry.start_at <= now < entry.end_at:
                entries.append(entry)
                upcoming.append(entry.end_at)
            elif entry.start_at > now:
                upcoming.append(entry.start_at)
    recheck = min(upcoming) if upcoming else None
    top = max((e.priority.rank for e in entries), default=-1)
    if settings.show_announcements and playing is not None and playing.priority.rank >= top:
        urgent = playing.priority is Priority.EMERGENCY
        text = playing.title or ("KHẨN CẤP" if urgent else "Thông báo")
        page = TextPage(lines=[text], mode=settings.announcement_mode,
                        colour=SignColour.RED if urgent else settings.announcement_colour, dwell_ms=3_600_000)
        return _Choice("announcement", (page,), (playing.play_id,), (playing.item_id,), playing.priority, (0,),
                       key=f"announcement:{playing.play_id}", recheck_at=recheck)
    if not entries:
        return _Choice("idle", key="idle", recheck_at=recheck)
    chosen = sorted((e for e in entries if e.priority.rank == top), key=lambda e: (e.start_at, e.entry_id))
    pages = tuple(p for e in chosen for p in e.pages)
    page_entries = tuple(i for i, e in enumerate(chosen) for _ in e.pages)
    return _Choice("playlist", pages, tuple(e.entry_id for e in chosen), tuple(e.item_id for e in chosen),
                   chosen[0].priority, page_entries, key="playlist:" + ",".join(e.entry_id for e in chosen),
                   recheck_at=recheck)


class SignWorker:
    """One sign: its driver, its thread, what it shows."""

    def __init__(self, settings: SignSettings, runner: SignRunner) -> None:
        self.settings = settings
        self.runner = runner
        self.driver: SignDriver = build_driver(settings)
        self.wake = threading.Event()
        self.opened = False
        self.fault: str | None = None
        self.now = SignNow(sign=settings.name, width=settings.width, height=settings.height, source="idle",
                           since=now_ms())
        self._refused: set[str] = set()
        #: Pages already drawn for this sign, least recently used first.
        self._drawn: dict[str, RenderedPage] = {}
        self._thread = threading.Thread(target=self._run, name=f"sign-{settings.name}", daemon=True)
        self._key = ""
        self._cursor = 0

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Waits for the thread to end (after the runner's stop flag is set)."""
        self._thread.join(timeout)

    # the thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        stop = self.runner.stopping
        while not stop.is_set():
            if not self.opened:
                try:
                    self.driver.open()
                except SignFault as exc:
                    self._failed(exc)
                    self.runner.interruptible_sleep(self.wake, backoff)
                    backoff = min(BACKOFF_MAX_S, backoff * 2)
                    continue
                self.opened = True
                backoff = BACKOFF_START_S
                self._key = ""  # whatever the sign held before is gone: show the current content again
                if self.fault is not None:
                    self.fault = None
                    self.runner.emit_threadsafe("sign.status", SignStatus(
                        sign=self.settings.name, ok=True, code="recovered", message="sign works again"))
                    self._publish(self.now.model_copy(update={"fault": None}))
            try:
                self._step()
            except SignFault as exc:
                self.driver.close()
                self.opened = False
                self._failed(exc)
                self.runner.interruptible_sleep(self.wake, backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
            except Exception:  # a bug must not kill the sign for good
                log.exception("sign %s: unexpected error; carrying on", self.settings.name)
                self.runner.interruptible_sleep(self.wake, 5.0)
        try:
            if self.opened:
                self.driver.blank()
        except SignFault:
            pass
        self.driver.close()

    def _failed(self, exc: SignFault) -> None:
        log.warning("sign %s: %s", self.settings.name, exc)
        if self.fault != exc.code:
            self.runner.emit_threadsafe("sign.status", SignStatus(sign=self.settings.name, ok=False, code=exc.code,
                                                                  message=exc.message[:1000]))
        self.fault = exc.code
        self._publish(self.now.model_copy(update={"fault": str(exc)[:300]}))

    def _step(self) -> None:
        self.wake.clear()
        now = now_ms()
        choice = choose(self.settings, self.runner.playlist, self.runner.playing, now)
        if choice.key != self._key:
            self._key, self._cursor = choice.key, 0
        if not choice.pages:
            if self.now.source != "idle" or self.now.fault:
                self.driver.blank()
                self._publish(SignNow(sign=self.settings.name, width=self.settings.width, height=self.settings.height,
                                      source="idle", since=now))
            wait_s = IDLE_CHECK_S if choice.recheck_at is None else max(0.05, (choice.recheck_at - now) / 1000)
            self.wake.wait(min(IDLE_CHECK_S, wait_s))
            return
        index = self._cursor % len(choice.pages)
        self._cursor += 1
        page = choice.pages[index]
        rendered = self._render(page, choice)
        if rendered is None:
            if all(self._page_key(choice, i) in self._refused for i in range(len(choice.pages))):
                self.wake.wait(IDLE_CHECK_S)  # nothing of it can be shown: wait for a change
            elif self._page_key(choice, index) not in self._refused:
                self.wake.wait(RETRY_MEDIA_S)  # an image not downloaded yet: the board keeps its last page
            return
        hold = max(page.dwell_ms, rendered.duration_ms if rendered.mode in (SignMode.SCROLL_LEFT,
                                                                            SignMode.SCROLL_UP) else 0)
        if choice.recheck_at is not None:
            hold = max(50, min(hold, choice.recheck_at - now))
        text = " ".join(rendered.lines) if isinstance(page, TextPage) else f"[ảnh {page.sha256[:12]}]"
        entry_index = choice.page_entries[index]
        self._publish(SignNow(sign=self.settings.name, width=self.settings.width, height=self.settings.height,
                              source=choice.source, entry_id=choice.entry_ids[entry_index],
                              item_id=choice.item_ids[entry_index], priority=choice.priority, page=index,
                              pages=len(choice.pages), text=text[:1000], since=now))
        try:
            self.driver.show(Showing(page, rendered, hold), self.wake)
        except ValueError as exc:  # the driver cannot carry this page (e.g. too many DOTS pictures)
            self._refuse(self._page_key(choice, index), exc)

    @staticmethod
    def _page_key(choice: _Choice, index: int) -> str:
        return f"{choice.key}#{index}"

    def _render(self, page: TextPage | ImagePage, choice: _Choice) -> RenderedPage | None:
        key = self._page_key(choice, self._cursor - 1 if choice.pages else 0)
        # Pages come round again and again: draw each once (a Pi Zero takes a good part of a second).
        cache_key = page.model_dump_json()
        cached = self._drawn.pop(cache_key, None)
        if cached is not None:
            self._drawn[cache_key] = cached  # most recently used last
            return cached
        rendered = self._draw(page, key)
        if rendered is not None:
            self._drawn[cache_key] = rendered
            while len(self._drawn) > DRAWN_CACHE:
                self._drawn.pop(next(iter(self._drawn)))
        return rendered

    def _draw(self, page: TextPage | ImagePage, key: str) -> RenderedPage | None:
        try:
            if isinstance(page, TextPage):
                rendered = self.runner.renderer.render_text(page, self.settings.panel, smooth=self.settings.smooth)
                if rendered.unsupported and key not in self._refused:
                    log.warning("sign %s: %s", self.settings.name, "; ".join(rendered.warnings))
                return rendered
            try:
                data = self.runner.fetch_media(page.sha256, page.size).read_bytes()
            except Exception as exc:  # the media cache's errors or I/O: the link may come back, try again later
                log.warning("sign %s: image %s not available yet: %s", self.settings.name, page.sha256[:12], exc)
                return None
            return self.runner.renderer.render_image(page, data, self.settings.panel)
        except (LayoutError, OSError, ValueError) as exc:
            self._refuse(key, exc)
            return None

    def _refuse(self, key: str, exc: Exception) -> None:
        """Reports a page this sign cannot show, once per page of a choice."""
        if key not in self._refused:
            self._refused.add(key)
            log.warning("sign %s: page %s not shown: %s", self.settings.name, key, exc)
            self.runner.emit_threadsafe("sign.status", SignStatus(
                sign=self.settings.name, ok=False, code="page_refused", message=str(exc)[:1000]))

    def _publish(self, now: SignNow) -> None:
        self.now = now
        self.runner.changed_threadsafe()


class SignRunner:
    """All signs of one agent and the playlist they share."""

    def __init__(self, signs: list[SignSettings], data_dir: Path, emit: Emit, on_change: Callable[[], None],
                 fetch_media: FetchMedia, renderer: Renderer | None = None) -> None:
        self._renderer = renderer
        self.data_dir = data_dir
        self.fetch_media = fetch_media
        self._emit = emit
        self._on_change = on_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopping = threading.Event()
        self.playlist: SignPlaylist | None = None
        self.playing: NowPlaying | None = None
        self.workers = [SignWorker(s, self) for s in signs]

    @property
    def renderer(self) -> Renderer:
        """The renderer, made on first use; a missing font is a sign fault (reported, retried), not a crash."""
        if self._renderer is None:
            try:
                self._renderer = Renderer()
            except FontError as exc:
                raise SignFault("no_font", str(exc)) from None
        return self._renderer

    # lifecycle (on the loop) -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Restores the last accepted playlist and starts every sign's thread."""
        self._loop = asyncio.get_running_loop()
        stored = self.data_dir / PLAYLIST_FILE
        if stored.exists():
            try:
                raw = await asyncio.to_thread(stored.read_bytes)
                self.playlist = parse_model(SignPlaylist, parse_envelope(raw).data)
                log.info("sign playlist v%d restored (%d entries)", self.playlist.version, len(self.playlist.entries))
            except (OSError, ProtocolError) as exc:
                log.error("stored sign playlist unreadable, waiting for a new one: %s", exc)
        for worker in self.workers:
            worker.start()

    async def stop(self) -> None:
        """Blanks and closes every sign (at most a few seconds)."""
        self.stopping.set()
        for worker in self.workers:
            worker.wake.set()
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for worker in self.workers:
            worker.join(5)

    # input -------------------------------------------------------------------------------------------------

    async def handle(self, info: TopicInfo, payload: bytes, retained: bool, verify: Verify, reply: Reply) -> None:
        """A message on ``…/signs``: verified, stored, shown; replied to like a schedule window."""
        if not payload:
            return  # the controller cleared the retained copy; keep showing what we accepted
        try:
            cmd = await verify(payload, info)
        except ProtocolError as exc:
            level = logging.DEBUG if exc.reason == "replayed" else logging.WARNING
            log.log(level, "sign playlist not taken: %s", exc)
            return
        if cmd.envelope.type != SIGNS_TYPE or not isinstance(cmd.data, SignPlaylist):
            raise ProtocolError("type_mismatch", f"{cmd.envelope.type} on the signs topic")
        playlist = cmd.data
        if self.playlist is not None and playlist.version <= self.playlist.version:
            log.info("sign playlist v%d ignored: v%d is newer", playlist.version, self.playlist.version)
        else:
            await asyncio.to_thread(self._save, payload)
            self.set_playlist(playlist)
            log.info("sign playlist v%d: %d entries", playlist.version, len(playlist.entries))
        await reply(cmd.envelope.id)

    def _save(self, payload: bytes) -> None:
        tmp = self.data_dir / f".{PLAYLIST_FILE}.tmp"
        tmp.write_bytes(payload)
        os.replace(tmp, self.data_dir / PLAYLIST_FILE)

    def set_playlist(self, playlist: SignPlaylist) -> None:
        """Replaces the playlist; every sign looks again at once."""
        self.playlist = playlist
        self._wake_all()
        self.changed_threadsafe()

    def set_playing(self, playing: NowPlaying | None) -> None:
        """The speaker's now-playing changed (or not: repeated calls with the same play do nothing)."""
        old = self.playing
        if (old is None) == (playing is None) and (old is None or playing is None or old.play_id == playing.play_id):
            return
        self.playing = playing
        if any(w.settings.show_announcements for w in self.workers):
            self._wake_all()

    def _wake_all(self) -> None:
        for worker in self.workers:
            worker.wake.set()

    # output ------------------------------------------------------------------------------------------------

    def states(self) -> list[SignNow]:
        """What every sign shows now (for the state topic)."""
        return [w.now for w in self.workers]

    @property
    def playlist_version(self) -> int | None:
        """Version of the playlist being shown."""
        return None if self.playlist is None else self.playlist.version

    def emit_threadsafe(self, msg_type: str, data: BaseModel) -> None:
        """Queues an event from a sign thread."""
        if self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._emit(msg_type, data), self._loop)

    def changed_threadsafe(self) -> None:
        """Marks the agent's state dirty from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_change)

    def interruptible_sleep(self, wake: threading.Event, seconds: float) -> None:
        """Sleeps unless the runner stops (a playlist change does not cut a back-off short)."""
        self.stopping.wait(seconds)
