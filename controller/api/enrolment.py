"""Enrolment: a technician gets a one-time code for a device; the Pi trades it for its identity; revocation.

``POST /api/v1/enrol`` takes no bearer token — the code is the credential — so failed attempts are
counted per client address and overall, and a client over the limit gets 429 with Retry-After.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from controller.api.deps import ControllerDep, SessionDep, TechnicianDep
from controller.api.devices import device_public
from controller.api.schemas import DevicePublic
from controller.audit import record
from controller.enrolment import EnrolmentRefused, enrol_uri, issue_code, qr_svg, redeem, revoke
from controller.messaging.events import DeviceChanged
from controller.models import Device
from controller.runtime import Controller
from devices.enrolment import EnrolmentIdentity, MqttIdentity
from devices.protocol import AgentStatus, StatusPayload, now_ms
from firmware_configs.profiles import ProfileError, get_profile

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["enrolment"])


class EnrolmentIssued(BaseModel):
    """A fresh code, shown once; the technician types it or scans the QR code on the Pi."""

    device_id: str
    code: str = Field(description="XXXX-XXXX, single use")
    expires_at: datetime
    uri: str = Field(description="what the QR code holds: loaphuong://enrol?controller=…&code=…")
    qr_svg: str = Field(description="the QR code as an SVG document")


class EnrolRequest(BaseModel):
    """What the Pi sends."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)


def _device(session: SessionDep, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
    return device


def _access_changed(session: SessionDep, controller: Controller, device: Device) -> None:
    # Its broker password changed, and it was enabled or disabled: what reaches it follows (a rebuild that
    # changes nothing sends nothing).
    controller.events.publish(DeviceChanged(frozenset({device.id}), access=True, reach=True), session)


@router.post("/devices/{device_id}/enrolment", status_code=status.HTTP_201_CREATED)
def create_enrolment(device_id: str, session: SessionDep, controller: ControllerDep,
                     user: TechnicianDep) -> EnrolmentIssued:
    """A one-time enrolment code for a device (any older unused code of it stops working)."""
    device = _device(session, device_id)
    issued = issue_code(session, device, user.username, timedelta(minutes=controller.settings.enrolment_code_minutes))
    record(session, user, "device.enrolment_code", device.id, {"expires_at": issued.expires_at.isoformat()})
    uri = enrol_uri(controller.settings.resolved_public_url(), issued.code)
    return EnrolmentIssued(device_id=device.id, code=issued.code, expires_at=issued.expires_at, uri=uri,
                           qr_svg=qr_svg(uri))


@router.post("/devices/{device_id}/revoke")
def revoke_device(device_id: str, session: SessionDep, controller: ControllerDep,
                  user: TechnicianDep) -> DevicePublic:
    """Withdraws the device's broker access (its live connection is dropped) and its token, at once."""
    device = _device(session, device_id)
    revoke(session, device)
    record(session, user, "device.revoke", device.id)
    log.warning("device %s revoked by %s", device.id, user.username)
    _access_changed(session, controller, device)
    # Overwrites its retained "online" (the broker sends no will for a session a reload drops), so a
    # restarted controller does not read it back as online. Written with the revocation: published once it
    # commits, after a broker outage if need be.
    controller.outbox.send(session, StatusPayload(status=AgentStatus.OFFLINE, ts=now_ms()), device.id)
    return device_public(device)


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


@router.post("/enrol")
def enrol(body: EnrolRequest, request: Request, response: Response, session: SessionDep,
          controller: ControllerDep) -> EnrolmentIdentity:
    """Trades a valid code for the device's identity; rotates its token and broker password."""
    client = _client(request)
    wait = controller.enrol_limiter.retry_after(client)
    if wait:
        log.warning("enrolment from %s refused: too many failed attempts", client)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed enrolment attempts; wait",
                            headers={"Retry-After": str(wait)})
    try:
        device, secrets = redeem(session, body.code, datetime.now(UTC))
    except EnrolmentRefused as exc:
        controller.enrol_limiter.failed(client)
        log.warning("enrolment from %s refused (%s)", client, exc.reason)
        # Commit nothing; the refusal says why so a technician knows to ask for a new code.
        raise HTTPException(status.HTTP_403_FORBIDDEN, {"reason": exc.reason, "message": str(exc)}) from None
    profile: dict[str, Any] | None = None
    if device.board_profile is not None:
        try:
            profile = get_profile(device.board_profile).model_dump(mode="json")
        except ProfileError as exc:
            # The profile file went missing or bad since the device was created: enrol without it, loudly.
            log.error("device %s: board profile unusable: %s", device.id, exc)
    record(session, None, "device.enrol", device.id, {"client": client})
    _access_changed(session, controller, device)
    s = controller.settings
    ca: str | None = None
    if s.agent_mqtt_ca_file is not None:
        ca = s.agent_mqtt_ca_file.read_text(encoding="utf-8")
    log.info("device %s enrolled from %s", device.id, client)
    response.headers["Cache-Control"] = "no-store"
    return EnrolmentIdentity(
        agent_id=device.id, name=device.name, zones=list(device.zones), controller_url=s.resolved_public_url(),
        controller_public_key=controller.public_key_text, token=secrets.token,
        mqtt=MqttIdentity(host=s.agent_mqtt_host or s.mqtt_host, port=s.agent_mqtt_port or s.mqtt_port,
                          username=device.id, password=secrets.mqtt_password, tls=ca is not None,
                          ca_certificate=ca),
        board_profile=profile)
