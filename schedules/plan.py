"""Expansion: schedule items → the concrete plays each agent should make in a window of time.

The hot path of the controller (every agent's signed schedule window is cut from it), so it works in
this order to stay fast at 1,000 items × 1,000 agents:

1. agents are grouped by their exact set of zones — everything zone-dependent (quiet hours, volume,
   relay trimming) is decided once per (occurrence, zone set), never per agent;
2. each item's occurrences are computed once, whatever the number of agents;
3. all (item, occurrence) pairs are sorted once, globally, and emitted in that order, so every agent's
   list comes out already sorted (start, then priority high → low, then ``created_ms``, then id);
4. the inner per-agent loop only builds plain frozen dataclasses (through a faster constructor, see
   ``_new_play``); the segments tuple and the play id are shared by all agents of an occurrence.

Rules applied:

- targets naming agents or zones that the fleet does not have are skipped for those names only; the
  item is recorded once in ``Plan.blocked`` (``agent_id ""``, reason ``"unknown target …"``, at its first
  occurrence in the window, or the window start when it has none);
- **quiet hours**: a non-emergency play whose start falls in quiet hours of any of the agent's zones is
  not planned; it is recorded in ``Plan.blocked`` for that agent with the reason;
- **relay trimming**: a non-emergency programme containing a relay segment that starts outside quiet
  hours but would run into them ends at the first quiet-hours start (``end_ms`` trimmed; the agent stops
  the stream there). A programme of recordings only is never trimmed: a short announcement begun before
  the quiet hours is let finish rather than cut mid-sentence;
- **volume**: the lowest volume among the agent's zones' rules covering the play's local start time,
  or None (the agent's default); it applies at every priority level;
- emergency plays are never blocked nor trimmed.

Plays overlapping the window are listed, including one that began before it and is still running.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from devices.protocol import Priority
from schedules.errors import ScheduleError
from schedules.localtime import to_local
from schedules.model import ScheduleItem, Segment, Targets, ZonePolicy
from schedules.recurrence import occurrences
from schedules.targets import resolve_targets
from schedules.zone_rules import ZoneRules

__all__ = ["Blocked", "Plan", "PlannedPlay", "plan", "play_id", "resolve_targets"]

_PLAY_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class PlannedPlay:
    """One play of one occurrence of an item on one agent."""

    play_id: str
    agent_id: str
    item_id: str
    revision: int
    start_ms: int
    end_ms: int
    priority: Priority
    segments: tuple[Segment, ...]
    volume: int | None
    title: str


@dataclass(frozen=True, slots=True)
class Blocked:
    """An occurrence that will not play on an agent (``agent_id`` ``""``: the whole item), and why."""

    agent_id: str
    item_id: str
    start_ms: int
    reason: str


@dataclass
class Plan:
    """Plays per agent (every given agent present, each list sorted) and what was held back."""

    plays: dict[str, list[PlannedPlay]] = field(default_factory=dict)
    blocked: list[Blocked] = field(default_factory=list)


def play_id(item_id: str, revision: int, start_ms: int) -> str:
    """The play id of an item's occurrence: ``{item_id}-{revision}-{start_ms}``, ≤ 64 of ``[A-Za-z0-9_-]``.

    The same occurrence always gets the same id, so an agent recognises a play it already has.
    """
    value = f"{item_id}-{revision}-{start_ms}"
    if not _PLAY_ID_RE.match(value):
        raise ScheduleError("id", f"play id {value!r} is not 1–64 characters of A–Z, a–z, 0–9, _ and -")
    return value


# ------------------------------------------------------------------------------------------ internals

# A frozen dataclass's generated __init__ stores each field through ``object.__setattr__``, which costs
# about 2 µs for PlannedPlay's ten fields; a plan holds a million or more plays. ``_new_play`` builds
# the very same object by writing the slots through their descriptors, about twice as fast. The field
# list is checked here so that a field added to PlannedPlay cannot be forgotten below (and a test
# compares the two constructions).
_PLAY_FIELDS: Final = (
    "play_id", "agent_id", "item_id", "revision", "start_ms", "end_ms", "priority", "segments", "volume", "title"
)  # fmt: skip
if tuple(f.name for f in fields(PlannedPlay)) != _PLAY_FIELDS:
    raise RuntimeError("PlannedPlay's fields changed: update _new_play")
_slot = vars(PlannedPlay)
_alloc = object.__new__
_set_play_id, _set_agent_id, _set_item_id, _set_revision, _set_start_ms = (
    _slot[name].__set__ for name in _PLAY_FIELDS[:5]
)
_set_end_ms, _set_priority, _set_segments, _set_volume, _set_title = (_slot[name].__set__ for name in _PLAY_FIELDS[5:])


def _new_play(
    pid: str,
    agent: str,
    item_id: str,
    revision: int,
    start: int,
    end: int,
    priority: Priority,
    segments: tuple[Segment, ...],
    volume: int | None,
    title: str,
) -> PlannedPlay:
    """``PlannedPlay(...)`` with the same arguments, built faster (see above)."""
    play: PlannedPlay = _alloc(PlannedPlay)
    _set_play_id(play, pid)
    _set_agent_id(play, agent)
    _set_item_id(play, item_id)
    _set_revision(play, revision)
    _set_start_ms(play, start)
    _set_end_ms(play, end)
    _set_priority(play, priority)
    _set_segments(play, segments)
    _set_volume(play, volume)
    _set_title(play, title)
    return play


Appender = Callable[[PlannedPlay], None]
#: Agents of one zone set that an item reaches, each with the ``append`` of its play list.
Members = tuple[tuple[str, Appender], ...]


@dataclass(frozen=True, slots=True)
class _Group:
    zones: tuple[str, ...]
    rules: ZoneRules
    members: Members


@dataclass(frozen=True, slots=True)
class _Fleet:
    groups: tuple[_Group, ...]
    by_zone: dict[str, tuple[_Group, ...]]
    by_agent: dict[str, _Group]
    appenders: dict[str, Appender]
    known_zones: frozenset[str]

    def reach(self, targets: Targets) -> tuple[list[tuple[_Group, Members]], str]:
        """The (zone set, agents) pairs ``targets`` reaches, and a description of unknown names."""
        if targets.all:
            return [(group, group.members) for group in self.groups], ""
        whole: dict[tuple[str, ...], _Group] = {}
        for zone in targets.zones:
            for group in self.by_zone.get(zone, ()):
                whole[group.zones] = group
        # Named agents whose whole zone set is not already reached: only those agents of their group.
        some: dict[tuple[str, ...], tuple[_Group, set[str]]] = {}
        for agent in targets.agents:
            home = self.by_agent.get(agent)
            if home is not None and home.zones not in whole:
                some.setdefault(home.zones, (home, set()))[1].add(agent)
        reached = [(group, group.members) for group in whole.values()]
        for group, agents in some.values():
            reached.append((group, tuple((a, self.appenders[a]) for a in sorted(agents))))
        reached.sort(key=lambda pair: pair[0].zones)
        unknown_agents = sorted({a for a in targets.agents if a not in self.by_agent})
        unknown_zones = sorted({z for z in targets.zones if z not in self.known_zones})
        parts = (["agents " + ", ".join(unknown_agents)] if unknown_agents else []) + (
            ["zones " + ", ".join(unknown_zones)] if unknown_zones else []
        )
        return reached, "; ".join(parts)


def _fleet(
    agents: Mapping[str, Sequence[str]], policies: Mapping[str, ZonePolicy], plays: dict[str, list[PlannedPlay]]
) -> _Fleet:
    appenders: dict[str, Appender] = {agent: plays[agent].append for agent in plays}
    by_zones: dict[tuple[str, ...], list[str]] = {}
    for agent in sorted(agents):
        by_zones.setdefault(tuple(sorted(set(agents[agent]))), []).append(agent)
    groups = tuple(
        _Group(zones, ZoneRules(zones, policies), tuple((a, appenders[a]) for a in members))
        for zones, members in sorted(by_zones.items())
    )
    by_zone: dict[str, list[_Group]] = {}
    for group in groups:
        for zone in group.zones:
            by_zone.setdefault(zone, []).append(group)
    by_agent = {agent: group for group in groups for agent, _ in group.members}
    known = frozenset(by_zone) | frozenset(policies)
    return _Fleet(groups, {z: tuple(g) for z, g in by_zone.items()}, by_agent, appenders, known)


@dataclass(frozen=True, slots=True)
class _Prepared:
    item: ScheduleItem
    reached: list[tuple[_Group, Members]]
    duration: int
    segments: tuple[Segment, ...]
    has_relay: bool
    emergency: bool


def plan(
    items: Iterable[ScheduleItem],
    agents: Mapping[str, Sequence[str]],
    zones: Mapping[str, ZonePolicy],
    window_start_ms: int,
    window_end_ms: int,
    tz: ZoneInfo,
) -> Plan:
    """Expand ``items`` into plays per agent for ``[window_start_ms, window_end_ms)``.

    ``agents`` maps agent id → its zones; ``zones`` maps zone → its policy (zones without one have no
    quiet hours or volume rules). See the module docstring for the rules applied.
    """
    result = Plan(plays={agent: [] for agent in sorted(agents)})
    blocked = result.blocked
    fleet = _fleet(agents, zones, result.plays)

    prepared: list[_Prepared] = []
    order: list[tuple[int, int, int, str, int]] = []
    for item in items:
        starts = occurrences(item, window_start_ms, window_end_ms, tz)
        reached, unknown = fleet.reach(item.targets)
        if unknown:
            first = starts[0] if starts else window_start_ms
            blocked.append(Blocked("", item.id, first, f"unknown target {unknown}"))
        if not starts or not reached:
            continue
        segments = tuple(item.segments)
        index = len(prepared)
        prepared.append(
            _Prepared(
                item,
                reached,
                item.duration_ms,
                segments,
                any(segment.kind == "relay" for segment in segments),
                item.priority is Priority.EMERGENCY,
            )
        )
        rank = -item.priority.rank
        order.extend((start, rank, item.created_ms, item.id, index) for start in starts)
    order.sort()

    # The emission below allocates millions of small acyclic objects; the collector would scan the
    # growing heap again and again for cycles that cannot exist, so it waits until the plan is built.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _emit(prepared, order, blocked, tz)
    finally:
        if was_enabled:
            gc.enable()
    return result


def _emit(
    prepared: list[_Prepared], order: list[tuple[int, int, int, str, int]], blocked: list[Blocked], tz: ZoneInfo
) -> None:
    """The inner loop of ``plan``: each sorted (occurrence, item) onto the agents it reaches."""
    # What a zone set says about a start instant; many items share start times (06:00, 17:00 …).
    verdicts: dict[tuple[tuple[str, ...], int], tuple[str | None, int | None]] = {}
    locals_: dict[int, datetime] = {}
    for start, _rank, _created, item_id, index in order:
        job = prepared[index]
        item = job.item
        revision, priority, segments, title = item.revision, item.priority, job.segments, item.title
        end = start + job.duration
        pid = play_id(item_id, revision, start)
        local = locals_.get(start)
        if local is None:
            local = locals_[start] = to_local(start, tz)
        for group, members in job.reached:
            key = (group.zones, start)
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = verdicts[key] = (group.rules.quiet_reason(local), group.rules.volume(local))
            reason, volume = verdict
            if job.emergency:
                stop = end
            elif reason is not None:
                for agent, _append in members:
                    blocked.append(Blocked(agent, item_id, start, reason))
                continue
            elif job.has_relay and group.rules.has_quiet_hours:
                cut = group.rules.first_quiet_start(start, end, tz)
                stop = end if cut is None else cut
            else:
                stop = end
            for agent, append in members:
                append(_new_play(pid, agent, item_id, revision, start, stop, priority, segments, volume, title))
