"""What the upper level (a city or province) sends to its wards: which wards, whose targets where, and
whether a ward holds the item for its own approval.

A city item is one parent row (:class:`~controller.storage.models.CityBroadcast`) and one ordinary row per
chosen ward, so every rule a ward's own items follow applies to the city's too. Only staff holding the role on
an upper unit send them; the wards they name must lie under a unit where they hold it. A ward outside that
reach, or one that does not exist, is refused with 422 naming it: a city user naming a ward names a unit of
their own tree, not another ward's row, so there is nothing to hide (unlike the 404 a ward's staff get for
another ward's rows).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts.reach import OutsideRole, unit_tree
from controller.schedule.zones import zone_wards
from controller.storage.models import UPPER_KINDS, CityBroadcast, Device, Unit, User
from devices.protocol import Priority

#: ``"all"``: every ward under the units where the sender holds the role.
WardChoice = Sequence[str] | Literal["all"]


class CityInputInvalid(ValueError):
    """A city item's wards or targets cannot be accepted (→ 422, ``field`` names the body field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ChosenWards:
    """The wards a city item goes to, and the upper unit it comes from (the lowest one over all of them)."""

    unit: str
    wards: list[str]
    all_wards: bool


def upper_units(session: Session, user: User, roles: Iterable[str]) -> list[str]:
    """The city or province units where ``user`` holds one of ``roles`` (admin counts as every role)."""
    wanted = set(roles) | {"admin"}
    tree = unit_tree(session)
    return sorted({g.unit_id for g in user.grants if g.role in wanted and tree.kind.get(g.unit_id) in UPPER_KINDS})


def city_reach(session: Session, user: User, roles: Iterable[str]) -> list[str]:
    """Every ward a city item of ``user`` may go to: the wards under their upper units, in id order."""
    tree = unit_tree(session)
    reach: set[str] = set()
    for unit in upper_units(session, user, roles):
        reach |= tree.wards_under(unit)
    return sorted(reach)


def choose_wards(session: Session, user: User, wards: WardChoice, roles: Iterable[str]) -> ChosenWards:
    """The wards named (or all of the sender's), checked.

    :class:`~controller.accounts.reach.OutsideRole` when the sender holds none of ``roles`` above the wards;
    :class:`CityInputInvalid` naming every ward that is unknown or outside their reach.
    """
    roles = list(roles)
    units = upper_units(session, user, roles)
    if not units:
        raise OutsideRole(f"items for several wards are sent by staff holding one of the roles "
                          f"{', '.join(sorted(set(roles) | {'admin'}))} on a city or province")
    reach = city_reach(session, user, roles)
    if wards == "all":
        chosen, all_wards = reach, True
        if not chosen:
            raise CityInputInvalid("wards", "there are no wards under your units yet")
    else:
        chosen, all_wards = list(dict.fromkeys(wards)), False
        if not chosen:
            raise CityInputInvalid("wards", 'wards is empty: name wards, or "all"')
        unknown = [w for w in chosen if w not in reach]
        if unknown:
            raise CityInputInvalid("wards", f"unknown ward(s): {', '.join(unknown)}")
    return ChosenWards(_common_unit(session, chosen, units), chosen, all_wards)


def _common_unit(session: Session, wards: Collection[str], units: Collection[str]) -> str:
    """The lowest unit above every ward in ``wards`` that is, or lies under, one of the sender's ``units``."""
    tree = unit_tree(session)
    first = next(iter(wards))
    for candidate in tree.path(first)[1:]:
        if set(wards) <= tree.wards_under(candidate) and set(tree.path(candidate)) & set(units):
            return candidate
    # The sender's units together cover the wards, but none alone does: the first ancestor over them all.
    for candidate in tree.path(first)[1:]:
        if set(wards) <= tree.wards_under(candidate):
            return candidate
    return sorted(units)[0]


def split_targets(session: Session, wards: Sequence[str], all_: bool, zones: Sequence[str],
                  agents: Sequence[str]) -> dict[str, tuple[bool, list[str], list[str]]]:
    """Each chosen ward's part of the targets: ``(all, zones, agents)`` of that ward.

    ``all`` is every agent of each ward. Zones and agents named must each lie in one of the chosen wards, and
    each ward must be given some of them: :class:`CityInputInvalid` names what is not.
    """
    if all_:
        return {w: (True, [], []) for w in wards}
    chosen = set(wards)
    zone_home = zone_wards(session, zones)
    agent_home = dict(session.execute(select(Device.id, Device.ward_id).where(Device.id.in_(list(agents)))).all())
    outside = [f"zone {z}" for z in zones if zone_home.get(z) not in chosen]
    outside += [f"agent {a}" for a in agents if agent_home.get(a) not in chosen]
    if outside:
        raise CityInputInvalid("targets", f"not in the chosen wards (or unknown): {', '.join(outside)}")
    parts: dict[str, tuple[bool, list[str], list[str]]] = {}
    for ward in wards:
        ward_zones = [z for z in zones if zone_home[z] == ward]
        ward_agents = [a for a in agents if agent_home[a] == ward]
        if ward_zones or ward_agents:
            parts[ward] = (False, ward_zones, ward_agents)
    empty = [w for w in wards if w not in parts]
    if empty:
        raise CityInputInvalid("targets", f"the targets name nothing in ward(s) {', '.join(empty)}: name its zones "
                                          f"or speakers, or send to all")
    return parts


def held_for_ward(session: Session, ward: str, priority: Priority) -> bool:
    """Whether a city item of ``priority`` waits for ``ward``'s own approver: only normal priority, and only
    in a ward that asked for it. An emergency always goes straight through."""
    if priority is not Priority.NORMAL:
        return False
    return bool(session.scalar(select(Unit.approve_city_items).where(Unit.id == ward)))


def visible_parent(session: Session, user: User, parent_id: str, kind: str) -> CityBroadcast | None:
    """The city broadcast, if ``user`` holds a role on its unit or above it (a ward's staff never see the
    parent itself, only their ward's part of it)."""
    row = session.get(CityBroadcast, parent_id)
    if row is None or row.kind != kind:
        return None
    path = set(unit_tree(session).path(row.unit_id))
    return row if any(g.unit_id in path for g in user.grants) else None


def parent_units(session: Session, parent_ids: Iterable[str | None]) -> dict[str, str]:
    """parent id → the unit (city or province) it comes from, for showing where a ward's item came from."""
    wanted = {p for p in parent_ids if p}
    if not wanted:
        return {}
    return dict(session.execute(select(CityBroadcast.id, CityBroadcast.unit_id)
                                .where(CityBroadcast.id.in_(wanted))).all())


def targets_dict(part: tuple[bool, list[str], list[str]]) -> dict[str, Any]:
    """A ward's part of the targets as a schedule item stores them."""
    all_, zones, agents = part
    return {"all": True} if all_ else {"all": False, "zones": zones, "agents": agents}


def target_names(part: tuple[bool, list[str], list[str]]) -> list[str]:
    """A ward's part of the targets as an announcement stores them (``all``, ``zone:{id}``, agent ids)."""
    all_, zones, agents = part
    return ["all"] if all_ else [f"zone:{z}" for z in zones] + list(agents)


def names_to_parts(targets: Sequence[str]) -> tuple[bool, list[str], list[str]]:
    """Announcement target names (``all``, ``zone:{id}``, agent ids) as (all, zones, agents)."""
    unique = list(dict.fromkeys(targets))
    return ("all" in unique, [t.removeprefix("zone:") for t in unique if t.startswith("zone:")],
            [t for t in unique if t != "all" and not t.startswith("zone:")])


def unit_names(session: Session, ids: Mapping[str, str]) -> dict[str, str]:
    """parent id → the name of the unit it comes from."""
    names = unit_tree(session).name
    return {k: names.get(v, v) for k, v in ids.items()}
