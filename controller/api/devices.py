"""``/api/v1/devices``: the fleet registry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import event, select

from controller.api.deps import AdminDep, ControllerDep, SessionDep, StaffDep
from controller.api.schemas import DeviceCreate, DevicePublic, DeviceRegistered
from controller.auth import new_token, token_hash
from controller.models import Device

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


def device_public(device: Device) -> DevicePublic:
    """The public view of a device (never its token hash)."""
    return DevicePublic(id=device.id, name=device.name, zones=list(device.zones), enabled=device.enabled,
                        status=device.status, online=device.status == "online",
                        status_changed_at=device.status_changed_at, last_seen_at=device.last_seen_at,
                        version=device.version, hostname=device.hostname,
                        capabilities=list(device.capabilities), outputs=list(device.outputs), state=device.state)


@router.get("")
def list_devices(session: SessionDep, _user: StaffDep) -> list[DevicePublic]:
    """Every registered agent with its live status."""
    return [device_public(d) for d in session.scalars(select(Device).order_by(Device.id))]


@router.get("/{device_id}")
def get_device(device_id: str, session: SessionDep, _user: StaffDep) -> DevicePublic:
    """One agent."""
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
    return device_public(device)


@router.post("", status_code=status.HTTP_201_CREATED)
def register_device(body: DeviceCreate, session: SessionDep, controller: ControllerDep,
                    _admin: AdminDep) -> DeviceRegistered:
    """Registers an agent and returns its token (once) and what its config needs."""
    if session.get(Device, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {body.id!r} already exists")
    token = new_token()
    device = Device(id=body.id, name=body.name, zones=list(dict.fromkeys(body.zones)), token_hash=token_hash(token))
    session.add(device)
    session.flush()
    # A new agent gets its window (its zones may already have items) once the row is committed.
    event.listen(session, "after_commit", lambda _s: controller.windows.request([body.id]), once=True)
    s = controller.settings
    return DeviceRegistered(device=device_public(device), token=token,
                            controller_public_key=controller.public_key_text,
                            controller_url=s.resolved_public_url(), mqtt_host=s.mqtt_host, mqtt_port=s.mqtt_port)
