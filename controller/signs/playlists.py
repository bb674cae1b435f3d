"""Sign playlists: each agent with signs gets a signed, retained ``sign.playlist`` on
``lp/v1/agent/{id}/signs`` holding every entry for its signs in the next ``schedule_window_hours``.

It is rebuilt when content, items, signs or devices change (the composition root turns ``SignChanged``
into :meth:`PlaylistPublisher.request`) and every hour, and written only when it changed (or is getting
old): into the outbox in the same transaction as the stored playlist, published once that commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.messaging.outbox import Outbox, Prepared, RetainedDoc
from controller.messaging.rebuilds import RebuildRequests
from controller.settings import Settings
from controller.signs.inputs import PAGES, SignTargets
from controller.signs.recurrence import occurrences
from controller.signs.targets import signs_for
from controller.storage.engine import Database
from controller.storage.models import AgentSignPlaylist, Device, Sign, SignContent, SignItem, utcnow
from devices.protocol import (
    MAX_PAYLOAD_BYTES,
    MAX_WINDOW_PLAYS,
    Priority,
    SignPlaylist,
    SignPlaylistEntry,
    now_ms,
)

log = logging.getLogger(__name__)

RESEND_BEFORE_EXPIRY_MS: Final = 24 * 3_600_000


def playlist_entries(session: Session, tz: ZoneInfo, start_ms: int, end_ms: int,
                     agent_ids: set[str] | None,
                     wards: frozenset[str] | None = None) -> dict[str, list[SignPlaylistEntry]]:
    """Every entry of the active items between the two instants, by agent (None: every agent), in order.

    An item reaches only the boards of its own ward; ``wards`` limits the items read to those wards.
    """
    query = select(SignItem).where(SignItem.status == "active")
    contents_query = select(SignContent)
    if wards is not None:
        query = query.where(SignItem.ward_id.in_(wards))
        contents_query = contents_query.where(SignContent.ward_id.in_(wards))
    contents = {c.id: c for c in session.scalars(contents_query)}
    result: dict[str, list[SignPlaylistEntry]] = {}
    for item in session.scalars(query):
        try:
            targets = SignTargets.model_validate(item.targets)
            pages = PAGES.validate_python(contents[item.content_id].pages)
            starts = occurrences(datetime.fromisoformat(item.start_local), item.rrule,
                                 datetime.fromisoformat(item.until_local) if item.until_local else None,
                                 item.duration_ms, start_ms, end_ms, tz)
        except (KeyError, ValueError, ValidationError) as exc:  # one bad row must not blank every sign
            log.error("sign item %s skipped: %s", item.id, exc)
            continue
        if not starts:
            continue
        by_agent: dict[str, list[str]] = {}
        for sign in signs_for(session, targets, item.ward_id):
            if agent_ids is None or sign.agent_id in agent_ids:
                by_agent.setdefault(sign.agent_id, []).append(sign.name)
        for agent_id, names in by_agent.items():
            for start in starts:
                result.setdefault(agent_id, []).append(SignPlaylistEntry(
                    entry_id=f"{item.id}-{item.revision}-{start}", item_id=item.id,
                    title=item.title or contents[item.content_id].title, signs=sorted(names),
                    priority=Priority(item.priority), start_at=start, end_at=start + item.duration_ms,
                    pages=pages))
    for entries in result.values():
        entries.sort(key=lambda e: (e.start_at, e.entry_id))
    return result


class PlaylistPublisher:
    """Builds the agents' sign playlists when asked and hourly, and writes them to the outbox."""

    def __init__(self, settings: Settings, db: Database, outbox: Outbox) -> None:
        self.settings = settings
        self.db = db
        self.outbox = outbox
        self.requests = RebuildRequests("sign playlists")
        self.builds = 0

    def request(self, agent_ids: Iterable[str] | None) -> None:
        """Asks for these agents' playlists (None: all) to be rebuilt soon. Safe from any thread."""
        self.requests.request(agent_ids)

    async def run(self) -> None:
        """Writes the stored playlists again for the broker (it may have lost them), then rebuilds when asked
        and hourly."""
        self.requests.bind()
        try:
            await asyncio.to_thread(self.write_stored)
        except Exception:
            log.exception("writing the stored sign playlists again failed; new builds still go out")
        self.requests.request(None)
        await self.requests.serve(self.build, every_s=3600)

    def write_stored(self) -> int:
        """Writes every stored playlist to the outbox again (blocking); agents that hold one drop the repeat."""
        with self.db.session() as session:
            rows = session.execute(select(AgentSignPlaylist.version, AgentSignPlaylist.payload)).all()
            for version, payload in rows:
                self.outbox.send_stored(session, payload.encode(), ref=str(version))
            return len(rows)

    def build(self, agent_ids: set[str] | None) -> list[RetainedDoc]:
        """New playlists for these agents (None: all with signs) where they changed; stored, then returned."""
        self.builds += 1
        now = now_ms()
        end = now + self.settings.schedule_window_hours * 3_600_000
        outgoing: list[RetainedDoc] = []
        with self.db.session() as session:
            with_signs = set(session.scalars(select(Sign.agent_id)))
            stored_for = set(session.scalars(select(AgentSignPlaylist.agent_id)))
            enabled = set(session.scalars(select(Device.id).where(Device.enabled.is_(True))))
            # Agents whose signs were all removed still get an (empty) playlist, so their boards go dark.
            targets = (with_signs | stored_for) & enabled
            if agent_ids is not None:
                targets &= agent_ids
            entries = playlist_entries(session, self.settings.tz, now, end, targets)
            for agent_id in sorted(targets):
                mine = entries.get(agent_id, [])[:MAX_WINDOW_PLAYS]
                window_end = end if len(entries.get(agent_id, [])) <= MAX_WINDOW_PLAYS else mine[-1].start_at + 1
                digest = hashlib.sha256(json.dumps([e.model_dump(mode="json") for e in mine],
                                                   sort_keys=True).encode()).hexdigest()
                row = session.get(AgentSignPlaylist, agent_id)
                if row is not None and row.digest == digest and row.window_end_ms - now > RESEND_BEFORE_EXPIRY_MS:
                    continue
                version = (row.version if row is not None else 0) + 1
                prepared = self._sign(agent_id, version, now, window_end, mine)
                while len(prepared.payload) > MAX_PAYLOAD_BYTES and mine:
                    mine = mine[: len(mine) * 3 // 4]
                    window_end = mine[-1].start_at + 1 if mine else now + 1
                    prepared = self._sign(agent_id, version, now, window_end, mine)
                    log.warning("agent %s: sign playlist cut to %d entries to fit the broker's limit",
                                agent_id, len(mine))
                payload = prepared.payload
                if row is None:
                    row = AgentSignPlaylist(agent_id=agent_id)
                    session.add(row)
                row.version, row.digest, row.window_end_ms = version, digest, window_end
                row.payload, row.pushed_at, row.published = payload.decode(), utcnow(), False
                # Published once this transaction commits, and only then.
                self.outbox.write(session, prepared, ref=str(version))
                outgoing.append(RetainedDoc(agent_id, version, payload))
        return outgoing

    def _sign(self, agent_id: str, version: int, now: int, window_end: int,
              entries: list[SignPlaylistEntry]) -> Prepared:
        return self.outbox.prepare(SignPlaylist(version=version, window_start=now, window_end=window_end,
                                                entries=entries),
                                   agent_id, ttl_ms=max(60_000, window_end - now))
