"""Which agents an item's targets name, given the fleet as ``agent id → its zones``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schedules.errors import ScheduleError
from schedules.model import Targets


@dataclass(frozen=True, slots=True)
class Resolved:
    """The known agents a ``Targets`` reaches, and the names it gives that the fleet does not have."""

    agents: frozenset[str]
    unknown_agents: tuple[str, ...]
    unknown_zones: tuple[str, ...]

    @property
    def unknown(self) -> str:
        """``"agents a, b; zones z"`` for messages, ``""`` when everything is known."""
        parts = []
        if self.unknown_agents:
            parts.append("agents " + ", ".join(self.unknown_agents))
        if self.unknown_zones:
            parts.append("zones " + ", ".join(self.unknown_zones))
        return "; ".join(parts)


def split_targets(
    targets: Targets, agents: Mapping[str, Sequence[str]], known_zones: frozenset[str] | None = None
) -> Resolved:
    """Resolve ``targets`` without failing: the agents reached, plus the unknown names.

    A zone is known when some agent is in it, or when it is in ``known_zones`` (a zone with a policy but
    no speakers yet reaches nobody and is not an error).
    """
    if targets.all:
        return Resolved(frozenset(agents), (), ())
    wanted = set(targets.zones)
    chosen = {agent for agent, zones in agents.items() if not wanted.isdisjoint(zones)}
    seen_zones = {zone for zones in agents.values() for zone in zones if zone in wanted}
    unknown_zones = sorted(wanted - seen_zones - (known_zones or frozenset()))
    unknown_agents = sorted({agent for agent in targets.agents if agent not in agents})
    chosen.update(agent for agent in targets.agents if agent in agents)
    return Resolved(frozenset(chosen), tuple(unknown_agents), tuple(unknown_zones))


def resolve_targets(targets: Targets, agents: Mapping[str, Sequence[str]]) -> list[str]:
    """The ids (sorted) of the agents ``targets`` reaches; ``agents`` maps agent id → its zones.

    Raises ``ScheduleError(field="targets")`` naming every unknown agent and zone (a zone is known when
    at least one agent is in it).
    """
    resolved = split_targets(targets, agents)
    if resolved.unknown:
        raise ScheduleError("targets", f"unknown targets: {resolved.unknown}")
    return sorted(resolved.agents)
