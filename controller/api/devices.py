"""``/api/v1/devices``: the fleet registry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from controller.api.deps import ControllerDep, SessionDep, StaffDep, TechnicianDep
from controller.api.schemas import DeviceCreate, DevicePublic, DeviceRegistered, DeviceUpdate
from controller.audit import record
from controller.enrolment import rotate_credentials
from controller.messaging.events import DeviceChanged
from controller.models import Device
from firmware_configs.profiles import ProfileError, get_profile

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


def device_public(device: Device) -> DevicePublic:
    """The public view of a device (never its token hash)."""
    return DevicePublic(id=device.id, name=device.name, zones=list(device.zones), enabled=device.enabled,
                        status=device.status, online=device.status == "online",
                        status_changed_at=device.status_changed_at, last_seen_at=device.last_seen_at,
                        version=device.version, hostname=device.hostname,
                        capabilities=list(device.capabilities), outputs=list(device.outputs), state=device.state,
                        board_profile=device.board_profile, revoked_at=device.revoked_at,
                        suspicious_plays=device.suspicious_plays or 0, suspicious_at=device.suspicious_at,
                        inbox_dropped=device.inbox_dropped or 0)


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
                    user: TechnicianDep) -> DeviceRegistered:
    """Registers an agent and returns its token and broker password (once) and what its config needs.

    A technician may instead ask for an enrolment code (``POST /{id}/enrolment``) and let the Pi fetch
    its identity itself (``loaphuong agent enroll``), which rotates both secrets.
    """
    if session.get(Device, body.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {body.id!r} already exists")
    if body.id == controller.settings.mqtt_username:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{body.id!r} is the controller's broker account")
    if body.board_profile is not None:
        try:
            get_profile(body.board_profile)
        except ProfileError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    device = Device(id=body.id, name=body.name, zones=list(dict.fromkeys(body.zones)), token_hash="",
                    board_profile=body.board_profile)
    secrets = rotate_credentials(device)
    session.add(device)
    record(session, user, "device.register", body.id, {"zones": device.zones, "board_profile": body.board_profile})
    session.flush()
    # A new agent gets its broker account and its window (its zones may already have items).
    controller.events.publish(DeviceChanged(frozenset({body.id}), access=True, reach=True), session)
    s = controller.settings
    return DeviceRegistered(device=device_public(device), token=secrets.token,
                            controller_public_key=controller.public_key_text,
                            controller_url=s.resolved_public_url(), mqtt_host=s.mqtt_host, mqtt_port=s.mqtt_port,
                            mqtt_username=device.id, mqtt_password=secrets.mqtt_password)


@router.patch("/{device_id}")
def update_device(device_id: str, body: DeviceUpdate, session: SessionDep, controller: ControllerDep,
                  user: TechnicianDep) -> DevicePublic:
    """Renames an agent, moves it between zones or changes its board profile.

    New zones change what it may read on the broker: the ACL file is rewritten and the broker reloads,
    and its schedule window and sign playlist are rebuilt. (The agent subscribes to the zones in its own
    config; enrolling it again writes them there.)
    """
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
    if body.board_profile is not None:
        try:
            get_profile(body.board_profile)
        except ProfileError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        device.board_profile = body.board_profile
    if body.name is not None:
        device.name = body.name
    zones_changed = body.zones is not None and list(dict.fromkeys(body.zones)) != list(device.zones)
    if body.zones is not None:
        device.zones = list(dict.fromkeys(body.zones))
    record(session, user, "device.update", device.id, body.model_dump(exclude_none=True))
    controller.events.publish(DeviceChanged(frozenset({device_id}), access=zones_changed, reach=zones_changed),
                              session)
    return device_public(device)
