"""Database tables, one module per concern; every table and helper is imported from here.

Times from the protocol stay integer milliseconds; bookkeeping times are UTC.
"""

from controller.storage.models.accounts import ROLES, SOURCE_ROLE, ApiToken, AuditEvent, User
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
from controller.storage.models.city import CityBroadcast
from controller.storage.models.fleet import Device, DeviceEvent, EnrolmentCode, OutboxMessage
from controller.storage.models.history import DeviceStatusChange
from controller.storage.models.schedule import AgentSchedule, ScheduleItem, Zone
from controller.storage.models.signs import AgentSignPlaylist, Sign, SignContent, SignItem
from controller.storage.models.units import (
    FIRST_WARD,
    ROOT_UNIT,
    UNIT_KINDS,
    UPPER_KINDS,
    WARD_KINDS,
    MediaWard,
    RoleGrant,
    Unit,
)

__all__ = [
    "FIRST_WARD",
    "ROLES",
    "ROOT_UNIT",
    "SOURCE_ROLE",
    "UNIT_KINDS",
    "UPPER_KINDS",
    "WARD_KINDS",
    "AgentSchedule",
    "AgentSignPlaylist",
    "Announcement",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Camera",
    "CameraDiscovery",
    "CameraEvent",
    "CityBroadcast",
    "Delivery",
    "Device",
    "DeviceEvent",
    "DeviceStatusChange",
    "EnrolmentCode",
    "GivenPlay",
    "GroupCommand",
    "LiveSession",
    "MediaFile",
    "MediaWard",
    "OutboxMessage",
    "Play",
    "RoleGrant",
    "ScheduleItem",
    "Sign",
    "SignContent",
    "SignItem",
    "UTCDateTime",
    "Unit",
    "User",
    "Zone",
    "utcnow",
]
