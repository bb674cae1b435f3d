"""``POST /api/v1/devices/{id}/bundle.zip``: a first-boot bundle with a fresh enrolment code, for technicians.

A POST, not a GET: every bundle issues a new one-time code (and any unused older code of the device
stops working), so it must not be fetched by a prefetching browser or a link checker.
"""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from controller.api.deps import ControllerDep, SessionDep, TechnicianDep
from controller.audit import record
from controller.enrolment import issue_code
from controller.models import Device
from firmware_configs.cloud_init import DEFAULT_REPO, BundleError, BundleOptions, render, zip_bytes
from firmware_configs.profiles import ProfileError, get_profile

router = APIRouter(prefix="/api/v1/devices", tags=["enrolment"])


class BundleRequest(BaseModel):
    """What the bundle needs besides the device (its board profile unless another is named)."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = Field(default=None, max_length=63)
    hostname: str | None = Field(default=None, max_length=63)
    repo: str = Field(default=DEFAULT_REPO, max_length=500)
    wifi_ssid: str | None = Field(default=None, max_length=64)
    wifi_password: str | None = Field(default=None, max_length=63)


def _hostname(device_id: str) -> str:
    # Device ids may hold '_'; host names may not.
    return re.sub(r"[^a-z0-9-]", "-", device_id.lower()).strip("-")[:63] or "loa"


@router.post("/{device_id}/bundle.zip", response_class=Response,
             responses={200: {"content": {"application/zip": {}}}})
def device_bundle(device_id: str, body: BundleRequest, session: SessionDep, controller: ControllerDep,
                  user: TechnicianDep) -> Response:
    """cloud-init ``user-data``/``network-config``/``meta-data`` (zip) that install and enrol this device.

    404 unknown device; 422 no or unknown board profile, or a bad option (the message names it).
    """
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
    name = body.profile or device.board_profile
    if name is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "profile: the device has no board profile; name one")
    try:
        profile = get_profile(name)
    except ProfileError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"profile: {exc}") from None
    settings = controller.settings
    issued = issue_code(session, device, user.username, timedelta(minutes=settings.enrolment_code_minutes))
    try:
        files = render(profile, BundleOptions(
            controller_url=settings.resolved_public_url(), code=issued.code,
            hostname=body.hostname or _hostname(device.id), repo=body.repo,
            wifi_ssid=body.wifi_ssid, wifi_password=body.wifi_password))
    except BundleError as exc:
        # Raising rolls the session back: the code just issued is never stored.
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    record(session, user, "device.bundle", device.id,
           {"profile": profile.name, "expires_at": issued.expires_at.isoformat()})
    return Response(zip_bytes(files), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{device.id}-first-boot.zip"',
                             "Cache-Control": "no-store"})
