"""The speaker's commands: ``speaker.play`` (kept on disk until it has played), ``speaker.stop``, live sessions.

Each handler gets a command the agent has already verified and answers it with one reply. An accepted
``speaker.play`` is stored before it is answered, so it plays even if the agent restarts before its
start time; a live session is now or never and is not kept.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from devices.protocol import (
    AgentError,
    MediaSegment,
    ProtocolError,
    RelaySegment,
    SpeakerLive,
    SpeakerLiveEnd,
    SpeakerPlay,
    SpeakerStop,
    VerifiedCommand,
    now_ms,
    parse_envelope,
    parse_model,
)
from edge_agent.hooks import CommandHandler, EmitFn, InThread
from edge_agent.media_cache import MediaError
from edge_agent.play_job import PlayJob
from edge_agent.speaker import Speaker
from edge_agent.store import AgentStore

log = logging.getLogger(__name__)

#: Answers a command: its id, and None for ``ok`` or the error.
ReplyFn = Callable[[str, str | None], Awaitable[None]]


class SpeakerCommands:
    """The ``speaker.*`` handlers of one agent, and the plays they accepted before a restart."""

    def __init__(self, speaker: Speaker, store: AgentStore, put_media: Callable[[str, bytes], object], *,
                 in_thread: InThread, emit: EmitFn, reply: ReplyFn) -> None:
        self._speaker = speaker
        self._store = store
        #: Puts a recording into the media cache (blocks).
        self._put_media = put_media
        self._in_thread = in_thread
        self._emit = emit
        self._reply = reply

    def handlers(self) -> dict[str, CommandHandler]:
        """Command type → handler, merged into the agent's table."""
        return {
            "speaker.play": self._play,
            "speaker.stop": self._stop,
            "speaker.live": self._live,
            "speaker.live_end": self._live_end,
        }

    async def restore(self) -> None:
        """Re-arms plays accepted before a restart (their signatures were checked when they came)."""
        for raw in await self._in_thread(self._store.pending):
            try:
                env = parse_envelope(raw)
                order = parse_model(SpeakerPlay, env.data)
            except ProtocolError as exc:
                log.error("dropping unreadable stored play: %s", exc)
                continue
            if (env.exp or 0) <= now_ms():
                await self._in_thread(partial(self._store.remove_pending, env.id))
                continue
            log.info("restoring accepted play %s starting at %d", env.id, order.start_at)
            self._submit(VerifiedCommand(env, order))

    async def play_ended(self, play_id: str) -> None:
        """A play ended: an accepted command for it is no longer kept for after a restart."""
        await self._in_thread(partial(self._store.remove_pending, play_id))

    async def _play(self, cmd: VerifiedCommand) -> None:
        order = cmd.data_as(SpeakerPlay)
        if cmd.attachment is not None:
            # An alarm brings its audio along: into the cache now, so nothing is downloaded before it plays.
            try:
                await self._in_thread(partial(self._put_media, order.sha256, cmd.attachment))
            except MediaError as exc:
                log.error("command %s refused: %s", cmd.envelope.id, exc)
                await self._emit("error", AgentError(code=exc.code, message=str(exc)[:1000], ref=cmd.envelope.id,
                                                     announcement_id=order.announcement_id))
                await self._reply(cmd.envelope.id, f"media_failed: {exc}"[:300])
                return
        await self._in_thread(partial(self._store.add_pending, cmd.envelope.id, cmd.envelope.to_bytes(),
                                      order.start_at))
        self._submit(cmd)
        await self._reply(cmd.envelope.id, None)

    def _submit(self, cmd: VerifiedCommand) -> None:
        order = cmd.data_as(SpeakerPlay)
        segment = MediaSegment(sha256=order.sha256, size=order.size, duration_ms=order.duration_ms, mime=order.mime,
                               title=order.title)
        job = PlayJob(play_id=cmd.envelope.id, priority=order.priority, start_at=order.start_at,
                      latest_start=cmd.envelope.exp or 0, segments=[segment], volume=order.volume,
                      announcement_id=order.announcement_id, title=order.title, resumable=True)
        self._speaker.submit(job)

    async def _stop(self, cmd: VerifiedCommand) -> None:
        stopped = await self._speaker.stop(cmd.data_as(SpeakerStop).priority)
        log.info("stop command ended %d play(s)", stopped)
        await self._reply(cmd.envelope.id, None)

    async def _live(self, cmd: VerifiedCommand) -> None:
        # A live session is now or never: it is not kept for after a restart, and it goes through the
        # speaker like a relay so pre-emption and proof of play follow the same rules.
        order = cmd.data_as(SpeakerLive)
        now = now_ms()
        url = f"{order.url}?token={order.token}"
        job = PlayJob(play_id=f"live-{order.session_id}", priority=order.priority, start_at=now,
                      latest_start=now + order.give_up_ms,
                      segments=[RelaySegment(url=url, duration_ms=order.max_duration_ms, title=order.title)],
                      volume=order.volume, title=order.title, give_up_ms=order.give_up_ms)
        if not self._speaker.submit(job):
            await self._reply(cmd.envelope.id, f"live session {order.session_id} already playing")
            return
        await self._reply(cmd.envelope.id, None)

    async def _live_end(self, cmd: VerifiedCommand) -> None:
        session_id = cmd.data_as(SpeakerLiveEnd).session_id
        ended = await self._speaker.end(f"live-{session_id}")
        log.info("live session %s ended (%s)", session_id, "stopped" if ended else "was not playing")
        await self._reply(cmd.envelope.id, None)
