"""The map of issue 18: speakers and cameras have a location (API, console forms, a board profile's default)
and /console/map shows a ward's (or the city's) fleet by live state — playing, silent, offline, fault — with
what has no location listed beside it, ward-scoped like every other page.

A real controller under uvicorn with Mosquitto; its map tiles point at a closed port on 127.0.0.1, so the
browser test also shows the markers standing on the plain background when no tile can be loaded. The live
test uses a real agent: its marker turns "playing" while it plays an announcement and back to "silent" after.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect
from pydantic import ValidationError

from controller.fleet.provisioning import agent_profile, default_location
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import FIRST_WARD, ROOT_UNIT, Camera, Device
from controller.tools.local_stack import free_port, http_json
from firmware_configs.profiles import PROFILE_DIR, ProfileError, parse_profile
from tests.browser import BrowserFactory, browser_factory  # noqa: F401 - the fixture
from tests.conftest import AgentFactory, Broker, ControllerHandle, running_controller
from tests.console_support import browser_page, console_client, create_staff, screenshot
from tests.rtsp_server import RtspServer
from tests.test_camera_api import register_rtsp, rtsp  # noqa: F401 - the RTSP fixture
from tests.test_camera_gateway import _gst_available
from tests.ward_support import PASSWORD, add_staff, add_ward

ROOT = Path(__file__).resolve().parent.parent
A, B = FIRST_WARD, "ward-b"
WAIT = 30_000
#: Where ward A's speakers and cameras stand (around Bến Thành) and ward B's (around Hồ Gươm).
A_AT, B_AT = (10.7725, 106.6980), (21.0287, 105.8524)


@pytest.fixture
def controller(tmp_path: Path, broker: Broker) -> Iterator[ControllerHandle]:
    """The controller with map tiles from a port on this machine that nothing listens on."""
    tiles = f"http://127.0.0.1:{free_port()}/tiles/{{z}}/{{x}}/{{y}}.png"
    env = {"LP_MAP_TILE_URL": tiles, "LP_MAP_ATTRIBUTION": "© test tiles"}
    with running_controller(tmp_path, broker.port, env=env) as handle:
        yield handle


def _db(ctl: ControllerHandle) -> Database:
    return Database(f"sqlite:///{(ctl.data_dir / 'loaphuong.sqlite3').resolve()}")


def _call(ctl: ControllerHandle, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    return http_json(method, ctl.api + path, token or ctl.token, body)


class _Points(HTMLParser):
    """The points of a map fragment: (list id, kind, id, state) of each ``li`` with a ``data-id``."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: list[str] = []
        self.points: list[tuple[str, str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "ul":
            self.lists.append(found.get("id") or "")
        elif tag == "li" and found.get("data-id"):
            self.points.append((self.lists[-1] if self.lists else "", found.get("data-kind") or "",
                                found["data-id"] or "", found.get("data-state") or ""))


def points_of(html: str) -> tuple[dict[str, str], set[str]]:
    """(located point id → state, ids without a location) of a map page or fragment."""
    parser = _Points()
    parser.feed(html)
    placed = {pid: state for where, _kind, pid, state in parser.points if where == "map-placed"}
    unplaced = {pid for where, _kind, pid, _state in parser.points if where == "map-unplaced"}
    return placed, unplaced


# the API ------------------------------------------------------------------------------------------------


def test_a_device_location_is_both_coordinates_in_range(controller: ControllerHandle) -> None:
    status, body = _call(controller, "POST", "/api/v1/devices", {"id": "loa-cho", "lat": A_AT[0], "lon": A_AT[1]})
    assert status == 201, body
    assert (body["device"]["lat"], body["device"]["lon"]) == A_AT
    assert (controller.device("loa-cho")["lat"], controller.device("loa-cho")["lon"]) == A_AT

    for bad in ({"lat": 10.0}, {"lon": 106.0}, {"lat": 90.5, "lon": 0}, {"lat": 0, "lon": -180.5},
                {"lat": "bắc", "lon": 1}, {"lat": float("nan"), "lon": 1}):
        status, body = _call(controller, "POST", "/api/v1/devices", {"id": "loa-sai", **bad})
        assert status == 422, (bad, body)
    assert _call(controller, "GET", "/api/v1/devices/loa-sai")[0] == 404

    status, body = _call(controller, "PATCH", "/api/v1/devices/loa-cho", {"lat": B_AT[0], "lon": B_AT[1]})
    assert status == 200 and (body["lat"], body["lon"]) == B_AT, body
    # Absent: unchanged; one of the two: refused and nothing changes; both null: cleared.
    status, body = _call(controller, "PATCH", "/api/v1/devices/loa-cho", {"name": "Loa chợ"})
    assert status == 200 and (body["lat"], body["lon"]) == B_AT, body
    for half in ({"lat": None}, {"lon": 105.0}, {"lat": 10.0, "lon": None}, {"lat": -91, "lon": 0}):
        status, body = _call(controller, "PATCH", "/api/v1/devices/loa-cho", half)
        assert status == 422, (half, body)
    assert (controller.device("loa-cho")["lat"], controller.device("loa-cho")["lon"]) == B_AT
    status, body = _call(controller, "PATCH", "/api/v1/devices/loa-cho", {"lat": None, "lon": None})
    assert status == 200 and body["lat"] is None and body["lon"] is None, body

    # The audit trail says where it was put.
    status, rows = _call(controller, "GET", "/api/v1/audit?action=device.update")
    assert status == 200, rows
    details = [r["detail"] for r in rows if r["subject"] == "loa-cho"]
    assert {"lat": B_AT[0], "lon": B_AT[1]} in details and {"lat": None, "lon": None} in details, details


def test_a_board_profile_may_carry_a_default_location() -> None:
    data = yaml.safe_load((PROFILE_DIR / "pi4-usb.yaml").read_text(encoding="utf-8"))
    profile = parse_profile({**data, "location": {"lat": A_AT[0], "lon": A_AT[1]}})

    device = Device(id="loa-moi", lat=None, lon=None)
    default_location(device, profile)
    assert (device.lat, device.lon) == A_AT
    placed = Device(id="loa-cu", lat=B_AT[0], lon=B_AT[1])
    default_location(placed, profile)  # a device's own location is never overwritten
    assert (placed.lat, placed.lon) == B_AT
    unplaced = Device(id="loa-khac", lat=None, lon=None)
    default_location(unplaced, parse_profile(data))  # a profile without one leaves it unplaced
    assert unplaced.lat is None

    # The agent gets the profile without it (an agent of an older version would refuse the key), still valid.
    sent = agent_profile(profile)
    assert "location" not in sent and parse_profile(sent).location is None

    for bad, field in (({"lat": 91, "lon": 0}, "location.lat"), ({"lat": 10}, "location.lon"),
                       ({"lat": 10, "lon": 106, "alt": 3}, "location.alt")):
        with pytest.raises(ProfileError, match=re.escape(field)):
            parse_profile({**data, "location": bad})


def test_the_tile_server_setting_is_a_url_template() -> None:
    assert Settings(map_tile_url="").map_tile_url == ""
    osm = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert Settings(map_tile_url=osm).map_tile_url == osm
    for bad in ("tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tiles.example/map.png", "javascript:{z}{x}{y}"):
        with pytest.raises(ValidationError, match="tile URL template"):
            Settings(map_tile_url=bad)


def test_the_vendored_leaflet_is_the_pinned_one_and_served(controller: ControllerHandle) -> None:
    pinned = re.search(r"^LEAFLET=(\S+)$", (ROOT / "scripts/setup.sh").read_text(), re.M)
    assert pinned, "scripts/setup.sh pins LEAFLET="
    vendor = ROOT / "controller/static/vendor/leaflet"
    assert (vendor / f".stamp-{pinned[1]}").is_file(), "run scripts/setup.sh: the pinned Leaflet is not installed"
    assert f"Leaflet {pinned[1]}" in (vendor / "leaflet.js").read_text(encoding="utf-8")[:200]
    import httpx

    with httpx.Client(base_url=controller.api, timeout=10) as client:
        for path in ("leaflet.js", "leaflet.css", "images/marker-icon.png", "images/layers.png", "LICENSE"):
            response = client.get(f"/static/vendor/leaflet/{path}")
            assert response.status_code == 200 and response.content, path
        assert client.get("/static/map.js").status_code == 200
        assert client.get("/static/map.css").status_code == 200


# a city of two wards ----------------------------------------------------------------------------------------


def _near(at: tuple[float, float], step: int) -> tuple[float, float]:
    return at[0] + step * 0.001, at[1] + step * 0.001


def build_city(ctl: ControllerHandle) -> dict[str, str]:
    """Ward B beside the first ward, speakers and cameras in each state, and staff; their usernames."""
    db = _db(ctl)
    now_playing = {"play_id": "p-1", "title": "Thông báo tiêm chủng", "priority": "normal", "started_at": 1}
    rows: list[tuple[str, str, str, dict[str, Any] | None, tuple[float, float] | None]] = [
        ("loa-a-phat", A, "online", {"now_playing": now_playing}, _near(A_AT, 1)),
        ("loa-a-cho", A, "online", {}, _near(A_AT, 2)),
        ("loa-a-tat", A, "offline", None, _near(A_AT, 3)),
        ("loa-a-loi", A, "online", {"signs": [{"sign": "bang", "fault": "bảng không trả lời"}]}, _near(A_AT, 4)),
        ("loa-a-chua", A, "online", {}, None),
        ("loa-b-phat", B, "online", {"now_playing": now_playing}, _near(B_AT, 1)),
        ("loa-b-chua", B, "offline", None, None),
    ]
    try:
        with db.session() as session:
            add_ward(session, B, "Phường Hàng Trống")
            for agent, ward, status, state, at in rows:
                session.add(Device(id=agent, ward_id=ward, name=agent.upper(), zones=[], token_hash=agent * 6,
                                   status=status, state=state, lat=at[0] if at else None, lon=at[1] if at else None))
            session.add(Device(id="loa-a-thu-hoi", ward_id=A, zones=[], token_hash="r" * 64, status="offline",
                               lat=A_AT[0], lon=A_AT[1], revoked_at=datetime.now(UTC)))
            for cam, ward, status, at in (("cam-a-loi", A, "fault", _near(A_AT, 5)), ("cam-a-chua", A, "unknown", None),
                                          ("cam-b", B, "online", _near(B_AT, 2))):
                session.add(Camera(id=cam, ward_id=ward, name=cam, host="127.0.0.1", port=554, password_enc="-",
                                   stream_uri="rtsp://127.0.0.1:9/x", onvif=False, status=status,
                                   fault="không có hình" if status == "fault" else None,
                                   lat=at[0] if at else None, lon=at[1] if at else None))
            names = {}
            for who, grants in (("officer_a", [("officer", A)]), ("officer_b", [("officer", B)]),
                                ("city_viewer", [("viewer", ROOT_UNIT)])):
                user, _token = add_staff(session, grants, username=who.replace("_", "-"))
                names[who] = user.username
        return names
    finally:
        db.engine.dispose()


A_PLACED = {"loa-a-phat": "playing", "loa-a-cho": "silent", "loa-a-tat": "offline", "loa-a-loi": "fault",
            "cam-a-loi": "fault"}
B_PLACED = {"loa-b-phat": "playing", "cam-b": "silent"}


def test_the_map_shows_each_ward_only_its_own_points_by_state(controller: ControllerHandle) -> None:
    names = build_city(controller)
    with console_client(controller, names["officer_a"], PASSWORD) as client:
        page = client.get("/console/map")
        assert page.status_code == 200, page.text[:2000]
        assert points_of(page.text) == (A_PLACED, {"loa-a-chua", "cam-a-chua"})
        assert "Chưa có vị trí" in page.text and "Bản đồ" in page.text
        fragment = client.get("/console/map/points")
        assert fragment.status_code == 200
        assert points_of(fragment.text) == (A_PLACED, {"loa-a-chua", "cam-a-chua"})
        for other in ("loa-b-phat", "loa-b-chua", "cam-b", "Hàng Trống", "loa-a-thu-hoi"):
            assert other not in page.text and other not in fragment.text, other
        # What a fault or a play is, in the list beside the map.
        assert "bảng không trả lời" in fragment.text and "không có hình" in fragment.text
        assert "Thông báo tiêm chủng" in fragment.text
        # Another ward named in the filter answers exactly as a ward nobody has.
        for path in ("/console/map", "/console/map/points"):
            theirs, nobody = client.get(f"{path}?ward={B}"), client.get(f"{path}?ward=phuong-khong-co")
            assert theirs.status_code == nobody.status_code == 404
            assert theirs.text.replace(B, "?") == nobody.text.replace("phuong-khong-co", "?")
        assert client.get("/console/map?ward=Not A Ward").status_code == 422

    with console_client(controller, names["officer_b"], PASSWORD) as client:
        assert points_of(client.get("/console/map/points").text) == (B_PLACED, {"loa-b-chua"})

    with console_client(controller, names["city_viewer"], PASSWORD) as client:
        page = client.get("/console/map")
        assert points_of(page.text)[0] == A_PLACED | B_PLACED
        assert 'id="map-ward"' in page.text and "Phường Hàng Trống" in page.text  # the ward filter
        assert points_of(client.get(f"/console/map/points?ward={B}").text) == (B_PLACED, {"loa-b-chua"})
        assert points_of(client.get(f"/console/map?ward={A}").text)[0] == A_PLACED


def test_a_technician_places_a_device_in_the_console(controller: ControllerHandle) -> None:
    password = create_staff(controller, "ky-thuat", ["technician"])
    with console_client(controller, "ky-thuat", password) as client:
        # Register with a location typed Vietnamese-style (decimal comma).
        response = client.post("/console/devices", data={"id": "loa-dinh", "name": "Loa đình", "lat": "10,7769",
                                                         "lon": "106,7009"})
        assert response.status_code == 200, response.text[:2000]
        assert (controller.device("loa-dinh")["lat"], controller.device("loa-dinh")["lon"]) == (10.7769, 106.7009)
        # Half a location, or one out of range: the form says so and nothing is registered.
        response = client.post("/console/devices", data={"id": "loa-nua", "lat": "10.77", "lon": ""})
        assert response.status_code == 422 and "Nhập cả vĩ độ và kinh độ" in response.text
        response = client.post("/console/devices", data={"id": "loa-xa", "lat": "95", "lon": "106"})
        assert response.status_code == 422 and 'id="reg-lat"' in response.text and "90" in response.text
        assert _call(controller, "GET", "/api/v1/devices/loa-nua")[0] == 404
        assert _call(controller, "GET", "/api/v1/devices/loa-xa")[0] == 404

        # The device page's form holds the location and a map to pick it on.
        page = client.get("/console/devices/loa-dinh")
        assert page.status_code == 200
        assert 'class="map map-pick"' in page.text and 'value="10.7769"' in page.text
        assert "/static/vendor/leaflet/leaflet.js" in page.text
        response = client.patch("/console/devices/loa-dinh", data={"name": "Loa đình", "location": "1",
                                                                   "lat": str(B_AT[0]), "lon": str(B_AT[1])})
        assert response.status_code == 200, response.text[:2000]
        assert (controller.device("loa-dinh")["lat"], controller.device("loa-dinh")["lon"]) == B_AT
        # A form without the location boxes leaves it; both boxes empty clear it.
        assert client.patch("/console/devices/loa-dinh", data={"name": "Loa đình làng"}).status_code == 200
        assert controller.device("loa-dinh")["lat"] == B_AT[0]
        response = client.patch("/console/devices/loa-dinh", data={"name": "Loa đình", "location": "1",
                                                                   "lon": "105"})
        assert response.status_code == 422 and "Nhập cả vĩ độ và kinh độ" in response.text
        assert client.patch("/console/devices/loa-dinh", data={"name": "Loa đình", "location": "1", "lat": "",
                                                             "lon": ""}
                            ).status_code == 200
        assert controller.device("loa-dinh")["lat"] is None
        # Now it is listed as having no location.
        placed, unplaced = points_of(client.get("/console/map/points").text)
        assert "loa-dinh" in unplaced and "loa-dinh" not in placed


@pytest.mark.skipif(_gst_available() is not None, reason=str(_gst_available()))
def test_cameras_are_placed_through_the_api_and_the_console(controller: ControllerHandle,
                                                            rtsp: RtspServer) -> None:  # noqa: F811
    status, body = register_rtsp(controller, "", rtsp, "cam-cho", lat=90.5, lon=106.0)
    assert status == 422, body
    status, body = register_rtsp(controller, "", rtsp, "cam-cho", lat=10.0)
    assert status == 422, body
    status, body = register_rtsp(controller, "", rtsp, "cam-cho", lat=A_AT[0], lon=A_AT[1])
    assert status == 201 and (body["lat"], body["lon"]) == A_AT, body
    status, body = _call(controller, "PATCH", "/api/v1/cameras/cam-cho", {"lat": None})
    assert status == 422, body
    status, body = _call(controller, "PATCH", "/api/v1/cameras/cam-cho", {"lat": B_AT[0], "lon": B_AT[1]})
    assert status == 200 and (body["lat"], body["lon"]) == B_AT, body

    guard = create_staff(controller, "bao-ve", ["security"])
    tech = create_staff(controller, "ky-thuat-cam", ["security", "technician"])
    with console_client(controller, "bao-ve", guard) as client:
        page = client.get("/console/cameras/cam-cho")
        assert page.status_code == 200 and 'id="camera-location-form"' not in page.text  # not theirs to move
        response = client.post("/console/cameras/cam-cho/location", data={"lat": "1", "lon": "2"})
        assert response.status_code == 403 and "kỹ thuật viên" in response.text
    with console_client(controller, "ky-thuat-cam", tech) as client:
        page = client.get("/console/cameras/cam-cho")
        assert 'id="camera-location-form"' in page.text and f'value="{B_AT[0]}"' in page.text
        response = client.post("/console/cameras/cam-cho/location", data={"lat": "10,78", "lon": "106,69"})
        assert response.status_code == 200 and "Đã lưu vị trí" in response.text, response.text[:2000]
        response = client.post("/console/cameras/cam-cho/location", data={"lat": "10.78", "lon": "200"})
        assert response.status_code == 422
    assert _call(controller, "GET", "/api/v1/cameras/cam-cho")[1]["lon"] == 106.69


# in the browser -------------------------------------------------------------------------------------------


def test_the_map_in_the_browser_shows_live_markers_on_a_plain_background(
        controller: ControllerHandle, agents: AgentFactory, browser_factory: BrowserFactory) -> None:  # noqa: F811
    speaker = agents("loa-a-song", zones=("khu-1",))
    status, body = _call(controller, "PATCH", "/api/v1/devices/loa-a-song", {"lat": A_AT[0], "lon": A_AT[1]})
    assert status == 200, body
    names = build_city(controller)
    browser = browser_factory()

    page = browser_page(browser, controller, names["officer_a"], PASSWORD)
    page.goto(controller.api + "/console/map")
    expect(page.locator("h1")).to_have_text("Bản đồ")
    markers = page.locator("#map .map-marker")
    expect(markers).to_have_count(len(A_PLACED) + 1, timeout=WAIT)
    for point, state in {**A_PLACED, "loa-a-song": "silent"}.items():
        expect(page.locator(f'#map .map-marker[data-id="{point}"]')).to_have_class(
            re.compile(rf"\bstate-{state}\b"))
    for point in B_PLACED:
        expect(page.locator(f'#map .map-marker[data-id="{point}"]')).to_have_count(0)
    # No tile could be loaded (nothing listens on the tile port): the plain background, and the page says so.
    expect(page.locator("#map")).to_have_attribute("data-tiles-state", "failed", timeout=WAIT)
    expect(page.locator(".map-no-tiles")).to_be_visible()
    expect(page.locator("#map-unplaced")).to_contain_text("LOA-A-CHUA")
    # Every marker is inside the view it was fitted to.
    box = page.locator("#map").bounding_box()
    assert box is not None
    for n in range(markers.count()):
        mark = markers.nth(n).bounding_box()
        assert mark is not None
        assert box["x"] <= mark["x"] and mark["x"] + mark["width"] <= box["x"] + box["width"]
        assert box["y"] <= mark["y"] and mark["y"] + mark["height"] <= box["y"] + box["height"]
    screenshot(page, "map-1-ward")

    # Live: the speaker turns "playing" while it plays an announcement, then "silent" again.
    status, body = _call(controller, "POST", "/api/v1/announcements",
                         {"text": "Thử loa.", "targets": {"agents": ["loa-a-song"]}, "ward": A})
    assert status in (200, 201, 202), body
    live = page.locator('#map .map-marker[data-id="loa-a-song"]')
    expect(live).to_have_class(re.compile(r"\bstate-playing\b"), timeout=WAIT)
    screenshot(page, "map-2-playing")
    controller.wait_for(lambda: any(line["event"] == "end" for line in speaker.sink_lines()), 60, "the play to end")
    expect(live).to_have_class(re.compile(r"\bstate-silent\b"), timeout=WAIT)

    # The city on a phone: both wards, narrowed to one with the filter.
    phone = browser_page(browser, controller, names["city_viewer"], PASSWORD, viewport=(390, 844))
    phone.goto(controller.api + "/console/map")
    expect(phone.locator("#map .map-marker")).to_have_count(len(A_PLACED) + len(B_PLACED) + 1, timeout=WAIT)
    assert (phone.locator("#map").bounding_box() or {"width": 0})["width"] <= 390
    phone.select_option("#map-ward", B)
    phone.click(".map-filter button[type=submit]")
    expect(phone.locator("#map .map-marker")).to_have_count(len(B_PLACED), timeout=WAIT)
    expect(phone.locator('#map .map-marker[data-id="cam-b"]')).to_have_class(re.compile(r"\bkind-camera\b"))
    screenshot(phone, "map-3-city-phone")


def test_a_technician_taps_the_location_on_the_device_page(
        controller: ControllerHandle, browser_factory: BrowserFactory) -> None:  # noqa: F811
    status, body = _call(controller, "POST", "/api/v1/devices", {"id": "loa-ben", "lat": A_AT[0], "lon": A_AT[1]})
    assert status == 201, body
    password = create_staff(controller, "ky-thuat-ban-do", ["technician"])
    page = browser_page(browser_factory(), controller, "ky-thuat-ban-do", password, viewport=(390, 844))
    page.goto(controller.api + "/console/devices/loa-ben")
    picker = page.locator("#zones-form .map-pick")
    # The pin stands where the device is; a tap elsewhere on the small map moves it and fills both boxes.
    expect(picker.locator(".map-marker")).to_have_count(1)
    box = picker.bounding_box()
    assert box is not None
    picker.click(position={"x": box["width"] * 0.8, "y": box["height"] * 0.25})
    expect(page.locator("#dev-lat")).not_to_have_value(str(A_AT[0]))
    lat, lon = float(page.input_value("#dev-lat")), float(page.input_value("#dev-lon"))
    assert lat > A_AT[0] and lon > A_AT[1], (lat, lon)  # up and to the right of the old point
    page.click("#zones-form button[type=submit]")
    expect(page.locator("#zones-form .flash.ok")).to_be_visible(timeout=WAIT)
    assert (controller.device("loa-ben")["lat"], controller.device("loa-ben")["lon"]) == (lat, lon)
    # The form came back from the server with its own picker, pinned at the saved point.
    expect(page.locator("#zones-form .map-pick .map-marker")).to_have_count(1)
    screenshot(page, "map-4-pick-on-device-page")
