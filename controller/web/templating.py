"""Rendering the console's pages: one Jinja2 environment, gettext in the user's language, the menu.

Every page is rendered through :func:`render`, which adds what the layout needs (the user, their language,
the CSRF token htmx sends back, the menu filtered by role) and speaks the user's language while the
template runs. Autoescaping is on for every template: announcement text and device names are shown
as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from controller.storage.models import User
from controller.web import i18n
from controller.web.i18n import N_

TEMPLATES_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class NavItem:
    """One entry of the console's menu: where it goes, its label (a msgid) and who sees it."""

    path: str
    label: str
    roles: frozenset[str]
    #: The menu marks an entry current when the page's path starts with this.
    section: str


_ALL = frozenset({"admin", "approver", "officer", "security", "technician", "viewer"})

#: The console's menu, in the order shown. A user sees the entries one of their roles opens
#: (admins see all); the pages check the same roles themselves.
NAV: tuple[NavItem, ...] = (
    NavItem("/console/", N_("Dashboard"), _ALL, "/console/dashboard"),
    NavItem("/console/city", N_("Wards"), _ALL, "/console/city"),
    NavItem("/console/map", N_("Map"), _ALL, "/console/map"),
    NavItem("/console/announcements", N_("Announcements"), _ALL, "/console/announcements"),
    NavItem("/console/schedule", N_("Schedule"), _ALL, "/console/schedule"),
    NavItem("/console/live", N_("Live broadcast"), frozenset({"officer", "approver"}), "/console/live"),
    NavItem("/console/signs", N_("LED signs"), _ALL, "/console/signs"),
    NavItem("/console/cameras", N_("Cameras"), frozenset({"security"}), "/console/cameras"),
    NavItem("/console/devices", N_("Devices"), frozenset({"technician"}), "/console/devices"),
    NavItem("/console/reports", N_("Reports"), _ALL, "/console/reports"),
    NavItem("/console/users", N_("Users"), frozenset(), "/console/users"),
    NavItem("/console/audit", N_("Audit log"), frozenset(), "/console/audit"),
)

#: Priority levels as staff read them (msgids); every page that shows or offers a priority uses these.
PRIORITY_LABELS: dict[str, str] = {
    "normal": N_("Normal"),
    "priority": N_("Priority"),
    "emergency": N_("Emergency"),
}

#: An agent's link state (controller/fleet/recorder.py) as staff read it (msgids): the dashboard and the devices pages
#: name the same state the same way.
AGENT_STATUS_LABELS: dict[str, str] = {
    "online": N_("Online"),
    "offline": N_("Offline"),
    "stopped": N_("Switched off"),
    "unknown": N_("Not seen yet"),
}

#: Role names as shown to staff (msgids).
ROLE_LABELS: dict[str, str] = {
    "admin": N_("Administrator"),
    "approver": N_("Approver"),
    "officer": N_("Communications officer"),
    "security": N_("Security"),
    "technician": N_("Technician"),
    "viewer": N_("Viewer"),
    "source": N_("Upper-level source system"),
}


def menu_for(user: User | None) -> list[NavItem]:
    """The menu entries ``user`` may open."""
    if user is None:
        return []
    roles = user.role_set
    if "admin" in roles:
        return list(NAV)
    return [item for item in NAV if item.roles & roles]


def _zone(request: Request) -> ZoneInfo:
    controller = getattr(request.app.state, "controller", None)
    if controller is None:
        return ZoneInfo("Asia/Ho_Chi_Minh")
    zone: ZoneInfo = controller.settings.tz
    return zone


def _local(value: datetime | None, zone: ZoneInfo, pattern: str) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(zone).strftime(pattern)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Callables reading the language of the request being rendered (a context variable), so one
    # environment serves every request at once.
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    # ``tr(value)``: a value computed in Python that may be a msgid (marked with N_ where it was written),
    # translated without ``_()``'s %-formatting, so a "%" in an error detail is shown as it is.
    env.globals["tr"] = i18n.gettext
    env.globals["app_name"] = "loaphuong"
    return env


ENV = _environment()


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, *,
           status_code: int = 200, headers: Mapping[str, str] | None = None,
           language: str | None = None) -> HTMLResponse:
    """``template`` rendered in the user's language, with the layout's context added."""
    lang = language or i18n.pick_language(request)
    user: User | None = getattr(request.state, "user", None)
    zone = _zone(request)
    values: dict[str, Any] = {
        "request": request,
        "user": user,
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "language_names": i18n.LANGUAGE_NAMES,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "menu": menu_for(user),
        "role_labels": ROLE_LABELS,
        "path": request.url.path,
        "htmx": request.headers.get("HX-Request") == "true",
        "local_time": lambda value, pattern="%d/%m/%Y %H:%M": _local(value, zone, pattern),
        "timezone": str(zone),
    }
    values.update(context or {})
    with i18n.using(lang):
        body = ENV.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Content-Language"] = lang
    return response
