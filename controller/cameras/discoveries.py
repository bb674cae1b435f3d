"""What agents report finding on their LAN (``camera.discovered``), kept per agent and endpoint."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.storage.models import CameraDiscovery, Device, utcnow
from devices.protocol import CameraDiscovered, Envelope

log = logging.getLogger(__name__)


def record_discovered(session: Session, device: Device, env: Envelope, data: Any) -> None:
    """Upserts one row per camera the agent found (runs in the fleet worker, inside its transaction)."""
    assert isinstance(data, CameraDiscovered)
    now = utcnow()
    for found in data.cameras:
        row = session.scalar(select(CameraDiscovery).where(CameraDiscovery.agent_id == device.id,
                                                           CameraDiscovery.endpoint == found.endpoint))
        if row is None:
            row = CameraDiscovery(agent_id=device.id, endpoint=found.endpoint, first_seen_at=now)
            session.add(row)
        row.ward_id = device.ward_id  # what an agent finds belongs to its ward
        row.host = found.host
        row.xaddrs = list(found.xaddrs)
        row.scopes = list(found.scopes)
        row.types = list(found.types)
        row.last_seen_at = now
    log.info("agent %s found %d ONVIF camera(s) (part %d/%d, %d malformed answers skipped)",
             device.id, len(data.cameras), data.part, data.parts, data.skipped)
