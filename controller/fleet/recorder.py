"""What agents say over MQTT, written into the database: status, info, state, events, replies.

Every handler is synchronous (it runs in a worker thread, never in the MQTT callback) and looked up
in a table by topic kind. A message that breaks the contract raises :class:`ProtocolError`; the
caller logs it and moves on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.cameras.discoveries import record_discovered
from controller.fleet.play_guard import PLAY_EVENTS, PlayGuard
from controller.signs import record_sign_status
from controller.storage.engine import Database
from controller.storage.models import Delivery, Device, DeviceEvent, DeviceStatusChange, Play, utcnow
from devices.protocol import (
    AgentError,
    Envelope,
    InfoPayload,
    PlayFinished,
    PlayOutcome,
    PlayStarted,
    ProtocolError,
    Reply,
    StatePayload,
    StatusPayload,
    TopicInfo,
    parse_envelope,
    parse_event,
    parse_json_object,
    parse_model,
)

log = logging.getLogger(__name__)

#: Delivery states in the order they are reached; a delivery only ever moves forward.
DELIVERY_ORDER = {"queued": 0, "sent": 1, "accepted": 2, "playing": 3}
TERMINAL_DELIVERY = frozenset({"played", "preempted", "stopped", "expired", "failed", "rejected"})
_OUTCOME_TO_DELIVERY = {
    PlayOutcome.COMPLETED: "played",
    PlayOutcome.PREEMPTED: "preempted",
    PlayOutcome.STOPPED: "stopped",
    PlayOutcome.EXPIRED: "expired",
    PlayOutcome.FAILED: "failed",
    # Only when final: the agent died mid-play and it was too late to play again (the reason says so).
    PlayOutcome.CUT: "failed",
}


def advance_delivery(delivery: Delivery, status: str, error: str | None = None) -> bool:
    """Moves a delivery forward (never back, never out of a final state); True if it changed."""
    if delivery.status in TERMINAL_DELIVERY:
        return False
    if status not in TERMINAL_DELIVERY and DELIVERY_ORDER[status] <= DELIVERY_ORDER[delivery.status]:
        return False
    delivery.status = status
    if error:
        delivery.error = error[:1000]
    return True


@dataclass
class HandleResult:
    """What the caller must do after a message: acknowledge these event ids to this agent."""

    ack_agent: str | None = None
    ack_ids: list[str] = field(default_factory=list)


Handler = Callable[[Session, Device, TopicInfo, bytes], HandleResult | None]
EventHandler = Callable[[Session, Device, Envelope, Any], None]


class FleetRecorder:
    """Routes agent messages to handlers and keeps the devices table current."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: Told of every reply (agent id, reply), from this worker thread: remote operations wait on them.
        self.on_reply: Callable[[str, Reply], None] = lambda _agent, _reply: None
        #: Told of every info in its transaction (device updated, capabilities before): controller/fleet/groups.py.
        self.on_info: Callable[[Session, Device, InfoPayload, list[str]], None] = lambda *_: None
        self._handlers: dict[str, Handler] = {
            "status": self._status,
            "info": self._info,
            "state": self._state,
            "event": self._event,
            "reply": self._reply,
        }
        #: Proof of play only for plays the device was given; the rest is counted, not stored.
        self.play_guard = PlayGuard()
        self._event_handlers: dict[str, EventHandler] = {
            "play.started": self._play_started,
            "play.finished": self._play_finished,
            "error": self._agent_error,
            "camera.discovered": record_discovered,
            "sign.status": record_sign_status,
        }

    def handle(self, info: TopicInfo, payload: bytes) -> HandleResult | None:
        """Records one message; raises ProtocolError for contract violations."""
        handler = self._handlers.get(info.kind)
        if handler is None or info.agent_id is None:
            raise ProtocolError("unexpected_topic", info.kind)
        if not payload:
            return None  # a retained topic being cleared
        with self.db.session() as session:
            device = session.get(Device, info.agent_id)
            if device is None:
                raise ProtocolError("unknown_agent", f"{info.agent_id} is not registered")
            device.last_seen_at = utcnow()
            return handler(session, device, info, payload)

    # topic handlers ---------------------------------------------------------------------------------

    def _status(self, session: Session, device: Device, info: TopicInfo, payload: bytes) -> None:
        body = parse_model(StatusPayload, parse_json_object(payload))
        if device.status != body.status.value:
            log.info("agent %s is %s", device.id, body.status.value)
            device.status = body.status.value
            device.status_changed_at = utcnow()
            # Kept for reports: a ward's monthly availability and its outages are read from the changes.
            session.add(DeviceStatusChange(agent_id=device.id, ward_id=device.ward_id, status=device.status,
                                           at_ms=int(device.status_changed_at.timestamp() * 1000)))

    def _info(self, session: Session, device: Device, info: TopicInfo, payload: bytes) -> None:
        body = parse_model(InfoPayload, parse_json_object(payload))
        if body.agent_id != device.id:
            raise ProtocolError("wrong_sender", f"info for {body.agent_id} on {device.id}'s topic")
        before = list(device.capabilities or ())
        device.version = body.version
        device.hostname = body.hostname
        device.capabilities = list(body.capabilities)
        device.outputs = [o.model_dump() for o in body.outputs]
        self.on_info(session, device, body, before)

    def _state(self, session: Session, device: Device, info: TopicInfo, payload: bytes) -> None:
        body = parse_model(StatePayload, parse_json_object(payload))
        device.state = body.model_dump(mode="json")

    def _reply(self, session: Session, device: Device, info: TopicInfo, payload: bytes) -> None:
        body = parse_model(Reply, parse_json_object(payload))
        self.on_reply(device.id, body)
        delivery = self._delivery(session, device, body.id)
        if delivery is None:
            return  # replies to commands that were not deliveries (acks, pings) need no bookkeeping
        if body.status == "ok":
            advance_delivery(delivery, "accepted")
        elif (body.error or "").startswith("expired"):
            advance_delivery(delivery, "expired", body.error)
        else:
            advance_delivery(delivery, "rejected", body.error)
            log.warning("agent %s rejected command %s: %s", device.id, body.id, body.error)

    def _event(self, session: Session, device: Device, info: TopicInfo, payload: bytes) -> HandleResult:
        try:
            env, data = parse_event(payload, info)
        except ProtocolError as exc:
            # Acknowledge an identifiable but unusable event, or the agent would resend it forever.
            try:
                bad_id = parse_envelope(payload).id
            except ProtocolError:
                raise exc from None
            log.error("dropped malformed event %s from %s: %s", bad_id, device.id, exc)
            return HandleResult(device.id, [bad_id])
        if session.get(DeviceEvent, env.id) is None:
            if env.type in PLAY_EVENTS and not self.play_guard.admit(session, device, env,
                                                                      getattr(data, "play_id", "")):
                return HandleResult(device.id, [env.id])  # acknowledged, or a buggy agent resends it for ever
            session.add(DeviceEvent(id=env.id, agent_id=device.id, type=env.type, ts_ms=env.ts,
                                    data=env.data))
            self._event_handlers[env.type](session, device, env, data)
        return HandleResult(device.id, [env.id])

    # event handlers ---------------------------------------------------------------------------------

    def _play_row(self, session: Session, device: Device, data: PlayStarted | PlayFinished) -> Play:
        play = session.scalar(select(Play).where(Play.agent_id == device.id, Play.play_id == data.play_id,
                                                 Play.attempt == data.attempt))
        if play is None:
            # The ward it played in: a device moved later leaves its proof of play with the ward it served.
            play = Play(agent_id=device.id, ward_id=device.ward_id, play_id=data.play_id, attempt=data.attempt,
                        announcement_id=data.announcement_id, item_id=data.item_id,
                        sha256=data.sha256, priority=data.priority.value, output=data.output,
                        scheduled_start_ms=data.scheduled_start)
            session.add(play)
        return play

    def _delivery(self, session: Session, device: Device, command_id: str | None) -> Delivery | None:
        if command_id is None:
            return None
        # A group command's id is shared by every agent it reached: the agent picks its own delivery.
        return session.scalar(select(Delivery).where(Delivery.command_id == command_id,
                                                     Delivery.agent_id == device.id))

    def _play_started(self, session: Session, device: Device, env: Envelope, data: BaseModel) -> None:
        assert isinstance(data, PlayStarted)
        play = self._play_row(session, device, data)
        if play.actual_start_ms is None:
            play.actual_start_ms = data.actual_start
        elif play.actual_start_ms != data.actual_start:
            # One attempt starts once: a second start (an agent that replayed without counting the attempt)
            # must not erase the first one's record.
            log.warning("agent %s: play %s attempt %d already started at %d; a start at %d ignored", device.id,
                        data.play_id, data.attempt, play.actual_start_ms, data.actual_start)
            return
        delivery = self._delivery(session, device, data.play_id)
        if delivery is not None:
            advance_delivery(delivery, "playing")
        log.info("agent %s started %s at %+d ms from schedule", device.id, data.play_id,
                 data.actual_start - data.scheduled_start)

    def _play_finished(self, session: Session, device: Device, env: Envelope, data: BaseModel) -> None:
        assert isinstance(data, PlayFinished)
        play = self._play_row(session, device, data)
        if play.outcome is not None:
            # An attempt ends once; the first end recorded stands (as a delivery's first final state does).
            log.warning("agent %s: play %s attempt %d already ended %s; a second end (%s) ignored", device.id,
                        data.play_id, data.attempt, play.outcome, data.outcome.value)
            return
        if data.actual_start is not None and play.actual_start_ms is None:
            play.actual_start_ms = data.actual_start
        play.ended_at_ms = data.ended_at
        play.outcome = data.outcome.value
        play.reason = data.reason or None
        delivery = self._delivery(session, device, data.play_id)
        if delivery is not None and data.final:
            advance_delivery(delivery, _OUTCOME_TO_DELIVERY[data.outcome], data.reason or None)

    def _agent_error(self, session: Session, device: Device, env: Envelope, data: BaseModel) -> None:
        assert isinstance(data, AgentError)
        log.warning("agent %s reports %s: %s", device.id, data.code, data.message)
        delivery = self._delivery(session, device, data.ref)
        if delivery is not None:
            advance_delivery(delivery, "failed", f"{data.code}: {data.message}")
