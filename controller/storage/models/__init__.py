"""Database tables, one module per concern; every table and helper is imported from here.

Times from the protocol stay integer milliseconds; bookkeeping times are UTC.
"""

from controller.storage.models.accounts import ROLES, ApiToken, AuditEvent, User
from controller.storage.models.base import Base, UTCDateTime, utcnow
from controller.storage.models.broadcasts import (
    Announcement,
    Delivery,
    GivenPlay,
    GroupCommand,
    LiveSession,
    MediaFile,
    Play,
)
from controller.storage.models.cameras import Camera, CameraDiscovery, CameraEvent
from controller.storage.models.fleet import Device, DeviceEvent, EnrolmentCode, OutboxMessage
from controller.storage.models.schedule import AgentSchedule, ScheduleItem, Zone
from controller.storage.models.signs import AgentSignPlaylist, Sign, SignContent, SignItem

__all__ = [
    "ROLES",
    "AgentSchedule",
    "AgentSignPlaylist",
    "Announcement",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Camera",
    "CameraDiscovery",
    "CameraEvent",
    "Delivery",
    "Device",
    "DeviceEvent",
    "EnrolmentCode",
    "GivenPlay",
    "GroupCommand",
    "LiveSession",
    "MediaFile",
    "OutboxMessage",
    "Play",
    "ScheduleItem",
    "Sign",
    "SignContent",
    "SignItem",
    "UTCDateTime",
    "User",
    "Zone",
    "utcnow",
]
