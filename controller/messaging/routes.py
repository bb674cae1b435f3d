"""Where a message goes, read from its model: its type, its topic(s), whether it is signed and retained.

Nobody passes a type string beside a message: ``devices.protocol.COMMAND_MODELS`` maps each command type
to its model, and :data:`MESSAGE_TYPES` is that table reversed (built at import, and the import fails if
one model stood for two types, since the type could then no longer follow from the model).

* A command is signed and addressed ``to`` an agent id, to a ward's groups (``ward:w`` for all of it,
  ``ward:w/zone:a,b`` for some of its zones, see :func:`devices.protocol.ward_target`), or to legacy zone
  groups (``zone:a,b``, see :func:`devices.protocol.zone_target`) for agents that do not know their ward.
  ``schedule.window`` and ``sign.playlist`` are state: retained on their agent's own topic. Every other
  command goes to ``…/cmd/{type}`` of the agent, or once to each group's topic (the broker fans it out).
* Two things the controller says unsigned: an availability (:class:`~devices.protocol.StatusPayload`,
  retained) on its own status topic (``to=None``) or on an agent's (a revoked device's ``offline``); and a
  camera event for listeners in the operations centre (its topic names the camera; ``to`` is None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from controller.cameras.events import CameraEventMessage, camera_event_topic
from devices.protocol import (
    COMMAND_MODELS,
    SCHEDULE_TYPE,
    SIGNS_TYPE,
    WARD_TARGET_PREFIX,
    ZONE_TARGET_PREFIX,
    ProtocolError,
    StatusPayload,
    Topics,
    parse_ward_target,
)

#: What an availability row is called in the outbox (it has no envelope, so no protocol type).
STATUS_KIND: Final = "status"


def _reverse(models: Mapping[str, type[BaseModel]]) -> dict[type[BaseModel], str]:
    """Model → type; raises if one model carries two types (its type could not follow from it)."""
    out: dict[type[BaseModel], str] = {}
    for msg_type, model in models.items():
        if model in out:
            raise RuntimeError(f"{model.__name__} is the model of both {out[model]!r} and {msg_type!r}: "
                               "give each command type its own model (devices/protocol/messages.py)")
        out[model] = msg_type
    return out


#: Every command model → its message type.
MESSAGE_TYPES: Final[Mapping[type[BaseModel], str]] = _reverse(COMMAND_MODELS)
#: The commands that are state, kept retained on their agent's own topic (the newest replaces the last).
_RETAINED: Final = {SCHEDULE_TYPE: Topics.schedule, SIGNS_TYPE: Topics.signs}


def message_type(model: type[BaseModel]) -> str:
    """The command type a model carries (KeyError for a model that is no command)."""
    return MESSAGE_TYPES[model]


@dataclass(frozen=True, slots=True)
class Route:
    """How one message goes out."""

    #: The command type, ``status``, or the camera event's type.
    kind: str
    topics: tuple[str, ...]
    retain: bool
    signed: bool


def command_route(msg_type: str, to: str | None) -> Route:
    """The route of a command of ``msg_type`` (a type of the protocol's table) for ``to``."""
    if msg_type not in COMMAND_MODELS:
        raise ProtocolError("unknown_type", msg_type)
    if not to:
        raise ProtocolError("bad_target", f"a {msg_type} command needs an agent id or zones to go to")
    retained = _RETAINED.get(msg_type)
    if retained is not None:
        return Route(msg_type, (retained(to),), retain=True, signed=True)
    if to.startswith(WARD_TARGET_PREFIX):
        target = parse_ward_target(to)
        if target is None:
            raise ProtocolError("bad_target", f"{to!r} is not ward:{{ward}} or ward:{{ward}}/zone:{{a}},…")
        # In the order ward_target wrote them, each once.
        zones = dict.fromkeys(to.partition("/")[2][len(ZONE_TARGET_PREFIX):].split(",")) if target.zones else {}
        topics = (tuple(Topics.ward_zone_command(target.ward, z, msg_type) for z in zones) if zones
                  else (Topics.ward_command(target.ward, msg_type),))
        return Route(msg_type, topics, retain=False, signed=True)
    if to.startswith(ZONE_TARGET_PREFIX):
        # In the order zone_target wrote them, each once; Topics checks every name.
        zones = dict.fromkeys(to[len(ZONE_TARGET_PREFIX):].split(","))
        return Route(msg_type, tuple(Topics.group_command(z, msg_type) for z in zones), retain=False, signed=True)
    return Route(msg_type, (Topics.command(to, msg_type),), retain=False, signed=True)


def route(message: BaseModel, to: str | None) -> Route:
    """The route of ``message`` for ``to``; ProtocolError for a message or an addressee that cannot go out."""
    msg_type = MESSAGE_TYPES.get(type(message))
    if msg_type is not None:
        return command_route(msg_type, to)
    if isinstance(message, StatusPayload):
        topic = Topics.CONTROLLER_STATUS if to is None else Topics.status(to)
        return Route(STATUS_KIND, (topic,), retain=True, signed=False)
    if isinstance(message, CameraEventMessage):
        if to is not None:
            raise ProtocolError("bad_target", "a camera event goes to the camera's topic, not to an addressee")
        return Route(message.type, (camera_event_topic(message.camera_id, message.type),), retain=False,
                     signed=False)
    raise ProtocolError("unknown_type", f"{type(message).__name__} is not a message the controller sends")


def unsigned_payload(message: BaseModel) -> bytes:
    """The bytes of an unsigned message: an availability leaves out what it lacks (as the will does)."""
    if isinstance(message, StatusPayload):
        return message.model_dump_json(exclude_none=True).encode()
    return message.model_dump_json().encode()
