"""Devices: the fleet's status, remote operations on one agent, and provisioning (register, enrolment
code with its QR, first-boot bundle, revoke) — for technicians.

Every change goes through the services the API's routes call too (controller/fleet/provisioning.py,
device_operations.py), so validation, the broker's accounts and the audit trail are the same as for
scripts; this module only turns their answers and refusals into fragments in the user's language. A
member of staff sees the devices of their wards (a device of another ward is "not found", as an unknown
id) and changes those of the wards where they are a technician.
"""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from controller.accounts.reach import NotInReach, check_ward, unit_tree, wards_of
from controller.api.deps import DatabaseDep, DeviceOperationsDep, ProvisioningDep, SessionDep, SettingsDep
from controller.api.schemas import DeviceCreate, DevicePublic, DeviceUpdate
from controller.api.views import device_public
from controller.fleet.device_operations import DeviceDisabled, UnknownOperation
from controller.fleet.provisioning import (
    TECHNICIAN_ROLES,
    BundleInvalid,
    BundleRequest,
    DeviceExists,
    DeviceNotFound,
    ProfileInvalid,
    ProvisioningService,
)
from controller.fleet.remote_ops import OPS, OpError
from controller.schedule.zones import ZoneOfOtherWard, ward_zones
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import Device, User
from controller.web.forms import field_errors
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.pages.map import location_context, location_form
from controller.web.session import ConsoleTechnicianDep
from controller.web.templating import AGENT_STATUS_LABELS, render
from firmware_configs.profiles import ProfileError, list_profiles

router = APIRouter(prefix="/console", include_in_schema=False)

#: How long the page waits for an agent's reply; the operation's own expiry on the agent is longer.
OP_WAIT_S = 10.0

#: The console's operation buttons → the form fields each one sends (the rest are fixed in the template).
_OP_FIELDS: dict[str, tuple[str, ...]] = {
    "volume": ("volume",),
    "tone": ("frequency_hz", "duration_ms"),
    "amp": ("on",),
    "logs": ("lines",),
    "restart": (),
    "reload": (),
}
#: Operations with a form of their own, where a bad value is shown under its field.
_FORM_OPS = frozenset({"volume", "tone"})
#: Why an operation could not be asked for (controller/fleet/remote_ops.py's codes) → a sentence for staff.
_OP_ERROR_TEXT: dict[str, str] = {
    "unknown_op": N_("There is no such device."),
    "busy": N_("The controller cannot reach the message broker right now."),
    "link_down": N_("The controller cannot reach the message broker right now."),
    "timeout": N_("The device did not answer in time. It may be offline or busy."),
}

#: What an agent's refusal starts with (edge_agent/remote_ops.py) → a sentence for staff.
_AGENT_ERRORS: dict[str, str] = {
    "no_amplifier": N_("This device has no amplifier relay in its configuration."),
    "busy": N_("The amplifier is in use by a broadcast; try again when it ends."),
    "gpio_error": N_("The amplifier relay could not be switched (a wiring or permission fault)."),
    "unsupported": N_("This agent was not started from a configuration file, so it cannot reload one."),
    "config_invalid": N_("The configuration file has an error; the device keeps the running configuration."),
    "io_error": N_("The device could not save the setting (its storage may be full or read-only)."),
    "duplicate": N_("The device already received this command."),
}


def agent_error_text(error: str | None) -> str:
    """The msgid explaining an agent's refusal (its own text is shown beside it as the detail)."""
    code = (error or "").split(":", 1)[0].strip()
    return _AGENT_ERRORS.get(code, N_("The device refused the operation."))


def split_zones(checked: list[str], extra: str) -> list[str]:
    """Zones from a form: the ticked known zones and any typed in (separated by commas or spaces), in order,
    each once. Validation (the zone pattern) is left to the API's model, so errors say which is wrong."""
    typed = [part for part in re.split(r"[,\s]+", extra.strip()) if part]
    return list(dict.fromkeys([*checked, *typed]))


def zone_choices(session: SessionDep, wards: frozenset[str], *also: list[str]) -> list[str]:
    """The zones a form offers as checkboxes: every zone of ``wards`` and those in ``also`` (already chosen)."""
    found = set(ward_zones(session, wards))
    for zones in also:
        found.update(zones)
    return sorted(found)


def _get_device(session: SessionDep, devices: ProvisioningService, device_id: str, user: User,
                roles: tuple[str, ...] | None = None) -> Device:
    try:
        return devices.reachable(session, user, device_id, roles)
    except DeviceNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None


def _devices(session: SessionDep, devices: ProvisioningService, user: User) -> list[DevicePublic]:
    return [device_public(d) for d in devices.visible_devices(session, user)]


def _ward_choices(session: SessionDep, user: User) -> list[tuple[str, str]]:
    """The wards a technician may register a device in, with their names (a choice only with several)."""
    names = unit_tree(session).name
    return [(w, names.get(w, w)) for w in sorted(wards_of(session, user, TECHNICIAN_ROLES))]


def _profiles() -> list[tuple[str, str]]:
    # A broken profile file must not take the page down: the API refuses it when it is chosen.
    try:
        return [(p.name, p.title) for p in list_profiles()]
    except (ProfileError, OSError):
        return []


def _register_context(session: SessionDep, user: User, settings: Settings, values: dict[str, Any] | None = None,
                      errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    wards = _ward_choices(session, user)
    values = values or {"id": "", "name": "", "zones": [], "zones_extra": "", "board_profile": "", "ward": "",
                        "lat": "", "lon": ""}
    ward_ids = frozenset(w for w, _n in wards)
    return {"values": values, "errors": errors or {}, "zone_choices": zone_choices(session, ward_ids),
            "profiles": _profiles(), "status_labels": AGENT_STATUS_LABELS, "ward_choices": wards,
            **location_context(settings, session, ward_ids, values["lat"], values["lon"])}


@router.get("/devices")
def devices_page(request: Request, session: SessionDep, devices: ProvisioningDep, settings: SettingsDep,
                 user: ConsoleTechnicianDep) -> Response:
    """Every agent of the user's wards with its status, and the form registering a new one."""
    return render(request, "devices/index.html",
                  {"devices": _devices(session, devices, user), **_register_context(session, user, settings)})


@router.get("/devices/table")
def devices_table(request: Request, session: SessionDep, devices: ProvisioningDep,
                  user: ConsoleTechnicianDep) -> Response:
    """The fleet table alone (the page fetches it again when the fleet changes)."""
    return render(request, "devices/_table.html",
                  {"devices": _devices(session, devices, user), "status_labels": AGENT_STATUS_LABELS})


@router.post("/devices")
def devices_register(request: Request, session: SessionDep, devices: ProvisioningDep, settings: SettingsDep,
                     user: ConsoleTechnicianDep,
                     id: Annotated[str, Form(max_length=200)] = "",
                     name: Annotated[str, Form(max_length=1000)] = "",
                     zones: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006 - FastAPI copies it
                     zones_extra: Annotated[str, Form(max_length=4000)] = "",
                     board_profile: Annotated[str, Form(max_length=200)] = "",
                     ward: Annotated[str, Form(max_length=200)] = "",
                     lat: Annotated[str, Form(max_length=100)] = "",
                     lon: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Registers an agent (as ``POST /api/v1/devices``) and shows its secrets once."""
    values = {"id": id, "name": name, "zones": zones, "zones_extra": zones_extra, "board_profile": board_profile,
              "ward": ward, "lat": lat, "lon": lon}
    with speaking_to(request):
        location, location_errors = location_form(lat, lon)
        try:
            body = DeviceCreate.model_validate({
                "id": id.strip(), "name": name.strip(), "zones": split_zones(zones, zones_extra),
                "board_profile": board_profile or None, "ward": ward or None, **location})
        except ValidationError as exc:
            return render(request, "devices/_register.html",
                          _register_context(session, user, settings, values, {**field_errors(exc), **location_errors}),
                          status_code=422)
        if location_errors:
            return render(request, "devices/_register.html",
                          _register_context(session, user, settings, values, location_errors), status_code=422)
        try:
            registered = devices.register(session, body, user)
        except (DeviceExists, ProfileInvalid, ZoneOfOtherWard) as exc:
            if isinstance(exc, DeviceExists):
                errors = {"id": [gettext("This id is already taken.")]}
            elif isinstance(exc, ZoneOfOtherWard):
                errors = {"zones": [gettext("This zone id is taken by another ward.")]}
            else:
                errors = {"board_profile": [gettext("There is no such board profile.")]}
            return render(request, "devices/_register.html",
                          _register_context(session, user, settings, values, errors), status_code=422)
    # The table listens for this event and fetches itself again.
    return render(request, "devices/_registered.html", {"registered": registered},
                  headers={"HX-Trigger": "devices-changed"})


def _device_context(session: SessionDep, device: Device) -> dict[str, Any]:
    public = device_public(device)
    return {"device": public, "status_labels": AGENT_STATUS_LABELS, "profiles": _profiles(),
            "zone_choices": zone_choices(session, frozenset({device.ward_id}), list(device.zones)), "errors": {},
            "values": {"name": device.name, "zones": list(device.zones), "zones_extra": ""},
            "volume": (device.state or {}).get("volume"), "op_errors": {}, "op_values": {}}


@router.get("/devices/{device_id}")
def device_page(device_id: str, request: Request, session: SessionDep, devices: ProvisioningDep,
                settings: SettingsDep, user: ConsoleTechnicianDep) -> Response:
    """One agent: its status, remote operations, zones, location and provisioning."""
    device = _get_device(session, devices, device_id, user)
    return render(request, "devices/device.html",
                  {**_device_context(session, device),
                   **location_context(settings, session, {device.ward_id}, device.lat, device.lon)})


@router.get("/devices/{device_id}/status")
def device_status(device_id: str, request: Request, session: SessionDep, devices: ProvisioningDep,
                  user: ConsoleTechnicianDep) -> Response:
    """The agent's status block alone (fetched again when the fleet changes)."""
    device = _get_device(session, devices, device_id, user)
    return render(request, "devices/_status.html", _device_context(session, device))


def _op_body(op: str, form: dict[str, str]) -> dict[str, Any]:
    # An empty box means "the operation's default"; the model validates (and converts) the rest.
    return {name: form[name] for name in _OP_FIELDS[op] if form.get(name, "").strip() != ""}


@router.post("/devices/{device_id}/ops/{op}")
async def device_op(device_id: str, op: str, request: Request, session: SessionDep, db: DatabaseDep,
                    operations: DeviceOperationsDep, user: ConsoleTechnicianDep) -> Response:
    """Runs a remote operation (as ``POST /api/v1/devices/{id}/ops/{op}``) and shows the agent's answer.

    A bad value goes back to its form with the error under the field (422); everything else — the reply,
    a refusal, no answer in time — is shown in the page's result area.
    """
    if op not in OPS or op not in _OP_FIELDS:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    raw = await request.form()
    form = {key: str(value)[:200] for key, value in raw.items() if isinstance(value, str)}
    body = _op_body(op, form)
    with speaking_to(request):
        try:
            OPS[op][1].model_validate(body)
        except ValidationError as exc:
            if op not in _FORM_OPS:  # the buttons send fixed values: only a hand-made request gets here
                return render(request, "devices/_op_result.html", {"outcome": {
                    "op": op, "status": "failed", "message": N_("The operation was refused.")}}, status_code=422)
            device = await run_in_threadpool(_read_device, db, device_id, user)
            if device is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND) from None
            context = {"device": device, "op_errors": {op: field_errors(exc)}, "op_values": {op: form},
                       "volume": form.get("volume")}
            return render(request, f"devices/_op_{op}.html", context, status_code=422,
                          headers={"HX-Retarget": f"#op-{op}", "HX-Reswap": "outerHTML"})
    outcome: dict[str, Any] = {"op": op}
    try:
        result = await operations.run(session, device_id, op, body or None, user, OP_WAIT_S)
    except (DeviceNotFound, UnknownOperation):
        outcome.update(status="failed", message=N_("There is no such device."))
    except DeviceDisabled:
        outcome.update(status="failed", message=N_("This device is revoked: enrol it again before operating it."))
    except OpError as exc:
        outcome.update(status="failed", message=_OP_ERROR_TEXT.get(exc.code, N_("The operation was refused.")))
    else:
        reply = result.reply
        outcome.update(status=reply.status, error=reply.error, data=reply.data or {},
                       command_id=result.command_id, message=agent_error_text(reply.error))
    return render(request, "devices/_op_result.html", {"outcome": outcome})


def _read_device(db: Database, device_id: str, user: User) -> DevicePublic | None:
    """The device's public view in a session of its own (for the async operation route's worker thread);
    None for an unknown device or one of a ward ``user`` cannot see."""
    with db.session() as session:
        device = session.get(Device, device_id)
        if device is None:
            return None
        try:
            check_ward(session, user, device.ward_id, None, "")
        except NotInReach:
            return None
        return device_public(device)


@router.patch("/devices/{device_id}")
def device_update(device_id: str, request: Request, session: SessionDep, devices: ProvisioningDep,
                  settings: SettingsDep, user: ConsoleTechnicianDep,
                  name: Annotated[str, Form(max_length=1000)] = "",
                  zones: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006 - FastAPI copies it
                  zones_extra: Annotated[str, Form(max_length=4000)] = "",
                  location: Annotated[str, Form(max_length=10)] = "",
                  lat: Annotated[str, Form(max_length=100)] = "",
                  lon: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Renames the agent, sets its zones and its location (as ``PATCH /api/v1/devices/{id}``).

    The location changes only when the form has its boxes (``location=1``; both empty: no location): an
    empty box arrives as no field at all."""
    device = _get_device(session, devices, device_id, user, TECHNICIAN_ROLES)
    values = {"name": name, "zones": zones, "zones_extra": zones_extra}
    given = location == "1"
    point, location_errors = location_form(lat, lon) if given else ({}, {})

    def form(errors: dict[str, list[str]], shown: Device, status_code: int = 422) -> Response:
        where = (lat, lon) if given else (shown.lat, shown.lon)
        context = {**_device_context(session, shown), "values": values, "errors": errors,
                   **location_context(settings, session, {shown.ward_id}, *where)}
        return render(request, "devices/_zones.html", context, status_code=status_code)

    with speaking_to(request):
        try:
            body = DeviceUpdate.model_validate({"name": name.strip(), "zones": split_zones(zones, zones_extra),
                                                **point})
        except ValidationError as exc:
            return form({**field_errors(exc), **location_errors}, device)
        if location_errors:
            return form(location_errors, device)
        try:
            devices.update(session, device_id, body, user)
        except ZoneOfOtherWard:
            session.rollback()
            device = _get_device(session, devices, device_id, user, TECHNICIAN_ROLES)
            return form({"zones": [gettext("This zone id is taken by another ward.")]}, device)
    session.flush()
    context = {**_device_context(session, device), "saved": True,
               **location_context(settings, session, {device.ward_id}, device.lat, device.lon)}
    return render(request, "devices/_zones.html", context, headers={"HX-Trigger": "devices-changed"})


@router.post("/devices/{device_id}/enrolment")
def device_enrolment(device_id: str, request: Request, session: SessionDep, devices: ProvisioningDep,
                     user: ConsoleTechnicianDep) -> Response:
    """A one-time enrolment code and its QR code (as ``POST /api/v1/devices/{id}/enrolment``)."""
    _get_device(session, devices, device_id, user, TECHNICIAN_ROLES)
    issued = devices.issue_enrolment(session, device_id, user)
    qr = "data:image/svg+xml;base64," + base64.b64encode(issued.qr_svg.encode()).decode()
    return render(request, "devices/_enrolment.html", {"issued": issued, "qr": qr})


@router.post("/devices/{device_id}/revoke")
def device_revoke(device_id: str, request: Request, session: SessionDep, devices: ProvisioningDep,
                  user: ConsoleTechnicianDep) -> Response:
    """Withdraws the device's broker access and token (as ``POST /api/v1/devices/{id}/revoke``)."""
    _get_device(session, devices, device_id, user, TECHNICIAN_ROLES)
    devices.revoke(session, device_id, user)
    # The whole page changes (no operations on a revoked device): load it again.
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/devices/{device_id}/bundle")
def device_bundle_download(device_id: str, request: Request, session: SessionDep, devices: ProvisioningDep,
                           user: ConsoleTechnicianDep,
                           profile: Annotated[str, Form(max_length=200)] = "",
                           hostname: Annotated[str, Form(max_length=200)] = "",
                           wifi_ssid: Annotated[str, Form(max_length=200)] = "",
                           wifi_password: Annotated[str, Form(max_length=200)] = "") -> Response:
    """The first-boot bundle (zip, as ``POST /api/v1/devices/{id}/bundle.zip``), or the form with errors.

    The page's script sends this with fetch() and saves the zip, since htmx cannot download a file.
    """
    device = _get_device(session, devices, device_id, user, TECHNICIAN_ROLES)
    values = {"profile": profile, "hostname": hostname, "wifi_ssid": wifi_ssid}
    context: dict[str, Any] = {"device": device_public(device), "profiles": _profiles(), "bundle_values": values}
    with speaking_to(request):
        try:
            body = BundleRequest(profile=profile or None, hostname=hostname.strip() or None,
                                 wifi_ssid=wifi_ssid or None, wifi_password=wifi_password or None)
        except ValidationError as exc:
            return render(request, "devices/_bundle.html", {**context, "bundle_errors": field_errors(exc)},
                          status_code=422)
        try:
            bundle = devices.bundle(session, device_id, body, user)
        except BundleInvalid as exc:
            field, message = _bundle_error(str(exc))
            return render(request, "devices/_bundle.html",
                          {**context, "bundle_errors": {field: [gettext(message)]}}, status_code=422)
    return Response(bundle.data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{bundle.filename}"',
                             "Cache-Control": "no-store"})


def _bundle_error(detail: str) -> tuple[str, str]:
    """The form field and message (msgid) for a refused bundle, whose message starts with the field."""
    field = detail.split(":", 1)[0].strip()
    if field == "hostname":
        return field, N_("Not a host name: use a-z, 0-9 and '-', at most 63 characters.")
    if field == "wifi_password":
        return field, N_("A Wi-Fi password has 8 to 63 characters.")
    if field == "wifi_ssid":
        if "not Wi-Fi" in detail:
            return field, N_("This board profile does not use Wi-Fi: leave the network name empty.")
        return field, N_("This board connects over Wi-Fi: enter the network's name.")
    if "no board profile" in detail:
        return "profile", N_("Choose a board profile for this device.")
    return "profile", N_("There is no such board profile.")
