"""Which registered signs a sign item's targets reach: all, the signs of some zones' or agents' agents, or
named signs (only on enabled agents), always within the item's own ward.

A board belongs to its agent's ward; an item reaches only boards of its ward ("all" is every board of
that ward), so each agent's playlist holds only its own ward's items.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.signs.errors import SignInputError
from controller.signs.inputs import SignTargets
from controller.storage.models import FIRST_WARD, Device, Sign, Zone


def check_targets(session: Session, targets: SignTargets, ward_id: str = FIRST_WARD) -> None:
    """Refuses targets naming a sign, zone or agent that is not in ``ward_id`` (``SignInputError`` on ``targets``,
    worded as for one that does not exist, so nothing about another ward shows)."""
    if targets.signs:
        known = set(session.scalars(select(Sign.id).join(Device, Device.id == Sign.agent_id)
                                    .where(Device.ward_id == ward_id, Sign.id.in_(targets.signs))))
        missing = [s for s in targets.signs if s not in known]
        if missing:
            raise SignInputError("targets", f"unknown signs: {', '.join(missing)}")
    if targets.zones:
        known = set(session.scalars(select(Zone.id).where(Zone.ward_id == ward_id, Zone.id.in_(targets.zones))))
        for zones in session.scalars(select(Device.zones).where(Device.ward_id == ward_id)):
            known.update(zones)
        missing = [z for z in targets.zones if z not in known]
        if missing:
            raise SignInputError("targets", f"unknown zones: {', '.join(missing)}")
    if targets.agents:
        agents = set(session.scalars(select(Device.id).where(Device.ward_id == ward_id,
                                                             Device.id.in_(targets.agents))))
        missing = [a for a in targets.agents if a not in agents]
        if missing:
            raise SignInputError("targets", f"unknown agents: {', '.join(missing)}")


def agents_of(session: Session, targets: SignTargets, ward_id: str = FIRST_WARD) -> set[str]:
    """The agents whose signs the targets reach."""
    return {s.agent_id for s in signs_for(session, targets, ward_id)}


def signs_for(session: Session, targets: SignTargets, ward_id: str = FIRST_WARD) -> list[Sign]:
    """The registered signs of ``ward_id`` an item's targets reach (on enabled agents)."""
    rows = session.execute(select(Sign, Device.zones).join(Device, Device.id == Sign.agent_id)
                           .where(Device.enabled.is_(True), Device.ward_id == ward_id).order_by(Sign.id)).all()
    out = []
    for sign, zones in rows:
        if targets.all or sign.id in targets.signs or sign.agent_id in targets.agents \
                or set(zones) & set(targets.zones):
            out.append(sign)
    return out
