"""The map (``/console/map``): the speakers and cameras of the user's wards where they stand, coloured by
their state now — playing, silent (online, idle), offline, fault — with those that have no location yet
listed beside it.

The states come from the dashboard's own queries (controller/web/pages/dashboard.py: the fleet that is not
revoked, what each agent plays now, the cameras' health), so the map and the dashboard never disagree.
Like the dashboard it shows every member of staff the whole fleet of their wards; city staff see every
ward below them and may narrow it to one. The points are one fragment (``/console/map/points``) that the
page fetches again when the change feed says the fleet, the plays or the cameras moved; the page's script
(static/map.js) draws a Leaflet marker for each located point of the fragment. Tiles come from
``LP_MAP_TILE_URL`` when it is set; without them (or when they cannot be reached) the markers stand on
a plain background, fitted to their bounds.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.accounts.reach import unit_tree, wards_of
from controller.api.deps import SessionDep, SettingsDep
from controller.settings import Settings
from controller.storage.models import Camera, Device, User
from controller.web.i18n import N_, gettext
from controller.web.pages.dashboard import _now_playing, active_devices
from controller.web.session import ConsoleUserDep
from controller.web.templating import render
from devices.protocol import now_ms

router = APIRouter(prefix="/console", include_in_schema=False)

#: A point's state as staff read it (msgids), in the legend's order.
STATE_LABELS: dict[str, str] = {
    "playing": N_("Playing"),
    "silent": N_("Silent"),
    "offline": N_("Offline"),
    "fault": N_("Fault"),
}
#: A camera has nothing to play: "silent" is simply working (msgids).
CAMERA_STATE_LABELS: dict[str, str] = {**STATE_LABELS, "silent": N_("Online")}
#: What a point is (msgids).
KIND_LABELS: dict[str, str] = {"device": N_("Speaker"), "camera": N_("Camera")}
#: The change feed's kinds that move a point's state (the dashboard's fleet, playing and faults panels').
FEED_KINDS = ("fleet", "plays", "cameras")
#: Where a map with nothing located on it looks (the middle of Viet Nam), and how close.
DEFAULT_CENTER = (16.05, 108.2)
DEFAULT_ZOOM = 5

WardFilter = Annotated[str, Query(max_length=63, pattern=r"^[a-z0-9_-]*$")]


@dataclass(frozen=True)
class Point:
    """A speaker or camera as the map shows it."""

    kind: str
    id: str
    name: str
    ward: str
    #: playing, silent, offline or fault
    state: str
    lat: float | None
    lon: float | None
    #: What it plays, or its fault in its own words ("" when there is nothing to say).
    detail: str

    @property
    def label(self) -> str:
        """Its state as staff read it (a msgid)."""
        return (CAMERA_STATE_LABELS if self.kind == "camera" else STATE_LABELS)[self.state]

    @property
    def placed(self) -> bool:
        """Whether it has a location."""
        return self.lat is not None and self.lon is not None


def _sign_fault(device: Device) -> str:
    """The first fault one of its LED signs reports now ("" when none does), as the dashboard reads it."""
    for sign in (device.state or {}).get("signs", []) or []:
        if isinstance(sign, dict) and sign.get("fault"):
            return str(sign["fault"])
    return ""


def device_points(session: Session, wards: Collection[str]) -> list[Point]:
    """The fleet of ``wards`` (not revoked), each with its state: offline when not online, fault when online
    with a fault to look at, playing when it plays something now, silent otherwise."""
    devices = active_devices(session, wards)
    playing = _now_playing(session, devices, now_ms(), wards)
    points = []
    for device in devices:
        fault = _sign_fault(device)
        current = playing.get(device.id)
        if device.status != "online":
            state, detail = "offline", ""
        elif fault:
            state, detail = "fault", fault
        elif current is not None:
            state, detail = "playing", current.title
        else:
            state, detail = "silent", ""
        points.append(Point("device", device.id, device.name, device.ward_id, state, device.lat, device.lon, detail))
    return points


def camera_points(session: Session, wards: Collection[str]) -> list[Point]:
    """The cameras of ``wards``: fault as their health check says, silent (watching) when online, offline
    when not checked yet."""
    points = []
    for camera in session.scalars(select(Camera).where(Camera.ward_id.in_(wards)).order_by(Camera.id)):
        state = {"fault": "fault", "online": "silent"}.get(camera.status, "offline")
        points.append(Point("camera", camera.id, camera.name, camera.ward_id, state, camera.lat, camera.lon,
                            (camera.fault or "") if state == "fault" else ""))
    return points


def chosen_wards(session: Session, user: User, ward: str) -> frozenset[str]:
    """The wards the map shows: all the user's, or the one named (404, as an unknown ward, when it is not
    one of theirs)."""
    wards = wards_of(session, user)
    if not ward:
        return wards
    if ward not in wards:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"ward {ward} not found")
    return frozenset({ward})


def _center(session: Session, wards: Collection[str]) -> str:
    """Where a map opens before it knows its points (a location picker): the middle of what is located in
    ``wards``, else the country. ``lat,lon,zoom``."""
    located: list[tuple[float, float]] = []
    for model in (Device, Camera):
        rows = session.execute(select(model.lat, model.lon).where(
            model.ward_id.in_(wards), model.lat.is_not(None), model.lon.is_not(None)))
        located += [(lat, lon) for lat, lon in rows if lat is not None and lon is not None]
    if not located:
        return f"{DEFAULT_CENTER[0]},{DEFAULT_CENTER[1]},{DEFAULT_ZOOM}"
    lat = sum(p[0] for p in located) / len(located)
    lon = sum(p[1] for p in located) / len(located)
    return f"{lat:.6f},{lon:.6f},15"


def map_settings(settings: Settings, session: Session, wards: Collection[str]) -> dict[str, Any]:
    """What a page drawing a map (this one, or a form's location picker) needs: the tile server and its
    credit, and where to open."""
    return {"tile_url": settings.map_tile_url, "attribution": settings.map_attribution,
            "center": _center(session, wards)}


def location_form(lat: str, lon: str) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    """A location as a form sends it → the API model's ``lat``/``lon`` (None for empty boxes; a decimal comma
    is read as a point), or the error to show when only one box is filled. The models check the ranges."""
    values = {name: text.strip().replace(",", ".") or None for name, text in (("lat", lat), ("lon", lon))}
    if (values["lat"] is None) != (values["lon"] is None):
        missing = "lat" if values["lat"] is None else "lon"
        return values, {missing: [gettext("Give the latitude and the longitude together, or leave both empty.")]}
    return values, {}


def location_context(settings: Settings, session: Session, wards: Collection[str], lat: object,
                     lon: object) -> dict[str, Any]:
    """What a form's location fields (map/_location_fields.html) need: the boxes' values and the picker's map."""
    def shown(value: object) -> str:
        return "" if value is None else str(value)
    return {"loc": {"lat": shown(lat), "lon": shown(lon)}, **map_settings(settings, session, wards)}


def _points_context(session: Session, wards: frozenset[str]) -> dict[str, Any]:
    points = device_points(session, wards) + camera_points(session, wards)
    names = unit_tree(session).name
    return {"placed": [p for p in points if p.placed], "unplaced": [p for p in points if not p.placed],
            "ward_names": names, "state_labels": STATE_LABELS, "kind_labels": KIND_LABELS,
            "several_wards": len(wards) > 1}


@router.get("/map")
def map_page(request: Request, session: SessionDep, settings: SettingsDep, user: ConsoleUserDep,
             ward: WardFilter = "") -> Response:
    """The map of the user's wards (or of the one chosen), live."""
    wards = chosen_wards(session, user, ward)
    names = unit_tree(session).name
    visible = sorted(wards_of(session, user))
    context = {**_points_context(session, wards), **map_settings(settings, session, wards),
               "ward": ward, "ward_choices": [(w, names.get(w, w)) for w in visible],
               "feed_kinds": ",".join(FEED_KINDS)}
    return render(request, "map/index.html", context)


@router.get("/map/points")
def map_points(request: Request, session: SessionDep, user: ConsoleUserDep, ward: WardFilter = "") -> Response:
    """The points alone (the page fetches them again when the fleet, the plays or the cameras change)."""
    return render(request, "map/_points.html", _points_context(session, chosen_wards(session, user, ward)))
