"""Provisioning agents: register, rename or move them, give them enrolment codes and first-boot bundles,
let a Pi trade its code for its identity, and revoke them.

The API's routes (controller/api/devices.py, enrolment.py, bundle.py) and the console's devices page
call this service alike, so validation, the broker's accounts and the audit trail are the same whoever
asks. Each change says what happened (:class:`~controller.messaging.events.DeviceChanged`) once the
request's transaction commits; the broker's password and ACL files, the agent's schedule window and its
sign playlists follow from there (controller/runtime.py). Refusals are exceptions naming the reason;
the callers turn them into an HTTP status or a message next to a form field.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controller.accounts.audit_chain import record
from controller.accounts.reach import NotInReach, check_ward, ward_for_new, wards_of
from controller.api.schemas import DeviceCreate, DeviceRegistered, DeviceUpdate
from controller.api.views import device_public
from controller.fleet.enrolment import (
    AttemptLimiter,
    EnrolmentRefused,
    enrol_uri,
    issue_code,
    qr_svg,
    redeem,
    revoke,
    rotate_credentials,
)
from controller.fleet.groups import send_groups
from controller.messaging.events import DeviceChanged, EventBus
from controller.messaging.outbox import Outbox
from controller.schedule.zones import claim_zones
from controller.settings import Settings
from controller.storage.models import Device, EnrolmentCode, User
from devices.enrolment import EnrolmentIdentity, MqttIdentity
from devices.protocol import AgentStatus, StatusPayload, now_ms
from firmware_configs.cloud_init import DEFAULT_REPO, BundleError, BundleOptions, render, zip_bytes
from firmware_configs.profiles import BoardProfile, ProfileError, get_profile

log = logging.getLogger(__name__)

#: Who registers, changes, enrols, revokes and operates devices (admins count as every role).
TECHNICIAN_ROLES: tuple[str, ...] = ("technician",)


class DeviceNotFound(LookupError):
    """No device with that id."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"no device {device_id!r}")


class DeviceExists(Exception):
    """The id is taken (by a device, or by the controller's own broker account)."""


class ProfileInvalid(ValueError):
    """The board profile named does not exist or cannot be read."""


class BundleInvalid(ValueError):
    """A first-boot bundle cannot be made; the message starts with the field at fault (``hostname: …``)."""


class EnrolmentThrottled(Exception):
    """Too many failed enrolment attempts from this client (or overall); ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed enrolment attempts; wait")
        self.retry_after = retry_after


class EnrolmentIssued(BaseModel):
    """A fresh code, shown once; the technician types it or scans the QR code on the Pi."""

    device_id: str
    code: str = Field(description="XXXX-XXXX, single use")
    expires_at: datetime
    uri: str = Field(description="what the QR code holds: loaphuong://enrol?controller=…&code=…")
    qr_svg: str = Field(description="the QR code as an SVG document")


class BundleRequest(BaseModel):
    """What the bundle needs besides the device (its board profile unless another is named)."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = Field(default=None, max_length=63)
    hostname: str | None = Field(default=None, max_length=63)
    repo: str = Field(default=DEFAULT_REPO, max_length=500)
    wifi_ssid: str | None = Field(default=None, max_length=64)
    wifi_password: str | None = Field(default=None, max_length=63)


@dataclass(frozen=True, slots=True)
class Bundle:
    """A first-boot bundle: the zip and the name to save it under."""

    filename: str
    data: bytes


def _profile(name: str) -> BoardProfile:
    try:
        return get_profile(name)
    except ProfileError as exc:
        raise ProfileInvalid(str(exc)) from None


def default_location(device: Device, profile: BoardProfile | None) -> None:
    """Places a device that has no location at its board profile's default one (if the profile has one)."""
    if device.lat is None and profile is not None and profile.location is not None:
        device.lat, device.lon = profile.location.lat, profile.location.lon


def agent_profile(profile: BoardProfile) -> dict[str, Any]:
    """The board profile as an enrolling agent receives it: without its default location, which is the
    controller's (for the map), and which an agent of an older version would refuse as a key it does not know."""
    return profile.model_dump(mode="json", exclude={"location"})


def _location_detail(device: Device) -> dict[str, float | None]:
    return {"lat": device.lat, "lon": device.lon}


def _hostname(device_id: str) -> str:
    # Device ids may hold '_'; host names may not.
    return re.sub(r"[^a-z0-9-]", "-", device_id.lower()).strip("-")[:63] or "loa"


class ProvisioningService:
    """The device registry as technicians (and enrolling Pis) change it. Every method blocks (database)."""

    def __init__(self, settings: Settings, events: EventBus, outbox: Outbox, limiter: AttemptLimiter,
                 public_key_text: str) -> None:
        self.settings = settings
        self.events = events
        self.outbox = outbox
        #: Failed enrolment attempts per client address (codes are short: guessing must be slow).
        self.limiter = limiter
        self.public_key_text = public_key_text

    def get(self, session: Session, device_id: str) -> Device:
        """The device, or :class:`DeviceNotFound` (whoever asks: for the controller's own work)."""
        device = session.get(Device, device_id)
        if device is None:
            raise DeviceNotFound(device_id)
        return device

    def reachable(self, session: Session, user: User, device_id: str,
                  roles: tuple[str, ...] | None = None) -> Device:
        """The device, if ``user`` may see it (and holds one of ``roles`` in its ward, when given).

        A device of a ward the user cannot see is :class:`DeviceNotFound`, the very answer an unknown id
        gets; one they see without the role there is :class:`~controller.accounts.reach.OutsideRole`.
        """
        device = self.get(session, device_id)
        try:
            check_ward(session, user, device.ward_id, roles, "")
        except NotInReach:
            raise DeviceNotFound(device_id) from None
        return device

    def list_devices(self, session: Session, wards: frozenset[str] | None = None) -> list[Device]:
        """The registered devices of ``wards`` (every one when None), by id."""
        query = select(Device).order_by(Device.id)
        if wards is not None:
            query = query.where(Device.ward_id.in_(wards))
        return list(session.scalars(query))

    def visible_devices(self, session: Session, user: User) -> list[Device]:
        """The devices of the wards ``user`` can see, by id."""
        return self.list_devices(session, wards_of(session, user))

    # register and change ---------------------------------------------------------------------------

    def register(self, session: Session, body: DeviceCreate, user: User) -> DeviceRegistered:
        """Registers an agent; its token and broker password are in the answer, once."""
        if session.get(Device, body.id) is not None:
            raise DeviceExists(f"device {body.id!r} already exists")
        if body.id == self.settings.mqtt_username:
            raise DeviceExists(f"{body.id!r} is the controller's broker account")
        profile = _profile(body.board_profile) if body.board_profile is not None else None
        ward = ward_for_new(session, user, body.ward, TECHNICIAN_ROLES)
        zones = list(dict.fromkeys(body.zones))
        claim_zones(session, ward, zones)
        device = Device(id=body.id, ward_id=ward, name=body.name, zones=zones, token_hash="",
                        board_profile=body.board_profile, lat=body.lat, lon=body.lon)
        default_location(device, profile)
        secrets = rotate_credentials(device)
        session.add(device)
        record(session, user, "device.register", body.id, {"zones": device.zones, "board_profile": body.board_profile,
                                                            **_location_detail(device)}, unit=ward)
        session.flush()
        # A new agent gets its broker account and its window (its zones may already have items).
        self.events.publish(DeviceChanged(frozenset({body.id}), access=True, reach=True), session)
        s = self.settings
        return DeviceRegistered(device=device_public(device), token=secrets.token,
                                controller_public_key=self.public_key_text,
                                controller_url=s.resolved_public_url(), mqtt_host=s.mqtt_host, mqtt_port=s.mqtt_port,
                                mqtt_username=device.id, mqtt_password=secrets.mqtt_password)

    def update(self, session: Session, device_id: str, body: DeviceUpdate, user: User) -> Device:
        """Renames an agent, moves it between zones or wards, or changes its board profile.

        New zones change what it may read on the broker (its ACL) and what reaches it (its window, its
        sign playlists); they must be zones of its ward. A move to another ward (:meth:`_move`) comes first,
        so zones named with it are the new ward's.
        """
        device = self.reachable(session, user, device_id, TECHNICIAN_ROLES)
        profile = _profile(body.board_profile) if body.board_profile is not None else None
        moved = body.ward is not None and body.ward != device.ward_id
        if moved:
            assert body.ward is not None
            self._move(session, device, body.ward, user)
        if body.board_profile is not None:
            device.board_profile = body.board_profile
        if body.name is not None:
            device.name = body.name
        if body.location_given():
            device.lat, device.lon = body.lat, body.lon
        else:
            default_location(device, profile)
        zones_changed = body.zones is not None and list(dict.fromkeys(body.zones)) != list(device.zones)
        if body.zones is not None:
            claim_zones(session, device.ward_id, body.zones)
            device.zones = list(dict.fromkeys(body.zones))
        detail = body.model_dump(exclude_none=True, exclude={"lat", "lon"})
        if body.location_given():
            detail.update(_location_detail(device))  # a cleared location is recorded too (as nulls)
        record(session, user, "device.update", device.id, detail, unit=device.ward_id)
        if zones_changed and not moved:
            # It listens on its zones' group topics: told now (a moved device is enrolled again, with its ward).
            send_groups(self.outbox, session, device, self.settings.command_ttl_ms)
        changed = zones_changed or moved
        self.events.publish(DeviceChanged(frozenset({device_id}), access=changed, reach=changed), session)
        return device

    def _move(self, session: Session, device: Device, ward: str, user: User) -> None:
        """Hands the device over to ``ward``: the caller must be a technician there too.

        Its zones were the old ward's, so they are cleared; its token and broker password are rotated (and
        unused enrolment codes voided), so whatever the old ward configured stops working at the broker
        and it must be enrolled again for the new ward. Both wards' audit trails say so.
        """
        check_ward(session, user, ward, TECHNICIAN_ROLES, f"ward {ward} not found")
        old = device.ward_id
        detail = {"from": old, "to": ward, "zones_cleared": list(device.zones)}
        device.ward_id = ward
        device.zones = []
        now = datetime.now(UTC)
        session.execute(update(EnrolmentCode).where(EnrolmentCode.device_id == device.id,
                                                    EnrolmentCode.used_at.is_(None)).values(used_at=now))
        if device.revoked_at is None:
            # The new secrets are shown to nobody: the new ward's technician enrols it (a fresh code).
            rotate_credentials(device)
            # The broker drops its session on the reload without a will; the registry and its retained status say
            # offline, as for a revocation.
            device.status = "offline"
            device.status_changed_at = now
            self._say_offline(session, device.id)
        record(session, user, "device.move", device.id, detail, unit=old)
        record(session, user, "device.move", device.id, detail, unit=ward)
        log.warning("device %s moved from ward %s to %s by %s; credentials rotated", device.id, old, ward,
                    user.username)

    # enrolment -------------------------------------------------------------------------------------

    def issue_enrolment(self, session: Session, device_id: str, user: User) -> EnrolmentIssued:
        """A one-time enrolment code for a device (any older unused code of it stops working)."""
        device = self.reachable(session, user, device_id, TECHNICIAN_ROLES)
        issued = issue_code(session, device, user.username, timedelta(minutes=self.settings.enrolment_code_minutes))
        record(session, user, "device.enrolment_code", device.id, {"expires_at": issued.expires_at.isoformat()},
               unit=device.ward_id)
        uri = enrol_uri(self.settings.resolved_public_url(), issued.code)
        return EnrolmentIssued(device_id=device.id, code=issued.code, expires_at=issued.expires_at, uri=uri,
                               qr_svg=qr_svg(uri))

    def bundle(self, session: Session, device_id: str, body: BundleRequest, user: User) -> Bundle:
        """cloud-init files (zipped) that install and enrol this device, with a fresh enrolment code.

        :class:`BundleInvalid` names the field at fault; raising rolls the session back, so the code just
        issued is never stored.
        """
        device = self.reachable(session, user, device_id, TECHNICIAN_ROLES)
        name = body.profile or device.board_profile
        if name is None:
            raise BundleInvalid("profile: the device has no board profile; name one")
        try:
            profile = get_profile(name)
        except ProfileError as exc:
            raise BundleInvalid(f"profile: {exc}") from None
        settings = self.settings
        issued = issue_code(session, device, user.username, timedelta(minutes=settings.enrolment_code_minutes))
        try:
            files = render(profile, BundleOptions(
                controller_url=settings.resolved_public_url(), code=issued.code,
                hostname=body.hostname or _hostname(device.id), repo=body.repo,
                wifi_ssid=body.wifi_ssid, wifi_password=body.wifi_password))
        except BundleError as exc:
            raise BundleInvalid(str(exc)) from None
        record(session, user, "device.bundle", device.id,
               {"profile": profile.name, "expires_at": issued.expires_at.isoformat()}, unit=device.ward_id)
        return Bundle(f"{device.id}-first-boot.zip", zip_bytes(files))

    def enrol(self, session: Session, code: str, client: str) -> EnrolmentIdentity:
        """Trades a valid code for the device's identity, rotating its token and broker password.

        :class:`EnrolmentThrottled` when ``client`` (or everyone) failed too often lately;
        :class:`~controller.fleet.enrolment.EnrolmentRefused` for a code that cannot be used (counted as a failure).
        """
        wait = self.limiter.retry_after(client)
        if wait:
            log.warning("enrolment from %s refused: too many failed attempts", client)
            raise EnrolmentThrottled(wait)
        try:
            device, secrets = redeem(session, code, datetime.now(UTC))
        except EnrolmentRefused as exc:
            self.limiter.failed(client)
            log.warning("enrolment from %s refused (%s)", client, exc.reason)
            raise
        profile: dict[str, Any] | None = None
        if device.board_profile is not None:
            try:
                board = get_profile(device.board_profile)
                default_location(device, board)
                profile = agent_profile(board)
            except ProfileError as exc:
                # The profile file went missing or bad since the device was created: enrol without it, loudly.
                log.error("device %s: board profile unusable: %s", device.id, exc)
        record(session, None, "device.enrol", device.id, {"client": client}, unit=device.ward_id)
        self._access_changed(session, device)
        s = self.settings
        ca = s.agent_mqtt_ca_file.read_text(encoding="utf-8") if s.agent_mqtt_ca_file is not None else None
        log.info("device %s enrolled from %s", device.id, client)
        return EnrolmentIdentity(
            agent_id=device.id, name=device.name, ward=device.ward_id, zones=list(device.zones),
            controller_url=s.resolved_public_url(),
            controller_public_key=self.public_key_text, token=secrets.token,
            mqtt=MqttIdentity(host=s.agent_mqtt_host or s.mqtt_host, port=s.agent_mqtt_port or s.mqtt_port,
                              username=device.id, password=secrets.mqtt_password, tls=ca is not None,
                              ca_certificate=ca),
            board_profile=profile)

    # revocation ------------------------------------------------------------------------------------

    def revoke(self, session: Session, device_id: str, user: User) -> Device:
        """Withdraws the device's broker access (its live connection is dropped) and its token, at once."""
        device = self.reachable(session, user, device_id, TECHNICIAN_ROLES)
        revoke(session, device)
        record(session, user, "device.revoke", device.id, unit=device.ward_id)
        log.warning("device %s revoked by %s", device.id, user.username)
        self._access_changed(session, device)
        self._say_offline(session, device.id)
        return device

    def _say_offline(self, session: Session, device_id: str) -> None:
        """Overwrites the revoked device's retained "online" status.

        The broker sends no will for a session a reload drops, so without this a restarted controller would
        read the old "online" back. Written with the revocation: published once it commits, after a broker
        outage if need be.
        """
        self.outbox.send(session, StatusPayload(status=AgentStatus.OFFLINE, ts=now_ms()), device_id)

    def _access_changed(self, session: Session, device: Device) -> None:
        # Its broker password changed, and it was enabled or disabled: what reaches it follows (a rebuild that
        # changes nothing sends nothing).
        self.events.publish(DeviceChanged(frozenset({device.id}), access=True, reach=True), session)
