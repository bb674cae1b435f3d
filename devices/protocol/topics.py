"""The topic tree and the ids that become its segments: the only place a topic string is spelled out.

Agent ids, ward ids and zone names are validated before a topic is built (``bad_id``) and when one is
parsed (``bad_topic``); message types likewise (``bad_type``).

Group commands live under their ward (``lp/v1/ward/{ward}/all/…``, ``lp/v1/ward/{ward}/zone/{zone}/…``),
so the broker's ACLs keep each ward's agents to their own ward. The older tree (``lp/v1/group/{zone}/…``
and the fleet-wide ``lp/v1/group/all/…``) is kept for agents that do not know their ward yet
(docs/protocol.md §2, *Wards*).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from devices.protocol.errors import ProtocolError

PROTOCOL_VERSION: Final = 1
TOPIC_ROOT: Final = f"lp/v{PROTOCOL_VERSION}"

#: Ids that become topic segments: lower-case letters, digits, ``_`` and ``-``.
ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID_RE: Final = re.compile(ID_PATTERN)
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
#: The group every agent belongs to: ``lp/v1/group/all/cmd/…`` reaches the whole fleet with one publish.
#: No zone may take this name.
ALL_ZONE: Final = "all"
#: ``to`` of a command for zones: ``zone:{name}`` or ``zone:{a},{b}`` (one envelope, sent to each zone's topic).
ZONE_TARGET_PREFIX: Final = "zone:"
#: ``to`` of a command for a ward's group topics: ``ward:{w}`` (every agent of the ward) or
#: ``ward:{w}/zone:{a},{b}`` (those zones of the ward).
WARD_TARGET_PREFIX: Final = "ward:"
MAX_TARGET_CHARS: Final = 4096
#: What an agent that listens on its ward's group topics lists among its ``info`` capabilities, with
#: ``ward:{ward}`` naming the ward: the controller sends its ward's group commands there and takes the
#: legacy group topics out of its ACL. An agent that lists ``ward_groups`` understands ``agent.groups``.
WARD_GROUPS_CAPABILITY: Final = "ward_groups"


def valid_id(value: str) -> bool:
    """True when ``value`` may be used as an agent id or a zone name (a single topic segment)."""
    return bool(_ID_RE.match(value))


def valid_sha256(value: str) -> bool:
    """True when ``value`` is a lower-case hex SHA-256 digest."""
    return bool(_SHA256_RE.match(value))


def zone_target(zones: Sequence[str]) -> str:
    """The ``to`` of one command for one or more zones: ``zone:a`` or ``zone:a,b``."""
    if not zones:
        raise ProtocolError("bad_target", "no zones")
    target = ZONE_TARGET_PREFIX + ",".join(_require_id(z, "zone") for z in dict.fromkeys(zones))
    if len(target) > MAX_TARGET_CHARS:
        raise ProtocolError("bad_target", f"{len(zones)} zones do not fit one envelope")
    return target


def target_zones(to: str | None) -> frozenset[str]:
    """The zones a ``to`` of the ``zone:…`` form names; empty for an agent id or anything malformed."""
    if not to or not to.startswith(ZONE_TARGET_PREFIX):
        return frozenset()
    zones = to[len(ZONE_TARGET_PREFIX):].split(",")
    return frozenset(zones) if all(valid_id(z) for z in zones) else frozenset()


def ward_target(ward: str, zones: Sequence[str] = ()) -> str:
    """The ``to`` of one command on a ward's group topics: ``ward:{w}`` (all of it) or ``ward:{w}/zone:a,b``."""
    head = WARD_TARGET_PREFIX + _require_id(ward, "ward")
    target = f"{head}/{zone_target(zones)}" if zones else head
    if len(target) > MAX_TARGET_CHARS:
        raise ProtocolError("bad_target", f"{len(zones)} zones do not fit one envelope")
    return target


@dataclass(frozen=True, slots=True)
class WardTarget:
    """A parsed ``ward:…`` target: the ward, and its zones named (none: every agent of the ward)."""

    ward: str
    zones: frozenset[str] = frozenset()


def parse_ward_target(to: str | None) -> WardTarget | None:
    """The ward (and zones) a ``to`` of the ``ward:…`` form names; None for any other form or a malformed one."""
    if not to or not to.startswith(WARD_TARGET_PREFIX):
        return None
    ward, sep, rest = to[len(WARD_TARGET_PREFIX):].partition("/")
    if not valid_id(ward):
        return None
    if not sep:
        return WardTarget(ward)
    zones = target_zones(rest)
    return WardTarget(ward, zones) if zones else None


def ward_capability(ward: str) -> str:
    """The capability naming the ward whose group topics an agent listens on: ``ward:{ward}``."""
    return WARD_TARGET_PREFIX + _require_id(ward, "ward")


def capability_ward(capabilities: Sequence[str]) -> str | None:
    """The ward an agent's capabilities say it listens on (``ward:{w}``), or None (a legacy agent)."""
    for cap in capabilities:
        if cap.startswith(WARD_TARGET_PREFIX) and valid_id(cap[len(WARD_TARGET_PREFIX):]):
            return cap[len(WARD_TARGET_PREFIX):]
    return None


def _require_id(value: str, what: str = "id") -> str:
    if not valid_id(value):
        raise ProtocolError("bad_id", f"{what} {value!r} does not match {ID_PATTERN}")
    return value


class Topics:
    """Builds every topic of the tree; the only place a topic string is spelled out."""

    @staticmethod
    def agent(agent_id: str, leaf: str) -> str:
        """``lp/v1/agent/{id}/{leaf}`` with the id validated."""
        return f"{TOPIC_ROOT}/agent/{_require_id(agent_id, 'agent id')}/{leaf}"

    @classmethod
    def status(cls, agent_id: str) -> str:
        """Retained availability of an agent: online / offline (will) / stopped."""
        return cls.agent(agent_id, "status")

    @classmethod
    def info(cls, agent_id: str) -> str:
        """Retained description of an agent: version, capabilities, outputs, zones."""
        return cls.agent(agent_id, "info")

    @classmethod
    def state(cls, agent_id: str) -> str:
        """Retained live state of an agent: volume, now playing."""
        return cls.agent(agent_id, "state")

    @classmethod
    def schedule(cls, agent_id: str) -> str:
        """Retained, signed window of upcoming plays for one agent (``schedule.window``)."""
        return cls.agent(agent_id, "schedule")

    @classmethod
    def signs(cls, agent_id: str) -> str:
        """Retained, signed playlist of what one agent's LED signs show (``sign.playlist``)."""
        return cls.agent(agent_id, "signs")

    @classmethod
    def command(cls, agent_id: str, msg_type: str) -> str:
        """Signed controller → agent command."""
        return cls.agent(agent_id, f"cmd/{_require_type(msg_type)}")

    @classmethod
    def event(cls, agent_id: str, msg_type: str) -> str:
        """Agent → controller event (proof of play, errors)."""
        return cls.agent(agent_id, f"event/{_require_type(msg_type)}")

    @classmethod
    def reply(cls, agent_id: str) -> str:
        """Agent's answers to commands, correlated by the command's id."""
        return cls.agent(agent_id, "reply")

    @staticmethod
    def group_command(zone: str, msg_type: str) -> str:
        """Legacy signed controller → zone command (``all``: the whole fleet), for agents without a ward."""
        return f"{TOPIC_ROOT}/group/{_require_id(zone, 'zone')}/cmd/{_require_type(msg_type)}"

    @staticmethod
    def ward_command(ward: str, msg_type: str) -> str:
        """Signed controller → every agent of a ward: one publish reaches the whole ward, no other."""
        return f"{TOPIC_ROOT}/ward/{_require_id(ward, 'ward')}/all/cmd/{_require_type(msg_type)}"

    @staticmethod
    def ward_zone_command(ward: str, zone: str, msg_type: str) -> str:
        """Signed controller → every agent of one zone of a ward."""
        return (f"{TOPIC_ROOT}/ward/{_require_id(ward, 'ward')}/zone/{_require_id(zone, 'zone')}"
                f"/cmd/{_require_type(msg_type)}")

    CONTROLLER_STATUS: Final = f"{TOPIC_ROOT}/controller/status"

    #: What the controller subscribes to.
    CONTROLLER_SUBSCRIPTIONS: Final = (
        f"{TOPIC_ROOT}/agent/+/status",
        f"{TOPIC_ROOT}/agent/+/info",
        f"{TOPIC_ROOT}/agent/+/state",
        f"{TOPIC_ROOT}/agent/+/event/+",
        f"{TOPIC_ROOT}/agent/+/reply",
    )

    @classmethod
    def own_subscriptions(cls, agent_id: str) -> list[str]:
        """What an agent reads of its own: its commands, window and signs playlist, and the controller status."""
        return [cls.agent(agent_id, "cmd/+"), cls.schedule(agent_id), cls.CONTROLLER_STATUS, cls.signs(agent_id)]

    @staticmethod
    def ward_group_subscriptions(ward: str, zones: Sequence[str]) -> list[str]:
        """The group topics of an agent of ``ward`` in ``zones``: its ward's ``all`` and its zones there."""
        w = _require_id(ward, "ward")
        return [f"{TOPIC_ROOT}/ward/{w}/all/cmd/+",
                *(f"{TOPIC_ROOT}/ward/{w}/zone/{_require_id(z, 'zone')}/cmd/+" for z in dict.fromkeys(zones))]

    @staticmethod
    def legacy_group_subscriptions(zones: Sequence[str], fleet_wide: bool = True) -> list[str]:
        """The legacy group topics of an agent in ``zones`` (with ``fleet_wide``, the fleet's ``all`` too)."""
        names = [ALL_ZONE, *zones] if fleet_wide else list(zones)
        return [f"{TOPIC_ROOT}/group/{_require_id(z, 'zone')}/cmd/+" for z in dict.fromkeys(names)]

    @classmethod
    def agent_subscriptions(cls, agent_id: str, zones: list[str], ward: str | None = None) -> list[str]:
        """What an agent subscribes to: its own topics, then its ward's group topics, or, for an agent that
        does not know its ward (enrolled before wards), the legacy ones (its zones and the fleet's ``all``)."""
        groups = (cls.ward_group_subscriptions(ward, zones) if ward is not None
                  else cls.legacy_group_subscriptions(zones))
        return [*cls.own_subscriptions(agent_id), *groups]


#: Message types: dotted lower-case words (``speaker.play``, ``play.finished``).
TYPE_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
_TYPE_RE: Final = re.compile(TYPE_PATTERN)
#: The one message type carried on ``…/schedule`` rather than ``…/cmd/{type}``.
SCHEDULE_TYPE: Final = "schedule.window"
#: The one message type carried on ``…/signs``.
SIGNS_TYPE: Final = "sign.playlist"


def _require_type(msg_type: str) -> str:
    if not _TYPE_RE.match(msg_type):
        raise ProtocolError("bad_type", f"message type {msg_type!r}")
    return msg_type


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A parsed topic: ``kind`` is status/info/state/cmd/event/reply/controller_status."""

    kind: str
    agent_id: str | None = None
    zone: str | None = None
    msg_type: str | None = None
    #: The ward of a ward group topic (``lp/v1/ward/{ward}/…``); None on the agent and legacy group topics.
    ward: str | None = None


def parse_topic(topic: str) -> TopicInfo:
    """Splits a topic of the tree into its parts; raises :class:`ProtocolError` for anything else."""
    if topic == Topics.CONTROLLER_STATUS:
        return TopicInfo("controller_status")
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ProtocolError("bad_topic", topic)
    scope, ident, rest = parts[2], parts[3], parts[4:]
    if not valid_id(ident):
        raise ProtocolError("bad_topic", f"invalid id in {topic!r}")
    if scope == "agent":
        if len(rest) == 1 and rest[0] in ("status", "info", "state", "reply"):
            return TopicInfo(rest[0], agent_id=ident)
        if rest == ["schedule"]:
            return TopicInfo("schedule", agent_id=ident, msg_type=SCHEDULE_TYPE)
        if rest == ["signs"]:
            return TopicInfo("signs", agent_id=ident, msg_type=SIGNS_TYPE)
        if len(rest) == 2 and rest[0] in ("cmd", "event") and _TYPE_RE.match(rest[1]):
            return TopicInfo(rest[0], agent_id=ident, msg_type=rest[1])
    elif scope == "group" and len(rest) == 2 and rest[0] == "cmd" and _TYPE_RE.match(rest[1]):
        return TopicInfo("cmd", zone=ident, msg_type=rest[1])
    elif scope == "ward":
        if len(rest) == 3 and rest[:2] == ["all", "cmd"] and _TYPE_RE.match(rest[2]):
            return TopicInfo("cmd", ward=ident, msg_type=rest[2])
        if (len(rest) == 4 and rest[0] == "zone" and rest[2] == "cmd" and valid_id(rest[1])
                and _TYPE_RE.match(rest[3])):
            return TopicInfo("cmd", ward=ident, zone=rest[1], msg_type=rest[3])
    raise ProtocolError("bad_topic", topic)
