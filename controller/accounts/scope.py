"""Zone scope: staff limited to some zones reach only those zones' speakers and signs.

Users with no zones (and admins) reach every target. Services check it where content is aimed, so the
API and the console refuse the same requests with the same words.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from controller.storage.models import Device, User


class OutOfScope(PermissionError):
    """The user aims beyond their zones (→ 403, with this message)."""


def _scope(user: User) -> set[str]:
    """The zones a user is limited to; empty for users (and admins) who reach everything."""
    scope = set(user.zones or ())
    return set() if "admin" in user.role_set else scope


def check_zone_scope(user: User, everyone: bool, zones: Iterable[str], agents: Iterable[str]) -> None:
    """:class:`OutOfScope` when a user limited to some zones aims beyond them (everyone, single agents,
    other zones, or nothing in particular)."""
    scope = _scope(user)
    if not scope:
        return
    zones, agents = list(zones), list(agents)
    outside = sorted(set(zones) - scope)
    if everyone or agents or outside or not zones:
        what = "every agent" if everyone else (f"agents {', '.join(agents)}" if agents
                                               else f"zones {', '.join(outside)}")
        raise OutOfScope(f"you may only reach your zones ({', '.join(sorted(scope))}), not {what}")


def check_target_names(user: User, names: Iterable[str]) -> None:
    """:class:`OutOfScope` for stored-style targets (``"all"``, ``"zone:{id}"``, agent ids) beyond the user's zones."""
    names = list(names)
    check_zone_scope(user, "all" in names, [n.removeprefix("zone:") for n in names if n.startswith("zone:")],
                     [n for n in names if n != "all" and not n.startswith("zone:")])


def check_agents_in_scope(session: Session, user: User, agents: Iterable[str]) -> None:
    """:class:`OutOfScope` when a user limited to some zones names an agent in none of them.

    An agent is in scope if it is in one of the user's zones — the same agents a zone reaches (a zone
    reaches every agent that lists it). Unknown agents are left to the caller to refuse.
    """
    scope = _scope(user)
    if not scope:
        return
    outside = []
    for agent_id in agents:
        device = session.get(Device, agent_id)
        if device is not None and not scope & set(device.zones or ()):
            outside.append(agent_id)
    if outside:
        raise OutOfScope(f"you may only reach your zones ({', '.join(sorted(scope))}), "
                         f"not agents {', '.join(sorted(outside))}")
