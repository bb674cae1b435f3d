"""Which stored files a device may download: only what the controller told it to play or show.

A device token opens ``GET /media/{sha256}`` for a file that is

- a standby alarm (every agent keeps those, whatever its zones);
- the audio of an announcement delivered to it (a command of its own, or a group command for its zones
  or for everyone: each agent reached has a :class:`~controller.storage.models.Delivery` row);
- named by a recording in the schedule window last built for it (plays and standby list alike);
- an image page in the sign playlist last built for it.

Everything else is "no such media", as for a file that does not exist, so a stolen token neither reads
another ward's bulletins nor learns which files exist. Each check is one indexed lookup: the deliveries
through ``ix_announcements_media_sha256`` and ``ix_deliveries_announcement_id``; the window and the
playlist are each one row by primary key, searched in the database for the file's exact ``"sha256":"…"``
member (the stored payloads are compact JSON, where that text can only be a key and its value: inside a
JSON string every quote is escaped), so a window of thousands of plays is never parsed in Python.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.storage.models import AgentSchedule, AgentSignPlaylist, Announcement, Delivery, MediaFile


def _member(sha256: str) -> str:
    """How a window or playlist names the file: ``"sha256":"<hex>"`` (both are ``separators=(",", ":")``)."""
    return f'"sha256":"{sha256}"'


def delivered_to(session: Session, device_id: str, sha256: str) -> bool:
    """Whether an announcement with this audio was sent to the device (alone, by zone or to everyone)."""
    found = session.scalar(select(Delivery.id)
                           .join(Announcement, Announcement.id == Delivery.announcement_id)
                           .where(Announcement.media_sha256 == sha256, Delivery.agent_id == device_id)
                           .limit(1))
    return found is not None


def in_window(session: Session, device_id: str, sha256: str) -> bool:
    """Whether the device's current schedule window names the file (a play's recording or a standby alarm)."""
    found = session.scalar(select(AgentSchedule.agent_id)
                           .where(AgentSchedule.agent_id == device_id,
                                  AgentSchedule.payload.contains(_member(sha256), autoescape=True)))
    return found is not None


def in_sign_playlist(session: Session, device_id: str, sha256: str) -> bool:
    """Whether the device's current sign playlist shows the file (an image page)."""
    found = session.scalar(select(AgentSignPlaylist.agent_id)
                           .where(AgentSignPlaylist.agent_id == device_id,
                                  AgentSignPlaylist.payload.contains(_member(sha256), autoescape=True)))
    return found is not None


def device_may_fetch(session: Session, device_id: str, media: MediaFile) -> bool:
    """Whether the device was given ``media`` to play or show; cheapest checks first, first yes wins."""
    return (media.standby
            or delivered_to(session, device_id, media.sha256)
            or in_window(session, device_id, media.sha256)
            or in_sign_playlist(session, device_id, media.sha256))
