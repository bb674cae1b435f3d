"""``/api/v1/devices``: the fleet registry (controller/fleet/provisioning.py does the work).

Every route sees only the devices of the caller's wards; a device of another ward is answered like an
unknown id (404, the same words), and changes need the technician role in the device's ward (403 when the
caller sees the ward without it).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from controller.api.deps import ProvisioningDep, SessionDep, StaffDep, TechnicianDep
from controller.api.errors import AUTHENTICATED, errors
from controller.api.schemas import DeviceCreate, DevicePublic, DeviceRegistered, DeviceUpdate
from controller.api.views import device_public
from controller.fleet.provisioning import DeviceExists, DeviceNotFound, ProfileInvalid
from controller.schedule.zones import ZoneOfOtherWard

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=AUTHENTICATED)


@router.get("")
def list_devices(session: SessionDep, devices: ProvisioningDep, user: StaffDep) -> list[DevicePublic]:
    """Every registered agent of the caller's wards with its live status."""
    return [device_public(d) for d in devices.visible_devices(session, user)]


@router.get("/{device_id}", responses=errors(404))
def get_device(device_id: str, session: SessionDep, devices: ProvisioningDep, user: StaffDep) -> DevicePublic:
    """One agent."""
    try:
        return device_public(devices.reachable(session, user, device_id))
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.post("", responses=errors(404, 409), status_code=status.HTTP_201_CREATED)
def register_device(body: DeviceCreate, session: SessionDep, devices: ProvisioningDep,
                    user: TechnicianDep) -> DeviceRegistered:
    """Registers an agent and returns its token and broker password (once) and what its config needs.

    It goes to ``ward`` (needed only by technicians of several wards); its zones must be that ward's (a
    zone id not used yet becomes one). A technician may instead ask for an enrolment code
    (``POST /{id}/enrolment``) and let the Pi fetch its identity itself (``loaphuong agent enroll``), which
    rotates both secrets.
    """
    try:
        return devices.register(session, body, user)
    except DeviceExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ProfileInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except ZoneOfOtherWard as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.patch("/{device_id}", responses=errors(404))
def update_device(device_id: str, body: DeviceUpdate, session: SessionDep, devices: ProvisioningDep,
                  user: TechnicianDep) -> DevicePublic:
    """Renames an agent, moves it between zones or wards, or changes its board profile.

    New zones change what it may read on the broker: the ACL file is rewritten and the broker reloads,
    and its schedule window and sign playlist are rebuilt. (The agent subscribes to the zones in its own
    config; enrolling it again writes them there.) ``ward`` hands it to another ward (technician in both):
    its zones are cleared and its token and broker password rotated, so its old ones stop working; enrol
    it again from the new ward.
    """
    try:
        return device_public(devices.update(session, device_id, body, user))
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ProfileInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except ZoneOfOtherWard as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
