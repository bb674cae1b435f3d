"""Dependencies shared by the routers: a database session, the caller, and the service each route needs.

A route asks for the narrowest thing it uses (``ProvisioningDep``, ``SettingsDep``…) rather than the whole
:class:`~controller.runtime.Controller`, so what it can touch is in its signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from controller.accounts.auth import LoginThrottle, device_for_token, user_for_token
from controller.broadcasts.announcements import AnnouncementService
from controller.broadcasts.live.sessions import LiveSessions
from controller.broadcasts.media_store import MediaStore
from controller.broadcasts.speech import SpeechService
from controller.cameras.service import CameraService
from controller.fleet.device_operations import DeviceOperations
from controller.fleet.provisioning import ProvisioningService
from controller.messaging.events import EventBus
from controller.messaging.outbox import Outbox
from controller.runtime import Controller
from controller.schedule.agent_windows import WindowPublisher
from controller.schedule.items import ScheduleService
from controller.schedule.zones import ZoneService
from controller.settings import Settings
from controller.signs import SignService
from controller.signs.actions import SignActions
from controller.storage.change_feed import ChangeFeed
from controller.storage.engine import Database
from controller.storage.models import ROLES, SOURCE_ROLE, Device, User

_bearer = HTTPBearer(auto_error=False)


def get_controller(request: Request) -> Controller:
    """The running controller."""
    controller: Controller = request.app.state.controller
    return controller


ControllerDep = Annotated[Controller, Depends(get_controller)]


def get_database(controller: ControllerDep) -> Database:
    """The database, for work that opens sessions of its own (in worker threads)."""
    return controller.db


def get_settings(controller: ControllerDep) -> Settings:
    """The controller's settings."""
    return controller.settings


def get_provisioning(controller: ControllerDep) -> ProvisioningService:
    """The device registry: register, change, enrol, revoke (controller/fleet/provisioning.py)."""
    return controller.provisioning


def get_device_operations(controller: ControllerDep) -> DeviceOperations:
    """Remote operations on one agent, checked and audited (controller/fleet/device_operations.py)."""
    return controller.device_operations


DatabaseDep = Annotated[Database, Depends(get_database)]
def get_live_sessions(controller: ControllerDep) -> LiveSessions:
    """Live sessions: start, end, the record (controller/broadcasts/live/sessions.py)."""
    return controller.live_sessions


def get_zones(controller: ControllerDep) -> ZoneService:
    """Zones and their rules (controller/schedule/zones.py)."""
    return controller.zones


def get_schedule(controller: ControllerDep) -> ScheduleService:
    """Schedule items: create, change, approve, cancel (controller/schedule/items.py)."""
    return controller.schedule


def get_windows(controller: ControllerDep) -> WindowPublisher:
    """The agents' schedule windows (what will play where)."""
    return controller.windows


def get_speech(controller: ControllerDep) -> SpeechService:
    """Speech: normalising and rendering text, importing recordings (controller/broadcasts/speech.py)."""
    return controller.speech


def get_announcements(controller: ControllerDep) -> AnnouncementService:
    """Announcements: accepted here, rendered and sent by its worker (controller/broadcasts/announcements.py)."""
    return controller.announcements


def get_signs(controller: ControllerDep) -> SignService:
    """LED signs: content, boards, items, previews (controller/signs.py)."""
    return controller.signs


def get_sign_actions(controller: ControllerDep) -> SignActions:
    """Staff's audited changes to signs (controller/signs/actions.py)."""
    return controller.sign_actions


def get_cameras(controller: ControllerDep) -> CameraService:
    """Cameras: the registry, the gateway, PTZ, motion (controller/cameras/service.py)."""
    return controller.cameras


def get_login_throttle(controller: ControllerDep) -> LoginThrottle:
    """Failed sign-ins per name and address (a guesser must be slow)."""
    return controller.login_throttle


def get_events(controller: ControllerDep) -> EventBus:
    """The domain-event bus, for a route that says what happened itself (controller/messaging/events.py)."""
    return controller.events


def get_media_store(controller: ControllerDep) -> MediaStore:
    """The content-addressed media files."""
    return controller.media


def get_changes(controller: ControllerDep) -> ChangeFeed:
    """The change counters the console's event stream watches (controller/storage/change_feed.py)."""
    return controller.changes


def get_outbox(controller: ControllerDep) -> Outbox:
    """The way out to the broker (controller/messaging/outbox.py)."""
    return controller.outbox


SettingsDep = Annotated[Settings, Depends(get_settings)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
EventsDep = Annotated[EventBus, Depends(get_events)]
MediaStoreDep = Annotated[MediaStore, Depends(get_media_store)]
ChangesDep = Annotated[ChangeFeed, Depends(get_changes)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
CamerasDep = Annotated[CameraService, Depends(get_cameras)]
SignsDep = Annotated[SignService, Depends(get_signs)]
SignActionsDep = Annotated[SignActions, Depends(get_sign_actions)]
AnnouncementsDep = Annotated[AnnouncementService, Depends(get_announcements)]
SpeechDep = Annotated[SpeechService, Depends(get_speech)]
ScheduleDep = Annotated[ScheduleService, Depends(get_schedule)]
WindowsDep = Annotated[WindowPublisher, Depends(get_windows)]
ZonesDep = Annotated[ZoneService, Depends(get_zones)]
LiveSessionsDep = Annotated[LiveSessions, Depends(get_live_sessions)]
ProvisioningDep = Annotated[ProvisioningService, Depends(get_provisioning)]
DeviceOperationsDep = Annotated[DeviceOperations, Depends(get_device_operations)]


def get_session(controller: ControllerDep) -> Iterator[Session]:
    """A session committed when the request succeeds."""
    with controller.db.session() as session:
        yield session


# scope="function": commit before the response goes out, so a client's next request sees its write
# and a failed commit is an error the client gets, not one that happens after it was told "ok".
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_UNAUTHORIZED = HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer token or session cookie is required",
                              headers={"WWW-Authenticate": "Bearer"})

#: The console's session cookie (HttpOnly) and its CSRF companion (readable by the page's script).
SESSION_COOKIE = "lp_session"
CSRF_COOKIE = "lp_csrf"
CSRF_HEADER = "X-CSRF-Token"
#: Methods that change nothing need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_for(session_token: str) -> str:
    """The CSRF token bound to a session: a cookie planted by another site cannot match a session it lacks."""
    return hmac.new(session_token.encode(), b"loaphuong csrf", hashlib.sha256).hexdigest()


def check_csrf(request: Request, session_token: str) -> None:
    """403 unless a state-changing request carries the session's CSRF token in header and cookie alike."""
    if request.method in SAFE_METHODS:
        return
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = csrf_for(session_token)
    if not header or not (hmac.compare_digest(header, cookie) and hmac.compare_digest(header, expected)):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"missing or wrong CSRF token: send the {CSRF_COOKIE} cookie's value in the "
                            f"{CSRF_HEADER} header with every change made with a session cookie")


def authenticate(session: Session, request: Request, credentials: HTTPAuthorizationCredentials | None) -> User:
    """The member of staff behind a bearer token or, failing that, a console session cookie (CSRF-checked)."""
    if credentials is not None:
        user = user_for_token(session, credentials.credentials)
        if user is None:
            raise _UNAUTHORIZED
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise _UNAUTHORIZED
    user = user_for_token(session, cookie)
    if user is None:
        raise _UNAUTHORIZED
    check_csrf(request, cookie)
    return user


def signed_in(session: SessionDep, request: Request, credentials: CredentialsDep) -> User:
    """The account the bearer token or session cookie belongs to, whatever its roles (401 without one)."""
    return authenticate(session, request, credentials)


SignedInDep = Annotated[User, Depends(signed_in)]

#: Policy attribute the role matrix test reads from each route's dependencies.
POLICY_ATTR = "__lp_roles__"
#: Policy of a dependency that lets any signed-in member of staff through: every role but the upper level's
#: source system, whose account may only push items and read back proof of play and the monthly figures.
ANY_STAFF = frozenset(ROLES) - {SOURCE_ROLE}
#: Policy of the routes about one's own account (who am I, sign out, change my password): every account.
ANY_ACCOUNT = frozenset(ROLES)


def current_staff(user: SignedInDep) -> User:
    """The member of staff the bearer token or session cookie belongs to, or 401 (403 without CSRF token,
    and 403 for the source system's account, which is no member of staff)."""
    if not user.role_set & ANY_STAFF:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this account is an upper-level source system: it may "
                                                       "only push items and read proof of play and figures")
    return user


StaffDep = Annotated[User, Depends(current_staff)]


def declare_roles(dependency: Callable[..., object], roles: frozenset[str]) -> None:
    """Records which roles a dependency lets through, for the role matrix test and the docs."""
    setattr(dependency, POLICY_ATTR, roles)


declare_roles(current_staff, ANY_STAFF)


def own_account(user: SignedInDep) -> User:
    """Any signed-in account, for the routes about that account itself."""
    return user


declare_roles(own_account, ANY_ACCOUNT)
AccountDep = Annotated[User, Depends(own_account)]

#: Routes with no role dependency, each checking who calls it in its own way (or serving everyone).
#: The role matrix test fails for any other route without a declared policy.
OWN_AUTH_ROUTES: dict[str, str] = {
    "/": "sends the browser to the console",
    "/console": "sends the browser to the console's dashboard",
    "/console/login": "the console's login form (throttled like the API's)",
    "/console/lang/{code}": "remembers the chosen language (a cookie), for anyone",
    "/openapi.json": "the API description",
    "/healthz": "liveness for monitoring, no data",
    "/api/v1/auth/login": "the login itself (throttled)",
    "/api/v1/enrol": "a new Pi presents its one-time enrolment code",
    "/api/v1/live/icecast-auth": "Icecast's listener callback presents a live session's token",
    "/api/v1/live/sessions/{session_id}/audio": "the microphone WebSocket: its first message proves the caller "
                                                "(a staff token, or the console's CSRF token with its cookie)",
}


def require_roles(*allowed: str) -> Callable[[User], User]:
    """A dependency letting through admins and holders of any of the given roles; anyone else gets 403."""
    permitted = frozenset(allowed) | {"admin"}

    def check(user: SignedInDep) -> User:
        if not user.role_set & permitted:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs one of the roles: {', '.join(sorted(permitted))}")
        return user

    declare_roles(check, permitted)
    return check


require_admin = require_roles()
AdminDep = Annotated[User, Depends(require_admin)]

#: Security staff watch cameras, move PTZ and handle motion events.
SecurityDep = Annotated[User, Depends(require_roles("security"))]
#: Technicians provision and manage devices (agents, signs, cameras).
TechnicianDep = Annotated[User, Depends(require_roles("technician"))]
#: Officers compose and schedule content; approvers may too.
OfficerDep = Annotated[User, Depends(require_roles("officer", "approver"))]
#: Approvers (and admins) approve or reject what officers wrote.
ApproverDep = Annotated[User, Depends(require_roles("approver"))]


def staff_or_device(session: SessionDep, request: Request, credentials: CredentialsDep) -> User | Device:
    """A member of staff (token or session cookie) or an agent presenting its own device token, or 401."""
    if credentials is not None:
        device = device_for_token(session, credentials.credentials)
        if device is not None:
            return device
    return current_staff(authenticate(session, request, credentials))


declare_roles(staff_or_device, ANY_STAFF)


StaffOrDeviceDep = Annotated[User | Device, Depends(staff_or_device)]
