"""Ed25519 signing of commands: the controller's :class:`Signer` and the agent's :class:`Verifier`.

The verifier's checks run in the order docs/protocol.md §3 lists; the first that fails names the
:class:`~devices.protocol.errors.ProtocolError` reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from devices.protocol.envelope import Envelope, new_message_id, parse_envelope, parse_model
from devices.protocol.errors import ProtocolError
from devices.protocol.fields import now_ms
from devices.protocol.messages import ATTACHMENT_TYPES, COMMAND_MODELS
from devices.protocol.topics import ALL_ZONE, TopicInfo, parse_ward_target, target_zones

_M = TypeVar("_M", bound=BaseModel)

#: Tolerated difference between the controller's and an agent's clocks when checking ``ts``.
CLOCK_SKEW_MS: Final = 120_000


def _attachment(env: Envelope, data: BaseModel) -> bytes:
    """The attachment's bytes once they are proven to be the media the signed data names."""
    if env.type not in ATTACHMENT_TYPES:
        raise ProtocolError("bad_attachment", f"{env.type} carries no attachment")
    assert env.att is not None
    try:
        # strict_mode is checked in C; b64decode(validate=True) runs a regex over the whole text first.
        raw = binascii.a2b_base64(env.att, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_attachment", f"{env.id}: not base64") from None
    if len(raw) != getattr(data, "size", None) or hashlib.sha256(raw).hexdigest() != getattr(data, "sha256", None):
        raise ProtocolError("bad_attachment", f"{env.id}: not the media its signed data names")
    return raw


def public_key_to_text(key: Ed25519PublicKey) -> str:
    """The form an agent's config names the controller's key in: base64 of the 32 raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Reads a key written by :func:`public_key_to_text`."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a base64 Ed25519 public key: {exc}") from None


class Signer:
    """The controller's side: builds signed command envelopes."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key agents verify with."""
        return self._key.public_key()

    def command(
        self,
        msg_type: str,
        data: BaseModel,
        *,
        to: str,
        ttl_ms: int,
        msg_id: str | None = None,
        ts: int | None = None,
        attachment: bytes | None = None,
    ) -> Envelope:
        """A signed command of ``msg_type`` for ``to`` (an agent id or ``zone:{a}[,{b}…]``).

        ``attachment`` is the media the data names (a ``speaker.play``'s recording), sent along.
        """
        if msg_type not in COMMAND_MODELS or not isinstance(data, COMMAND_MODELS[msg_type]):
            raise ProtocolError("bad_type", f"{msg_type} with {type(data).__name__}")
        ts = now_ms() if ts is None else ts
        unsigned = Envelope(
            id=msg_id or new_message_id(),
            type=msg_type,
            ts=ts,
            exp=ts + ttl_ms,
            to=to,
            data=data.model_dump(mode="json"),
            att=base64.b64encode(attachment).decode() if attachment is not None else None,
        )
        if attachment is not None:
            _attachment(unsigned, data)  # refuse to send what every agent would refuse
        sig = base64.urlsafe_b64encode(self._key.sign(unsigned.signing_bytes())).decode().rstrip("=")
        return unsigned.model_copy(update={"sig": sig})


@dataclass(frozen=True, slots=True)
class VerifiedCommand:
    """A command that passed every check, with its data parsed into the type's model."""

    envelope: Envelope
    data: BaseModel
    #: The attachment's bytes, already checked against the media the data names.
    attachment: bytes | None = None

    def data_as(self, model: type[_M]) -> _M:
        """The data as the model its type carries (a handler is routed by type, so this is that model)."""
        if not isinstance(self.data, model):
            raise TypeError(f"{self.envelope.type} carries {type(self.data).__name__}, not {model.__name__}")
        return self.data


class Verifier:
    """The agent's side: accepts a command only if it is signed, addressed here, fresh and new.

    ``seen`` answers whether an id was already accepted and remembers it until its expiry; the agent
    backs it with its on-disk store so a replay is refused across restarts too.
    """

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        agent_id: str,
        zones: list[str],
        seen: Callable[[str, int], bool],
        clock: Callable[[], int] = now_ms,
        ward: str | None = None,
    ) -> None:
        self._key = public_key
        self._agent_id = agent_id
        self._seen = seen
        self._clock = clock
        self._groups: tuple[str | None, frozenset[str]] = (None, frozenset())
        self.set_groups(ward, zones)

    def set_groups(self, ward: str | None, zones: list[str]) -> None:
        """The groups group commands are accepted for from now on.

        With a ward: ``ward:{ward}`` and ``ward:{ward}/zone:…`` naming one of ``zones``, on that ward's
        topics, and nothing of the legacy tree (not even the fleet's ``zone:all``). Without one (an agent
        enrolled before wards): ``zone:…`` naming one of ``zones`` or ``all``, on the legacy topics.
        """
        # One tuple, replaced whole: a verify running in another thread sees the old groups or the new.
        self._groups = (ward, frozenset(zones) if ward is not None else frozenset([ALL_ZONE, *zones]))

    def verify(self, payload: bytes, topic_info: TopicInfo | None = None) -> VerifiedCommand:
        """Checks a command; raises ProtocolError naming the first check that failed.

        Order: envelope shape, signature, target (and that the topic it came on matches ``to``),
        type against topic, expiry, clock skew, data schema, and last replay.
        """
        env = parse_envelope(payload)
        if not env.sig:
            raise ProtocolError("unsigned", env.id)
        try:
            sig = base64.urlsafe_b64decode(env.sig + "=" * (-len(env.sig) % 4))
            self._key.verify(sig, env.signing_bytes())
        except (InvalidSignature, binascii.Error, ValueError):
            raise ProtocolError("bad_signature", env.id) from None
        self._check_target(env, topic_info)
        if topic_info is not None and topic_info.msg_type != env.type:
            raise ProtocolError("type_mismatch", f"topic says {topic_info.msg_type}, envelope {env.type}")
        now = self._clock()
        if env.exp is None or env.exp <= now:
            raise ProtocolError("expired", f"{env.id} expired at {env.exp}, now {now}")
        if env.ts > now + CLOCK_SKEW_MS:
            raise ProtocolError("from_future", f"{env.id} ts {env.ts}, now {now}")
        model = COMMAND_MODELS.get(env.type)
        if model is None:
            raise ProtocolError("unknown_type", env.type)
        data = parse_model(model, env.data)
        attachment = _attachment(env, data) if env.att is not None else None
        # Replay last: a forged copy of a real id must not poison the seen-set before it is verified.
        if self._seen(env.id, env.exp):
            raise ProtocolError("replayed", env.id)
        return VerifiedCommand(env, data, attachment)

    def _check_target(self, env: Envelope, topic_info: TopicInfo | None) -> None:
        """``wrong_target`` unless ``to`` names this agent or one of its groups, and the topic is that one's.

        A command signed for one agent must not be replayed onto a group's topic, nor the reverse; one for
        zones arrives on the topic of one of them; one for a ward on that ward's topic.
        """
        ward, my_zones = self._groups
        if env.to == self._agent_id:
            if topic_info is not None and (topic_info.agent_id != env.to or topic_info.zone or topic_info.ward):
                raise ProtocolError("wrong_target", f"{env.id} for {env.to!r} arrived on {_where(topic_info)}")
            return
        if ward is None:
            zones = target_zones(env.to)
            if not zones & my_zones:
                raise ProtocolError("wrong_target", f"{env.id} is for {env.to!r}")
            on_topic = topic_info is None or (topic_info.ward is None and topic_info.zone in zones)
        else:
            target = parse_ward_target(env.to)
            if target is None or target.ward != ward or (target.zones and not target.zones & my_zones):
                raise ProtocolError("wrong_target", f"{env.id} is for {env.to!r}")
            on_topic = topic_info is None or (topic_info.ward == ward and (
                topic_info.zone in target.zones if target.zones else topic_info.zone is None))
        if not on_topic:
            assert topic_info is not None
            raise ProtocolError("wrong_target", f"{env.id} for {env.to!r} arrived on {_where(topic_info)}")


def _where(info: TopicInfo) -> str:
    """Whose topic a command came on, for a log line."""
    if info.zone:
        return f"zone {info.zone}'s topic" + (f" in ward {info.ward}" if info.ward else "")
    if info.ward:
        return f"ward {info.ward}'s topic"
    return f"agent {info.agent_id}'s topic"
