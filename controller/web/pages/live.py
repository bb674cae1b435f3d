"""Live broadcast (phát trực tiếp): the officer's microphone, or an upstream relay, to chosen zones and
speakers, and the record of every live session with its recording (issue 9).

The microphone path stays in the browser: the page's script creates the session through the live API,
captures the microphone (AudioWorklet → 20 ms PCM frames) and sends it over the API's WebSocket, which
accepts the console's session cookie with the CSRF token as first message. The relay form, the session
list and ending a session are server-rendered here, through the live-session service the API calls too
(controller/broadcasts/live/sessions.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request, Response, status
from pydantic import ValidationError

from controller.accounts.reach import wards_of
from controller.accounts.scope import OutOfScope
from controller.api.deps import LiveSessionsDep, ProvisioningDep, SessionDep, ZonesDep
from controller.api.views import device_public, live_public, zone_public
from controller.broadcasts.live.active import LiveError
from controller.broadcasts.live.sessions import (
    LiveInvalid,
    LiveSessionNotFound,
    LiveSessions,
    LiveStart,
    NotYourSession,
)
from controller.broadcasts.wards import COMPOSER_ROLES
from controller.fleet.provisioning import ProvisioningService
from controller.schedule.zones import ZoneService
from controller.storage.models import User
from controller.web.forms import field_errors
from controller.web.i18n import N_, gettext, speaking_to
from controller.web.session import ConsoleApproverDep, ConsoleOfficerDep
from controller.web.templating import PRIORITY_LABELS, render

router = APIRouter(prefix="/console", include_in_schema=False)

#: Sessions listed on the page; the rest are in the API and the reports.
SESSIONS_SHOWN = 30
SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

STATUS_LABELS: dict[str, str] = {"starting": N_("Starting"), "live": N_("On air"), "ended": N_("Ended"),
                                 "failed": N_("Failed")}
SOURCE_LABELS: dict[str, str] = {"microphone": N_("Microphone"), "relay": N_("Relay")}
NOTE_LABELS: dict[str, str] = {"took_over": N_("took over from"), "taken_over": N_("taken over by"),
                               "takeover_failed": N_("take-over failed, with")}


def _may_listen(user: User) -> bool:
    """Recordings are for approvers and admins (the API's rule)."""
    return bool(user.role_set & {"approver", "admin"})


def _targets(session: SessionDep, zone_service: ZoneService, devices: ProvisioningService,
             user: User) -> tuple[list[object], list[object]]:
    """Zones and agents to choose from; a user limited to some zones sees only those (the API refuses others)."""
    wards = wards_of(session, user, COMPOSER_ROLES)
    zones = [zone_public(z) for z in zone_service.list_zones(session, wards)]
    agents = [device_public(d) for d in devices.list_devices(session, wards)]
    scope = set(user.zones or ())
    if scope and "admin" not in user.role_set:
        zones = [z for z in zones if z.id in scope]
        agents = [a for a in agents if scope & set(a.zones)]
    return list(zones), list(agents)


def _session_rows(session: SessionDep, live: LiveSessions, user: User) -> dict[str, object]:
    return {"sessions": [live_public(r) for r in live.recent(session, SESSIONS_SHOWN, wards_of(session, user))],
            "may_listen": _may_listen(user),
            "priority_labels": PRIORITY_LABELS, "status_labels": STATUS_LABELS, "source_labels": SOURCE_LABELS,
            "note_labels": NOTE_LABELS}


@router.get("/live")
async def live_page(request: Request, session: SessionDep, live: LiveSessionsDep, zone_service: ZonesDep,
                    devices: ProvisioningDep, user: ConsoleOfficerDep) -> Response:
    """The live broadcast page: targets, priority, the microphone controls, a relay, the record."""
    problem = await live.availability()
    zones, agents = _targets(session, zone_service, devices, user)
    return render(request, "live/page.html", {
        "problem": problem, "zones": zones, "agents": agents, "errors": {}, "relay_url": "", "notice": None,
        **_session_rows(session, live, user)})


@router.get("/live/sessions")
def sessions_fragment(request: Request, session: SessionDep, live: LiveSessionsDep,
                      user: ConsoleOfficerDep) -> Response:
    """The record of live sessions (refetched as sessions start and end)."""
    return render(request, "live/_sessions.html", _session_rows(session, live, user))


@router.get("/live/sessions/{session_id}/player")
def player(session_id: SessionId, request: Request, session: SessionDep, live: LiveSessionsDep,
           user: ConsoleApproverDep) -> Response:
    """An audio player on the session's recording (served by the API to approvers and admins)."""
    try:
        row = live.get(session, session_id, wards_of(session, user))
    except LiveSessionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return render(request, "live/_player.html", {"row": live_public(row, live.plays(session, row))})


@router.post("/live/sessions/{session_id}/end")
async def end(session_id: SessionId, request: Request, session: SessionDep, live: LiveSessionsDep,
              user: ConsoleOfficerDep) -> Response:
    """Ends a session (its owner, or an admin — the API's rule), then shows the record again."""
    try:
        await live.end(session_id, user)
    except NotYourSession as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except LiveSessionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return render(request, "live/_sessions.html", _session_rows(session, live, user))


@router.post("/live/relay")
async def relay(request: Request, live: LiveSessionsDep, user: ConsoleOfficerDep,
                zone: Annotated[list[str] | None, Form(max_length=200)] = None,
                agent: Annotated[list[str] | None, Form(max_length=1000)] = None,
                priority: Annotated[str, Form(max_length=20)] = "priority",
                title: Annotated[str, Form(max_length=1000)] = "",
                relay_url: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """Relays an upstream stream (tiếp sóng) now, to the chosen targets, as the live API does."""
    url = relay_url.strip()
    context: dict[str, object] = {"relay_url": url[:2000], "notice": None}
    with speaking_to(request):
        try:
            body = LiveStart.model_validate({
                "zones": zone or [], "agents": agent or [], "priority": priority, "title": title.strip(),
                "source": "relay", "relay_url": url or None})
            errors: dict[str, list[str]] = {}
        except ValidationError as exc:
            errors = field_errors(exc)
        if not url:
            errors.setdefault("relay_url", []).append(gettext("This field is required."))
        elif not url.lower().startswith(("http://", "https://")):
            errors.setdefault("relay_url", []).append(gettext("Enter an address starting with http:// or https://."))
        if not (zone or agent):
            errors.setdefault("targets", []).append(gettext("Choose at least one zone or speaker."))
    if errors:
        return render(request, "live/_relay.html", {**context, "errors": errors}, status_code=422)
    try:
        await live.start(body, user)
    except LiveInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except OutOfScope as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except LiveError as exc:
        # Refused by the hub (Icecast down, speakers held by someone else): said in the page's message
        # area with the hub's reason, which names who holds the speakers.
        raise HTTPException(exc.status, exc.message) from None
    return render(request, "live/_relay.html", {"relay_url": "", "errors": {}, "notice": N_("Relay started.")},
                  headers={"HX-Trigger": "live-changed"})
