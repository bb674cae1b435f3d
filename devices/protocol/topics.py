"""The topic tree and the ids that become its segments: the only place a topic string is spelled out.

Agent ids and zone names are validated before a topic is built (``bad_id``) and when one is parsed
(``bad_topic``); message types likewise (``bad_type``).
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
MAX_TARGET_CHARS: Final = 4096


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
        """Signed controller → zone command: one publish reaches every agent of the zone."""
        return f"{TOPIC_ROOT}/group/{_require_id(zone, 'zone')}/cmd/{_require_type(msg_type)}"

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
    def agent_subscriptions(cls, agent_id: str, zones: list[str]) -> list[str]:
        """What an agent subscribes to: its own commands, its zones' commands, the controller status."""
        subs = [cls.agent(agent_id, "cmd/+"), cls.schedule(agent_id), cls.CONTROLLER_STATUS]
        subs.append(cls.signs(agent_id))
        subs += [f"{TOPIC_ROOT}/group/{_require_id(z, 'zone')}/cmd/+" for z in dict.fromkeys([ALL_ZONE, *zones])]
        return subs


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
    raise ProtocolError("bad_topic", topic)
