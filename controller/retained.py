"""Signed per-agent documents kept retained on the broker: schedule windows and sign playlists.

Both are built, stored with a version, then published retained; the stored row is marked published
only if its version is still the one sent, so a newer build is never mistaken for delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from controller.db import Database
from controller.models import AgentSchedule, AgentSignPlaylist
from devices.mqtt_link import MqttLink, NotConnected

log = logging.getLogger(__name__)

#: The tables that hold a versioned document per agent.
_Row = TypeVar("_Row", AgentSchedule, AgentSignPlaylist)


@dataclass(frozen=True, slots=True)
class RetainedDoc:
    """One agent's stored document, ready to publish."""

    agent_id: str
    version: int
    topic: str
    payload: bytes


async def publish_retained(link: MqttLink, db: Database, model: type[_Row],
                           docs: Sequence[RetainedDoc], what: str) -> None:
    """Publishes ``docs`` retained, waiting out broker outages, then marks their rows published."""
    for doc in docs:
        while True:
            await link.connected.wait()
            try:
                await link.publish(doc.topic, doc.payload, qos=1, retain=True)
                break
            except NotConnected:
                await asyncio.sleep(0.5)
    if docs:
        await asyncio.to_thread(_mark_published, db, model, [(d.agent_id, d.version) for d in docs])
        log.info("published %s to %d agent(s)", what, len(docs))


def _mark_published(db: Database, model: type[_Row],
                    done: list[tuple[str, int]]) -> None:
    with db.session() as session:
        for agent_id, version in done:
            row = session.get(model, agent_id)
            if row is not None and row.version == version:
                row.published = True
