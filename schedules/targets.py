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


class TargetIndex:
    """The fleet indexed by zone, to resolve many items' targets against it cheaply."""

    __slots__ = ("_agents", "_all", "_by_zone")

    def __init__(self, agents: Mapping[str, Sequence[str]]) -> None:
        self._agents = agents
        self._all = frozenset(agents)
        by_zone: dict[str, set[str]] = {}
        for agent, zones in agents.items():
            for zone in zones:
                by_zone.setdefault(zone, set()).add(agent)
        self._by_zone = by_zone

    def split(self, targets: Targets) -> Resolved:
        """Resolve ``targets`` without failing: the agents reached, plus the names the fleet lacks.

        A zone is known when at least one agent is in it.
        """
        if targets.all:
            return Resolved(self._all, (), ())
        chosen: set[str] = set()
        unknown_zones = set()
        for zone in targets.zones:
            members = self._by_zone.get(zone)
            if members is None:
                unknown_zones.add(zone)
            else:
                chosen |= members
        unknown_agents = {agent for agent in targets.agents if agent not in self._agents}
        chosen.update(agent for agent in targets.agents if agent in self._agents)
        return Resolved(frozenset(chosen), tuple(sorted(unknown_agents)), tuple(sorted(unknown_zones)))


def resolve_targets(targets: Targets, agents: Mapping[str, Sequence[str]]) -> list[str]:
    """The ids (sorted) of the agents ``targets`` reaches; ``agents`` maps agent id → its zones.

    Raises ``ScheduleError(field="targets")`` naming every unknown agent and zone (a zone is known when
    at least one agent is in it).
    """
    resolved = TargetIndex(agents).split(targets)
    if resolved.unknown:
        raise ScheduleError("targets", f"unknown targets: {resolved.unknown}")
    return sorted(resolved.agents)
