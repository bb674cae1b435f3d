"""Camera events (motion, fault, recovered) as the API, the SSE stream and MQTT carry them.

The controller publishes each event on ``lp/v1/controller/camera/{camera_id}/event/{type}`` (QoS 1,
not retained) for whatever else in the operations centre listens, and hands it to every console
that follows ``/api/v1/camera-events/stream``. Subscribers that fall behind lose the oldest events
(they are all in the database), never block the publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.storage.models import FIRST_WARD, CameraEvent
from devices.protocol import TOPIC_ROOT, ProtocolError, valid_id

CameraEventType = Literal["camera.motion", "camera.fault", "camera.recovered"]
#: Events one slow SSE subscriber may have waiting before the oldest are dropped.
SUBSCRIBER_BACKLOG: Final = 256


def camera_event_topic(camera_id: str, event_type: str) -> str:
    """``lp/v1/controller/camera/{camera_id}/event/{type}`` with the id checked."""
    if not valid_id(camera_id):
        raise ProtocolError("bad_id", f"camera id {camera_id!r}")
    return f"{TOPIC_ROOT}/controller/camera/{camera_id}/event/{event_type}"


class CameraEventMessage(BaseModel):
    """One camera event as the API lists it and as it goes out on SSE and MQTT."""

    model_config = ConfigDict(extra="forbid")

    v: int = 1
    id: str
    type: CameraEventType
    ts: int = Field(description="when it happened, ms since the epoch")
    camera_id: str
    ward: str = Field(default=FIRST_WARD, description="the camera's ward")
    agent_id: str | None
    zone: str | None
    score: float | None = Field(description="motion: share of the zones' pixels that moved (0–1)")
    snapshot: str | None = Field(description="API path of the stored JPEG, null if none (or removed)")
    detail: dict[str, Any]


def event_message(row: CameraEvent) -> CameraEventMessage:
    """The message for a stored event."""
    return CameraEventMessage(id=row.id, type=row.type, ts=row.ts_ms,  # type: ignore[arg-type]
                              camera_id=row.camera_id, ward=row.ward_id, agent_id=row.agent_id, zone=row.zone,
                              score=row.score,
                              snapshot=f"/api/v1/camera-events/{row.id}/snapshot.jpg" if row.snapshot else None,
                              detail=dict(row.detail))


def iso(ts_ms: int) -> str:
    """An event time as ISO 8601 (for people reading the SSE stream)."""
    return datetime.fromtimestamp(ts_ms / 1000).astimezone().isoformat(timespec="milliseconds")


class EventHub:
    """Fans events out to live subscribers (each an asyncio queue on the loop)."""

    def __init__(self) -> None:
        #: Each subscriber's queue and the wards whose events it gets (None: every ward).
        self._subscribers: dict[asyncio.Queue[CameraEventMessage], frozenset[str] | None] = {}

    def subscribe(self, wards: frozenset[str] | None = None) -> asyncio.Queue[CameraEventMessage]:
        """A new subscriber's queue, fed the events of cameras of ``wards`` (None: all); pass it to
        :meth:`unsubscribe` when done."""
        queue: asyncio.Queue[CameraEventMessage] = asyncio.Queue(maxsize=SUBSCRIBER_BACKLOG)
        self._subscribers[queue] = wards
        return queue

    def unsubscribe(self, queue: asyncio.Queue[CameraEventMessage]) -> None:
        """Stops delivering to ``queue``."""
        self._subscribers.pop(queue, None)

    @property
    def subscribers(self) -> int:
        """How many consoles follow the stream."""
        return len(self._subscribers)

    def publish(self, message: CameraEventMessage) -> None:
        """Delivers to every subscriber following the camera's ward; a full queue drops its oldest event."""
        for queue, wards in self._subscribers.items():
            if wards is not None and message.ward not in wards:
                continue
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)
