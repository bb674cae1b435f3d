"""``POST /api/v1/devices/{id}/ops/{op}``: remote operations on one agent, for technicians.

The controller signs the ``ops.{op}`` command, sends it and waits (bounded by ``wait_s``) for the
agent's reply, which the response carries. Every request is in the audit trail
(controller/fleet/device_operations.py does the work).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, status
from pydantic import BaseModel

from controller.api.deps import DeviceOperationsDep, SessionDep, TechnicianDep
from controller.api.errors import AUTHENTICATED, errors
from controller.fleet.device_operations import DeviceDisabled, UnknownOperation
from controller.fleet.provisioning import DeviceNotFound
from controller.fleet.remote_ops import MAX_WAIT_S, OpError

router = APIRouter(prefix="/api/v1/devices", tags=["operations"], responses=AUTHENTICATED)

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


@router.post("/{device_id}/ops/{op}", responses=errors(404, 409, 503, 504))
async def run_op(device_id: str, op: str, session: SessionDep, operations: DeviceOperationsDep, user: TechnicianDep,
                 body: Annotated[dict[str, Any] | None, Body()] = None,
                 wait_s: Annotated[float, Query(gt=0, le=MAX_WAIT_S)] = 10.0) -> OpResponse:
    """Sends operation ``op`` (volume, tone, restart, reload, amp, logs) and returns the agent's reply.

    404 for an unknown device or operation, 409 for a disabled device, 422 for a bad body, 503 when the
    broker is unreachable, 504 when the agent does not answer within ``wait_s`` seconds.
    """
    try:
        result = await operations.run(session, device_id, op, body, user, wait_s)
    except (DeviceNotFound, UnknownOperation) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except DeviceDisabled as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except OpError as exc:
        raise HTTPException(_STATUS[exc.code], str(exc)) from None
    reply = result.reply
    return OpResponse(device_id=device_id, op=op, command_id=result.command_id, status=reply.status,
                      error=reply.error, data=reply.data)
