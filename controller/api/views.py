"""Public views of stored rows: what the API answers and the console's pages show, built in one place.

Routes and pages both import from here (never from each other), so a field added to a view shows up in
both.
"""

from __future__ import annotations

from controller.api.schemas import DevicePublic
from controller.models import Device


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
