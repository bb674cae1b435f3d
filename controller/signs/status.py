"""What each sign shows: what its agent last reported, what the controller planned for now, and its latest
fault; and the ``sign.status`` events agents send (stored by the fleet recorder, faults logged here).
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.signs.playlists import playlist_entries
from controller.storage.models import Device, DeviceEvent, Sign
from devices.protocol import Envelope, SignStatus, now_ms

log = logging.getLogger(__name__)


def signs_now(session: Session, tz: ZoneInfo, wards: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Every sign (of ``wards``, None: all) with what its agent last said it shows and what the controller
    planned for now."""
    device_query = select(Device)
    sign_query = select(Sign).join(Device, Device.id == Sign.agent_id).order_by(Sign.id)
    if wards is not None:
        device_query = device_query.where(Device.ward_id.in_(wards))
        sign_query = sign_query.where(Device.ward_id.in_(wards))
    devices = {d.id: d for d in session.scalars(device_query)}
    planned = _planned_now(session, tz, wards)
    statuses: dict[str, list[DeviceEvent]] = {}
    out = []
    for sign in session.scalars(sign_query):
        device = devices.get(sign.agent_id)
        state = (device.state or {}) if device is not None else {}
        reported = next((s for s in state.get("signs", []) if s.get("sign") == sign.name), None)
        fault = _last_status(session, sign.agent_id, sign.name, statuses)
        out.append({"sign": sign, "ward": device.ward_id if device else "",
                    "agent_status": device.status if device else "unknown",
                    "reported": reported, "state_ts": state.get("ts"),
                    "playlist_version": state.get("sign_playlist_version"),
                    "planned": planned.get(sign.id), "last_fault": fault})
    return out


def _last_status(session: Session, agent_id: str, name: str,
                 cache: dict[str, list[DeviceEvent]]) -> dict[str, Any] | None:
    """The sign's latest ``sign.status`` if it is a fault (a recovery clears it)."""
    if agent_id not in cache:
        cache[agent_id] = list(session.scalars(
            select(DeviceEvent).where(DeviceEvent.agent_id == agent_id, DeviceEvent.type == "sign.status")
            .order_by(DeviceEvent.ts_ms.desc()).limit(200)))
    latest = next((e for e in cache[agent_id] if e.data.get("sign") == name), None)
    return None if latest is None or latest.data.get("ok") else dict(latest.data)


def _planned_now(session: Session, tz: ZoneInfo, wards: frozenset[str] | None) -> dict[str, dict[str, Any]]:
    """The entry each sign should show now (highest priority, then the latest start), by sign id."""
    now = now_ms()
    best: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for agent_id, entries in playlist_entries(session, tz, now, now + 1, None, wards).items():
        for entry in entries:
            for name in entry.signs:
                key = f"{agent_id}.{name}"
                rank = (entry.priority.rank, -entry.start_at)
                if key not in best or rank > best[key][:2]:
                    best[key] = (*rank, {"entry_id": entry.entry_id, "item_id": entry.item_id,
                                         "title": entry.title, "priority": entry.priority.value,
                                         "end_at": entry.end_at})
    return {k: v[2] for k, v in best.items()}


def record_sign_status(session: Session, device: Device, env: Envelope, data: Any) -> None:
    """``sign.status`` events: stored by the fleet recorder already; faults are logged for the operator."""
    if isinstance(data, SignStatus) and not data.ok:
        log.warning("agent %s: sign %s fault %s: %s", device.id, data.sign, data.code, data.message)
