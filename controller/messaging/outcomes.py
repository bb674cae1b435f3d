"""What settling an outbox row means for the records that wait on it, in the settling transaction.

* A command with deliveries (an announcement's ``speaker.play``, to one agent or to zones): once the
  broker has taken it, its group command and its deliveries still ``queued`` move to ``sent``; expired
  or refused, they move to ``expired`` / ``failed`` with the reason. Deliveries an agent already moved
  further (a group command's first zone got it before the link dropped) are left as they are.
* A retained document (a schedule window, a sign playlist): once published, its row is marked
  published only if its version is still the one sent (a newer build is never taken for delivered).

Everything else (operations, availabilities) waits on nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from controller.storage.models import AgentSchedule, AgentSignPlaylist, Delivery, GroupCommand
from devices.protocol import SCHEDULE_TYPE, SIGNS_TYPE

#: The table holding each retained document kind, keyed by agent id, with its version.
RETAINED_DOCS: Final[dict[str, type[AgentSchedule] | type[AgentSignPlaylist]]] = {
    SCHEDULE_TYPE: AgentSchedule, SIGNS_TYPE: AgentSignPlaylist,
}


@dataclass(frozen=True, slots=True)
class Settled:
    """The parts of a settled row its outcome needs."""

    kind: str
    target: str | None
    command_id: str | None
    ref: str | None


def published(session: Session, rows: Sequence[Settled]) -> None:
    """The broker took these: deliveries move to ``sent``, retained documents are marked published."""
    _move_commands(session, [r.command_id for r in rows if r.command_id and r.kind not in RETAINED_DOCS],
                   "sent", None)
    for row in rows:
        model = RETAINED_DOCS.get(row.kind)
        if model is None or row.target is None or row.ref is None or not row.ref.isdigit():
            continue
        session.execute(update(model).where(model.agent_id == row.target, model.version == int(row.ref))
                        .values(published=True).execution_options(synchronize_session=False))


def expired(session: Session, rows: Sequence[Settled]) -> None:
    """These can no longer be acted on: what waits on them is expired."""
    _move_commands(session, [r.command_id for r in rows if r.command_id], "expired",
                   "expired before the broker could take it")


def failed(session: Session, rows: Sequence[Settled], reason: str) -> None:
    """The broker refused these (not an outage: the message itself): what waits on them failed."""
    _move_commands(session, [r.command_id for r in rows if r.command_id], "failed", reason)


def _move_commands(session: Session, command_ids: list[str], status: str, error: str | None) -> None:
    if not command_ids:
        return
    # Only from "queued": a bulk move that never takes a delivery back, nor out of a state an agent reported.
    session.execute(update(GroupCommand).where(GroupCommand.id.in_(command_ids), GroupCommand.status == "queued")
                    .values(status=status))
    values: dict[str, str] = {"status": status}
    if error is not None:
        values["error"] = error[:1000]
    session.execute(update(Delivery).where(Delivery.command_id.in_(command_ids), Delivery.status == "queued")
                    .values(**values))
