"""``/api/v1/devices``: the fleet registry (controller/fleet/provisioning.py does the work)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from controller.api.deps import ProvisioningDep, SessionDep, StaffDep, TechnicianDep
from controller.api.schemas import DeviceCreate, DevicePublic, DeviceRegistered, DeviceUpdate
from controller.api.views import device_public
from controller.fleet.provisioning import DeviceExists, DeviceNotFound, ProfileInvalid

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("")
def list_devices(session: SessionDep, devices: ProvisioningDep, _user: StaffDep) -> list[DevicePublic]:
    """Every registered agent with its live status."""
    return [device_public(d) for d in devices.list_devices(session)]


@router.get("/{device_id}")
def get_device(device_id: str, session: SessionDep, devices: ProvisioningDep, _user: StaffDep) -> DevicePublic:
    """One agent."""
    try:
        return device_public(devices.get(session, device_id))
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.post("", status_code=status.HTTP_201_CREATED)
def register_device(body: DeviceCreate, session: SessionDep, devices: ProvisioningDep,
                    user: TechnicianDep) -> DeviceRegistered:
    """Registers an agent and returns its token and broker password (once) and what its config needs.

    A technician may instead ask for an enrolment code (``POST /{id}/enrolment``) and let the Pi fetch
    its identity itself (``loaphuong agent enroll``), which rotates both secrets.
    """
    try:
        return devices.register(session, body, user)
    except DeviceExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ProfileInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.patch("/{device_id}")
def update_device(device_id: str, body: DeviceUpdate, session: SessionDep, devices: ProvisioningDep,
                  user: TechnicianDep) -> DevicePublic:
    """Renames an agent, moves it between zones or changes its board profile.

    New zones change what it may read on the broker: the ACL file is rewritten and the broker reloads,
    and its schedule window and sign playlist are rebuilt. (The agent subscribes to the zones in its own
    config; enrolling it again writes them there.)
    """
    try:
        return device_public(devices.update(session, device_id, body, user))
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ProfileInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
