"""Where a member of staff may act: the wards their roles cover.

A role is granted on a unit and covers that unit and every ward under it; ``admin`` on a unit covers every
role there. Services ask :func:`wards_of` for the wards a user may see (any role) or act in (the roles an
action needs) and filter on ``ward_id``. A row outside every ward the user can see is answered exactly as a
row that does not exist (:class:`NotInReach`, 404), so nothing about another ward leaks; a row the user can
see but not change for lack of the role there is refused (:class:`OutsideRole`, 403).

The tree is read from the database on each request (it is a few hundred rows, and every replica then
agrees at once when it changes); it is kept in the session's ``info`` for the rest of that request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.storage.models import WARD_KINDS, Unit, User

_TREE_KEY = "lp_unit_tree"


class NotInReach(LookupError):
    """Nothing of that name in the wards the caller can see (→ 404, worded like any unknown id)."""


class OutsideRole(PermissionError):
    """The caller sees the ward but does not hold the role the action needs there (→ 403)."""


class WardNeeded(ValueError):
    """The caller acts in several wards and did not say which one a new row belongs to (→ 422)."""


@dataclass(frozen=True, slots=True)
class UnitTree:
    """Parents and kinds of every unit: enough to say which wards lie under a unit."""

    parent: dict[str, str | None]
    kind: dict[str, str]
    name: dict[str, str]

    def wards_under(self, unit_id: str) -> frozenset[str]:
        """Every ward at or below ``unit_id`` (a ward is under itself)."""
        return frozenset(w for w in self.wards() if unit_id in self.path(w))

    def wards(self) -> list[str]:
        """Every ward, in id order."""
        return sorted(u for u, kind in self.kind.items() if kind in WARD_KINDS)

    def path(self, unit_id: str) -> list[str]:
        """The unit and its ancestors up to the root (a cycle, which nothing writes, stops the walk)."""
        seen: list[str] = []
        current: str | None = unit_id
        while current is not None and current not in seen:
            seen.append(current)
            current = self.parent.get(current)
        return seen


def unit_tree(session: Session) -> UnitTree:
    """The unit tree as this session sees it (read once per session)."""
    cached = session.info.get(_TREE_KEY)
    if isinstance(cached, UnitTree):
        return cached
    rows = session.execute(select(Unit.id, Unit.parent_id, Unit.kind, Unit.name)).all()
    tree = UnitTree({r.id: r.parent_id for r in rows}, {r.id: r.kind for r in rows}, {r.id: r.name for r in rows})
    session.info[_TREE_KEY] = tree
    return tree


def forget_tree(session: Session) -> None:
    """Drops the session's copy of the tree after a unit is added, moved or removed in it."""
    session.info.pop(_TREE_KEY, None)


def wards_of(session: Session, user: User, roles: Iterable[str] | None = None) -> frozenset[str]:
    """The wards where ``user`` holds any of ``roles`` (``admin`` counts as every role); with no roles given,
    the wards where they hold any role at all: what they may see."""
    wanted = None if roles is None else frozenset(roles) | {"admin"}
    tree = unit_tree(session)
    wards: set[str] = set()
    for grant in user.grants:
        if wanted is None or grant.role in wanted:
            wards |= tree.wards_under(grant.unit_id)
    return frozenset(wards)


def units_of(session: Session, user: User, roles: Iterable[str] | None = None) -> frozenset[str]:
    """The units (upper level and wards) the grants of ``user`` name or lie under, for those roles."""
    wanted = None if roles is None else frozenset(roles) | {"admin"}
    tree = unit_tree(session)
    granted = {g.unit_id for g in user.grants if wanted is None or g.role in wanted}
    return frozenset(u for u in tree.parent if granted & set(tree.path(u)))


def holds_upper(session: Session, user: User, roles: Iterable[str] | None = None) -> bool:
    """True when one of the user's grants (for those roles) is on a unit above the wards: city staff."""
    wanted = None if roles is None else frozenset(roles) | {"admin"}
    tree = unit_tree(session)
    return any(tree.kind.get(g.unit_id) not in WARD_KINDS for g in user.grants
               if wanted is None or g.role in wanted)


def check_ward(session: Session, user: User, ward_id: str, roles: Iterable[str] | None, what: str) -> None:
    """Passes when ``user`` may act on a row of ``ward_id`` with one of ``roles``.

    :class:`NotInReach` (with ``what`` as the message, the same words an unknown id gets) when the ward is
    not one they can see at all; :class:`OutsideRole` when they see it but lack the role there.
    """
    if ward_id not in wards_of(session, user):
        raise NotInReach(what)
    if roles is not None and ward_id not in wards_of(session, user, roles):
        raise OutsideRole(f"needs one of the roles {', '.join(sorted(set(roles) | {'admin'}))} "
                          f"in ward {ward_id}")


def ward_for_new(session: Session, user: User, requested: str | None, roles: Iterable[str]) -> str:
    """The ward a new row goes to: the one named, or the caller's only ward for these roles.

    A named ward the caller cannot see is :class:`NotInReach` (as if it did not exist); one they see without
    the role is :class:`OutsideRole`; no ward named while they act in several is :class:`WardNeeded`.
    """
    roles = list(roles)
    allowed = wards_of(session, user, roles)
    if requested is not None:
        check_ward(session, user, requested, roles, f"ward {requested} not found")
        return requested
    if len(allowed) == 1:
        return next(iter(allowed))
    if not allowed:
        raise OutsideRole(f"needs one of the roles {', '.join(sorted(set(roles) | {'admin'}))} in some ward")
    raise WardNeeded(f"you act in {len(allowed)} wards: say which ward this belongs to (ward: one of "
                     f"{', '.join(sorted(allowed)[:20])}{'…' if len(allowed) > 20 else ''})")
