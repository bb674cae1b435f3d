"""Which existing items a new or edited item would collide with on some speaker.

Two plays collide when they overlap in time on the same agent at the **same** priority level: a higher
level simply pre-empts a lower one (``schedules.priority``), but equals would have to wait for each other,
which is what the officer is warned about (and may then choose to queue). Intervals are half-open, so a
play ending exactly when the other starts is back to back, not a conflict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from schedules.model import ScheduleItem
from schedules.plan import PlannedPlay
from schedules.recurrence import occurrences
from schedules.targets import TargetIndex


@dataclass(frozen=True, slots=True)
class Conflict:
    """The candidate's occurrence at ``start_ms`` overlaps item ``item_id``'s play on ``agent_id``."""

    item_id: str
    title: str
    agent_id: str
    start_ms: int
    other_start_ms: int
    other_end_ms: int


def _overlaps(
    mine: list[int], my_length: int, theirs: list[int], their_length: int, limit: int
) -> list[tuple[int, int]]:
    """Up to ``limit`` overlapping (my start, their start) pairs, in order, by a sweep over both lists.

    Each list is ascending and its intervals share one length, so their ends are ascending too: the
    pointer past intervals that ended before the current start never moves back.
    """
    pairs: list[tuple[int, int]] = []
    first = 0
    for start in mine:
        end = start + my_length
        while first < len(theirs) and theirs[first] + their_length <= start:
            first += 1
        index = first
        while index < len(theirs) and theirs[index] < end:
            pairs.append((start, theirs[index]))
            if len(pairs) >= limit:
                return pairs
            index += 1
    return pairs


def find_conflicts(
    candidate: ScheduleItem,
    existing: Iterable[ScheduleItem],
    agents: Mapping[str, Sequence[str]],
    horizon_start_ms: int,
    horizon_end_ms: int,
    tz: ZoneInfo,
    limit: int = 20,
) -> list[Conflict]:
    """Conflicts of ``candidate`` with ``existing`` items in ``[horizon_start_ms, horizon_end_ms)``.

    Skips the existing item with the candidate's id (the item being edited) and ignores
    ``candidate.queue`` (the caller decides what queuing means). Unknown target names are ignored here
    (``resolve_targets`` reports them). At most ``limit`` conflicts, earliest candidate occurrence first,
    then the other's start, item id and agent id.
    """
    if limit <= 0:
        return []
    mine = occurrences(candidate, horizon_start_ms, horizon_end_ms, tz)
    if not mine:
        return []
    index = TargetIndex(agents)
    my_agents = index.split(candidate.targets).agents
    my_length = candidate.duration_ms
    # Only the span the candidate occupies can hold a conflict; no need to expand others beyond it.
    span_start, span_end = max(horizon_start_ms, mine[0]), min(horizon_end_ms, mine[-1] + my_length)

    found: list[tuple[int, int, str, int, ScheduleItem, list[str]]] = []
    for other in existing:
        if other.id == candidate.id or other.priority != candidate.priority:
            continue
        shared = my_agents & index.split(other.targets).agents
        if not shared:
            continue
        theirs = occurrences(other, span_start, span_end, tz)
        length = other.duration_ms
        # Each pair yields at least one conflict, so ``limit`` pairs per item are enough for the answer.
        for start, other_start in _overlaps(mine, my_length, theirs, length, limit):
            found.append((start, other_start, other.id, length, other, sorted(shared)))

    found.sort(key=lambda entry: entry[:3])
    conflicts: list[Conflict] = []
    for start, other_start, other_id, length, other, shared_agents in found:
        for agent in shared_agents:
            conflicts.append(Conflict(other_id, other.title, agent, start, other_start, other_start + length))
            if len(conflicts) >= limit:
                return conflicts
    return conflicts


@dataclass(frozen=True, slots=True)
class Overlap:
    """Plays ``first`` and ``second`` (play ids, ``first`` starting no later) overlap on ``agent_id``.

    ``same_level``: equal priority, the case :func:`find_conflicts` refuses — one has to wait for the
    other. Otherwise the higher level pre-empts the lower, which is cut short.
    """

    agent_id: str
    first: str
    second: str
    same_level: bool


def play_overlaps(plays: Iterable[PlannedPlay]) -> list[Overlap]:
    """Every pair of planned plays that overlap in time on the same agent (half-open intervals).

    Used to show an expanded plan (what will play where) with its clashes marked. Sorted by agent, then
    by the plays' starts; each pair once.
    """
    by_agent: dict[str, list[PlannedPlay]] = {}
    for play in plays:
        by_agent.setdefault(play.agent_id, []).append(play)
    found: list[Overlap] = []
    for agent in sorted(by_agent):
        ordered = sorted(by_agent[agent], key=lambda p: (p.start_ms, p.end_ms, p.play_id))
        running: list[PlannedPlay] = []
        for play in ordered:
            # Plays that ended by this start can overlap nothing from here on (starts only grow).
            running = [other for other in running if other.end_ms > play.start_ms]
            for other in running:
                found.append(Overlap(agent, other.play_id, play.play_id, other.priority == play.priority))
            running.append(play)
    return found
