"""``POST /api/v1/devices/{id}/ops/{op}``: remote operations on one agent, for technicians.

The controller signs the ``ops.{op}`` command, sends it and waits (bounded by ``wait_s``) for the
agent's reply, which the response carries. Every request is in the audit trail.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, status
from pydantic import BaseModel

from controller import audit
from controller.api.deps import ControllerDep, SessionDep, TechnicianDep
from controller.models import Device
from controller.ops import MAX_WAIT_S, OPS, OpError

router = APIRouter(prefix="/api/v1/devices", tags=["operations"])

_STATUS = {
    "unknown_op": status.HTTP_404_NOT_FOUND,
    "bad_data": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "busy": status.HTTP_503_SERVICE_UNAVAILABLE,
    "link_down": status.HTTP_503_SERVICE_UNAVAILABLE,
    "timeout": status.HTTP_504_GATEWAY_TIMEOUT,
}


class OpResponse(BaseModel):
    """The agent's answer: ``status`` ok/error, its ``error`` text, and what the operation returns."""

    device_id: str
    op: str
    command_id: str
    status: str
    error: str | None = None
    data: dict[str, Any] | None = None


@router.post("/{device_id}/ops/{op}")
async def run_op(device_id: str, op: str, session: SessionDep, controller: ControllerDep, user: TechnicianDep,
                 body: Annotated[dict[str, Any] | None, Body()] = None,
                 wait_s: Annotated[float, Query(gt=0, le=MAX_WAIT_S)] = 10.0) -> OpResponse:
    """Sends operation ``op`` (volume, tone, restart, reload, amp, logs) and returns the agent's reply.

    404 for an unknown device or operation, 409 for a disabled device, 422 for a bad body, 503 when the
    broker is unreachable, 504 when the agent does not answer within ``wait_s`` seconds.
    """
    def check() -> None:
        device = session.get(Device, device_id)
        if device is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
        if not device.enabled:
            raise HTTPException(status.HTTP_409_CONFLICT, f"device {device_id!r} is disabled")
        if op not in OPS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown operation {op!r}; one of: {', '.join(OPS)}")
        session.commit()  # end the read transaction: the wait below may take seconds

    def record(detail: dict[str, Any]) -> None:
        audit.record(session, user, f"device.ops.{op}", device_id, {"body": body or {}, **detail})
        session.commit()

    # The database work runs in a worker thread, one step after another on the request's session: a
    # SQLite write waiting for the lock must not hold up the event loop (every live stream, every reply).
    await asyncio.to_thread(check)
    try:
        result = await controller.ops.run(device_id, op, body, wait_s)
    except OpError as exc:
        if exc.code in ("timeout", "link_down"):
            await asyncio.to_thread(record, {"error": exc.code})
        raise HTTPException(_STATUS[exc.code], str(exc)) from None
    reply = result.reply
    await asyncio.to_thread(record, {"command_id": result.command_id, "status": reply.status,
                                     **({"error": reply.error} if reply.error else {})})
    return OpResponse(device_id=device_id, op=op, command_id=result.command_id, status=reply.status,
                      error=reply.error, data=reply.data)
