"""Proof of play is believed only for a play the controller really gave that device.

A device's broker account may publish on its own event topics, so a stolen or buggy device can claim
any play it likes. A ``play.started``/``play.finished`` is stored only if its play id is one of:

- a delivery to that device (its own command, or a zone/everyone command it was counted in): the
  play id is the command id, and ``deliveries`` is unique on (command_id, agent_id);
- an occurrence of a schedule window sent to that device, or a remote-operation tone it was sent:
  both recorded in ``given_plays`` (primary key (agent_id, play_id)) before they go out;
- a live session it was aimed at (play id ``live-{session id}``; ``live_sessions.targets``).

Each check is one primary-key or unique-index lookup. Anything else is acknowledged (a real agent
with a bug must not resend it forever), not stored, and counted on the device (``suspicious_plays``,
visible in ``/api/v1/devices``); a ``play.suspicious`` device event and a log line say so at most
once a minute per device, so the record of a flood cannot itself become one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from controller.storage.models import Delivery, Device, DeviceEvent, GivenPlay, LiveSession, utcnow
from devices.protocol import Envelope, new_message_id, now_ms

log = logging.getLogger(__name__)

#: The event types that claim a play.
PLAY_EVENTS: Final = frozenset({"play.started", "play.finished"})
#: At most one ``play.suspicious`` event row and one log line per device this often.
SUMMARY_EVERY_S: Final = 60.0
#: Play ids kept as examples in a summary.
SAMPLE: Final = 5
#: Given plays are kept this long after their start: an agent reports a play when its link allows,
#: which after a long outage may be weeks later; past this its report counts as suspicious.
GIVEN_RETENTION_MS: Final = 90 * 24 * 3600 * 1000
_LIVE_PREFIX: Final = "live-"


def give_plays(session: Session, agent_id: str, plays: Iterable[tuple[str, int]], source: str) -> int:
    """Records that ``agent_id`` was given these (play id, start ms); plays already recorded stay as
    they are. Returns how many were new. Call it in the transaction that sends them."""
    wanted = dict(plays)
    if not wanted:
        return 0
    known: set[str] = set()
    ids = list(wanted)
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        known.update(session.scalars(select(GivenPlay.play_id).where(GivenPlay.agent_id == agent_id,
                                                                    GivenPlay.play_id.in_(ids[start:start + 500]))))
    new = [GivenPlay(agent_id=agent_id, play_id=pid, source=source, start_ms=start_ms)
           for pid, start_ms in wanted.items() if pid not in known]
    session.add_all(new)
    return len(new)


def prune_given(session: Session, now: int | None = None) -> int:
    """Forgets given plays that started more than :data:`GIVEN_RETENTION_MS` ago; returns how many."""
    cutoff = (now_ms() if now is None else now) - GIVEN_RETENTION_MS
    result = session.execute(delete(GivenPlay).where(GivenPlay.start_ms < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def was_given(session: Session, agent_id: str, play_id: str) -> bool:
    """True if the controller gave ``agent_id`` the play ``play_id`` (see the module's docstring)."""
    if play_id.startswith(_LIVE_PREFIX):
        live = session.get(LiveSession, play_id[len(_LIVE_PREFIX):])
        if live is not None and agent_id in live.targets:
            return True
    # Command ids (deliveries, tones) have no dash; schedule play ids always do: the likelier table first.
    tables = (_given, _delivered) if "-" in play_id else (_delivered, _given)
    return any(check(session, agent_id, play_id) for check in tables)


def _given(session: Session, agent_id: str, play_id: str) -> bool:
    return session.get(GivenPlay, (agent_id, play_id)) is not None


def _delivered(session: Session, agent_id: str, play_id: str) -> bool:
    return session.scalar(select(Delivery.id).where(Delivery.command_id == play_id,
                                                    Delivery.agent_id == agent_id).limit(1)) is not None


@dataclass
class _Summary:
    """What has not been written down yet for one device."""

    last_at: float | None = None
    count: int = 0
    sample: list[str] = field(default_factory=list)


class PlayGuard:
    """Admits proof of play for given plays; counts and summarises the rest. Safe from any thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._summaries: dict[str, _Summary] = {}

    def admit(self, session: Session, device: Device, env: Envelope, play_id: str) -> bool:
        """True if the play may be recorded; otherwise counts it on ``device`` (in ``session``) and
        returns False."""
        if was_given(session, device.id, play_id):
            return True
        device.suspicious_plays = (device.suspicious_plays or 0) + 1
        device.suspicious_at = utcnow()
        with self._lock:
            summary = self._summaries.setdefault(device.id, _Summary())
            summary.count += 1
            if len(summary.sample) < SAMPLE:
                summary.sample.append(play_id)
            now = self._clock()
            if summary.last_at is not None and now - summary.last_at < SUMMARY_EVERY_S:
                return False
            count, sample = summary.count, summary.sample
            summary.last_at, summary.count, summary.sample = now, 0, []
        log.warning("agent %s claims %d play(s) it was never given (e.g. %s in %s %s); not stored, "
                    "%d so far", device.id, count, play_id, env.type, env.id, device.suspicious_plays)
        session.add(DeviceEvent(id=f"suspicious-{new_message_id()}", agent_id=device.id, type="play.suspicious",
                                ts_ms=now_ms(), data={"count": count, "total": device.suspicious_plays,
                                                      "play_ids": sample, "event_type": env.type,
                                                      "event_id": env.id}))
        return False
