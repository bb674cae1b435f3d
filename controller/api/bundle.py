"""``POST /api/v1/devices/{id}/bundle.zip``: a first-boot bundle with a fresh enrolment code, for technicians.

A POST, not a GET: every bundle issues a new one-time code (and any unused older code of the device
stops working), so it must not be fetched by a prefetching browser or a link checker.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from controller.api.deps import ProvisioningDep, SessionDep, TechnicianDep
from controller.api.errors import AUTHENTICATED, errors
from controller.fleet.provisioning import BundleInvalid, BundleRequest, DeviceNotFound

router = APIRouter(prefix="/api/v1/devices", tags=["enrolment"], responses=AUTHENTICATED)


@router.post("/{device_id}/bundle.zip", response_class=Response,
             responses={200: {"content": {"application/zip": {}}, "description": "The bundle (zip)."},
                        **errors(404)})
def device_bundle(device_id: str, body: BundleRequest, session: SessionDep, devices: ProvisioningDep,
                  user: TechnicianDep) -> Response:
    """cloud-init ``user-data``/``network-config``/``meta-data`` (zip) that install and enrol this device.

    404 unknown device; 422 no or unknown board profile, or a bad option (the message names it).
    """
    try:
        bundle = devices.bundle(session, device_id, body, user)
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except BundleInvalid as exc:
        # Raising rolls the session back: the code just issued is never stored.
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return Response(bundle.data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"',
                             "Cache-Control": "no-store"})
