"""The envelope every command and event travels in, and the parsing of payloads into models."""

from __future__ import annotations

import json
import uuid
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.protocol.errors import ProtocolError
from devices.protocol.fields import Strict, now_ms
from devices.protocol.messages import EVENT_MODELS
from devices.protocol.topics import MAX_TARGET_CHARS, TYPE_PATTERN, TopicInfo

#: The broker's and clients' hard ceiling for one payload; anything larger is refused unread.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
#: Largest attachment a command may carry (an alarm's audio: then no speaker waits on a download and one
#: publish reaches them all). Its base64 text stays well under the payload ceiling.
ATTACHMENT_MAX_BYTES: Final = 128 * 1024


_M = TypeVar("_M", bound=BaseModel)


class Envelope(Strict):
    """Every command and event travels in one of these.

    ``ts``/``exp`` are integer milliseconds since the epoch so the signed bytes are the same in every
    language. ``to`` is an agent id or ``zone:{name}``; events carry the sender's id in ``to``'s place
    as ``from``. ``sig`` is base64url(Ed25519(canonical bytes of the envelope without ``sig``)).
    """

    v: Literal[1] = 1
    id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    type: str = Field(pattern=TYPE_PATTERN)
    ts: int
    exp: int | None = None
    to: str | None = Field(default=None, max_length=MAX_TARGET_CHARS)
    sender: str | None = Field(default=None, alias="from", max_length=80)
    data: dict[str, Any] = Field(default_factory=dict)
    sig: str | None = None
    #: Commands that name media (``data.sha256``/``data.size``) may bring it along, standard base64. The
    #: signature covers it through that hash, not byte by byte: checking a 100 KB alarm costs one SHA-256.
    att: str | None = Field(default=None, max_length=(ATTACHMENT_MAX_BYTES + 2) // 3 * 4)

    # Strict: the signature covers the parsed form, so nothing may be coerced on the way in.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object as sent (``from`` spelled as on the wire, absent fields left out)."""
        # Only the envelope's own optional fields are left out when empty; a null inside ``data``
        # (``actual_start`` of a play that never started) is meaningful and must survive.
        return {k: v for k, v in self.model_dump(by_alias=True, mode="json").items() if v is not None}

    def to_bytes(self) -> bytes:
        """The payload to publish."""
        return json.dumps(self.wire(), ensure_ascii=False, separators=(",", ":")).encode()

    def signing_bytes(self) -> bytes:
        """Canonical form that is signed: sorted keys, no spaces, UTF-8, without ``sig`` and ``att``."""
        body = {k: v for k, v in self.wire().items() if k not in _UNSIGNED_FIELDS}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


#: Envelope fields outside the signed bytes: the signature itself, and the attachment (bound by its hash).
_UNSIGNED_FIELDS: Final = frozenset({"sig", "att"})


def new_message_id() -> str:
    """A fresh, unguessable message id."""
    return uuid.uuid4().hex


def parse_json_object(payload: bytes) -> dict[str, Any]:
    """Decodes a payload that must be one JSON object, refusing oversize and non-UTF-8 input."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("too_large", f"{len(payload)} bytes")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("not_json", str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise ProtocolError("not_object", type(obj).__name__)
    return obj


def parse_envelope(payload: bytes) -> Envelope:
    """Parses an envelope without checking its signature."""
    obj = parse_json_object(payload)
    try:
        return Envelope.model_validate(obj)
    except ValidationError as exc:
        raise ProtocolError("bad_envelope", _first_error(exc)) from None


def parse_model(model: type[_M], obj: Any) -> _M:
    """Validates ``obj`` against ``model``, turning validation errors into :class:`ProtocolError`."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise ProtocolError("bad_data", _first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg', '')}"[:300]


def make_event(agent_id: str, msg_type: str, data: BaseModel, msg_id: str | None = None) -> Envelope:
    """An agent's event envelope (unsigned until agents get keys of their own)."""
    if msg_type not in EVENT_MODELS or not isinstance(data, EVENT_MODELS[msg_type]):
        raise ProtocolError("bad_type", f"{msg_type} with {type(data).__name__}")
    return Envelope.model_validate({
        "id": msg_id or new_message_id(),
        "type": msg_type,
        "ts": now_ms(),
        "from": agent_id,
        "data": data.model_dump(mode="json"),
    })


def parse_event(payload: bytes, topic_info: TopicInfo) -> tuple[Envelope, BaseModel]:
    """Validates an event from ``topic_info.agent_id``: envelope, sender, type and data."""
    env = parse_envelope(payload)
    if env.sender != topic_info.agent_id:
        raise ProtocolError("wrong_sender", f"{env.sender!r} on {topic_info.agent_id}'s topic")
    if env.type != topic_info.msg_type:
        raise ProtocolError("type_mismatch", f"topic says {topic_info.msg_type}, envelope {env.type}")
    model = EVENT_MODELS.get(env.type)
    if model is None:
        raise ProtocolError("unknown_type", env.type)
    return env, parse_model(model, env.data)
