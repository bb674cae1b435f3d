"""Enrolment: a technician gets a one-time code for a device; the Pi trades it for its identity; revocation.

``POST /api/v1/enrol`` takes no bearer token — the code is the credential — so failed attempts are
counted per client address and overall, and a client over the limit gets 429 with Retry-After. The work
is controller/fleet/provisioning.py's; these routes turn its refusals into statuses.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from controller.api.deps import ProvisioningDep, SessionDep, TechnicianDep
from controller.api.errors import AUTHENTICATED, errors, reasoned
from controller.api.schemas import DevicePublic
from controller.api.views import device_public
from controller.fleet.enrolment import EnrolmentRefused
from controller.fleet.provisioning import DeviceNotFound, EnrolmentIssued, EnrolmentThrottled
from devices.enrolment import EnrolmentIdentity

router = APIRouter(prefix="/api/v1", tags=["enrolment"])


class EnrolRequest(BaseModel):
    """What the Pi sends."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)


def _not_found(exc: DeviceNotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


@router.post("/devices/{device_id}/enrolment", responses={**AUTHENTICATED, **errors(404)},
             status_code=status.HTTP_201_CREATED)
def create_enrolment(device_id: str, session: SessionDep, devices: ProvisioningDep,
                     user: TechnicianDep) -> EnrolmentIssued:
    """A one-time enrolment code for a device (any older unused code of it stops working)."""
    try:
        return devices.issue_enrolment(session, device_id, user)
    except DeviceNotFound as exc:
        raise _not_found(exc) from None


@router.post("/devices/{device_id}/revoke", responses={**AUTHENTICATED, **errors(404)})
def revoke_device(device_id: str, session: SessionDep, devices: ProvisioningDep,
                  user: TechnicianDep) -> DevicePublic:
    """Withdraws the device's broker access (its live connection is dropped) and its token, at once."""
    try:
        return device_public(devices.revoke(session, device_id, user))
    except DeviceNotFound as exc:
        raise _not_found(exc) from None


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


# No bearer token here (the code is the credential): no 401, and its 403 says why by reason code.
@router.post("/enrol", responses={**errors(400, 413, 422, 429),
                                  **reasoned(403, "The code is unknown, used or expired (the reason says which).")})
def enrol(body: EnrolRequest, request: Request, response: Response, session: SessionDep,
          devices: ProvisioningDep) -> EnrolmentIdentity:
    """Trades a valid code for the device's identity; rotates its token and broker password."""
    try:
        identity = devices.enrol(session, body.code, _client(request))
    except EnrolmentThrottled as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                            headers={"Retry-After": str(exc.retry_after)}) from None
    except EnrolmentRefused as exc:
        # Commit nothing; the refusal says why so a technician knows to ask for a new code.
        raise HTTPException(status.HTTP_403_FORBIDDEN, {"reason": exc.reason, "message": str(exc)}) from None
    response.headers["Cache-Control"] = "no-store"
    return identity
