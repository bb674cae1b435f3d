"""Which registered signs a sign item's targets reach: all, the signs of some zones' or agents' agents, or
named signs (only on enabled agents).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.signs.errors import SignInputError
from controller.signs.inputs import SignTargets
from controller.storage.models import Device, Sign


def check_targets(session: Session, targets: SignTargets) -> None:
    """Refuses targets naming a sign or an agent that does not exist (``SignInputError`` on ``targets``)."""
    known = {s.id for s in session.scalars(select(Sign))}
    missing = [s for s in targets.signs if s not in known]
    if missing:
        raise SignInputError("targets", f"unknown signs: {', '.join(missing)}")
    agents = set(session.scalars(select(Device.id)))
    missing = [a for a in targets.agents if a not in agents]
    if missing:
        raise SignInputError("targets", f"unknown agents: {', '.join(missing)}")


def agents_of(session: Session, targets: SignTargets) -> set[str]:
    """The agents whose signs the targets reach."""
    return {s.agent_id for s in signs_for(session, targets)}


def signs_for(session: Session, targets: SignTargets) -> list[Sign]:
    """The registered signs an item's targets reach (on enabled agents)."""
    devices = {d.id: d for d in session.scalars(select(Device).where(Device.enabled.is_(True)))}
    out = []
    for sign in session.scalars(select(Sign).order_by(Sign.id)):
        device = devices.get(sign.agent_id)
        if device is None:
            continue
        if targets.all or sign.id in targets.signs or sign.agent_id in targets.agents \
                or set(device.zones) & set(targets.zones):
            out.append(sign)
    return out
