"""The console's dashboard against the real controller, Mosquitto and two agents with file sinks: an
announcement sent to a zone shows up as playing without a reload (the SSE change feed), then in the
reports as played, and in their CSV; roles, the motion panel, and HTML in announcement text."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import expect

from controller.storage.engine import Database
from controller.storage.models import Camera, CameraEvent, Device, DeviceEvent
from tests.browser import BrowserFactory, browser_factory  # noqa: F401
from tests.conftest import AgentFactory, ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot

#: Long enough (about ten seconds of speech) that the dashboard sees it playing, with markup that must
#: stay text.
TEXT = ("Thông báo <b>khẩn</b> của Ủy ban nhân dân phường: sáng mai từ bảy giờ đến mười một giờ, "
        "tổ dân phố một và tổ dân phố hai tạm ngừng cấp nước để sửa đường ống. Bà con chủ động trữ nước.")


def test_announcement_plays_live_on_dashboard_then_reports_show_it(
        controller: ControllerHandle, agents: AgentFactory, browser_factory: BrowserFactory) -> None:  # noqa: F811
    agents("loa-a")
    agents("loa-b", zones=("khu-pho-1", "khu-pho-2"))
    password = create_staff(controller, "canbo", ["officer"])
    browser = browser_factory()
    page = browser_page(browser, controller, "canbo", password)
    expect(page.locator("h1")).to_have_text("Tổng quan")
    expect(page.locator("#dashboard")).to_have_attribute("data-live", "on")  # the change feed is connected
    expect(page.locator('.card.zone[data-zone="khu-pho-1"] .big-number')).to_have_text("2/2")
    expect(page.locator("#panel-motion")).to_have_count(0)  # officers do not see cameras
    page.evaluate("window.lpNotReloaded = true")

    status, accepted = controller.post("/api/v1/announcements", {"text": TEXT, "targets": {"zones": ["khu-pho-1"]}})
    assert status == 202, accepted

    # Both speakers show it as playing, fetched again on the change feed's "plays" event, same page.
    for agent in ("loa-a", "loa-b"):
        row = page.locator(f'#panel-playing tr[data-agent="{agent}"]')
        expect(row).to_have_class(re.compile(r"\bplaying\b"), timeout=15_000)
        expect(row.locator("td.now")).to_contain_text("Thông báo <b>khẩn</b>")
    assert page.evaluate("window.lpNotReloaded") is True
    assert page.locator("#panel-playing b").count() == 0  # the markup was shown as text
    screenshot(page, "dashboard-desktop")
    phone = browser_page(browser, controller, "canbo", password, viewport=(390, 844))
    expect(phone.locator("#panel-playing tr.playing")).to_have_count(2)
    screenshot(phone, "dashboard-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # nothing pushes the page sideways

    controller.wait_deliveries(accepted["id"], {"played"}, timeout=40)
    expect(page.locator("#panel-playing tr.playing")).to_have_count(0, timeout=15_000)

    # Reports: both plays, played in full, with the text as text.
    page.goto(controller.api + "/console/reports")
    page.select_option("#zone", "khu-pho-1")
    page.select_option("#kind", "announcement")
    page.click("#report-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"zone=khu-pho-1"))
    rows = page.locator("table.plays tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Đã phát hết")
    expect(rows.first.locator("td.content")).to_contain_text("Thông báo <b>khẩn</b>")
    expect(page.locator(".summary")).to_have_text("Tìm thấy 2 lượt phát")
    screenshot(page, "reports-desktop")
    phone.goto(controller.api + "/console/reports?zone=khu-pho-1")
    expect(phone.locator("table.plays tbody tr")).to_have_count(2)
    screenshot(phone, "reports-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1

    with console_client(controller, "canbo", password) as client:
        html = client.get("/console/reports", params={"zone": "khu-pho-1"}).text
        assert "Thông báo &lt;b&gt;khẩn&lt;/b&gt;" in html and "<b>khẩn" not in html
        href = page.locator("#csv-link").get_attribute("href")
        assert href and href.startswith("/console/reports/plays.csv?")
        response = client.get(href)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Vietnamese right
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["Giờ phát theo lịch", "Giờ bắt đầu thực tế", "Kết thúc lúc", "Cụm loa"]
    body = [dict(zip(table[0], line, strict=True)) for line in table[1:]]
    assert sorted(r["Cụm loa"] for r in body) == ["loa-a", "loa-b"]
    for r in body:
        assert r["Kết quả"] == "Đã phát hết" and r["Loại"] == "Thông báo" and r["Nội dung"] == TEXT
        assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", r["Giờ bắt đầu thực tế"])
        assert float(r["Thời lượng (giây)"]) > 3


def test_dashboard_roles_next_offline_and_escaping(controller: ControllerHandle) -> None:
    # Registered agents that never connected: offline in their zones, with plays waiting for them — for
    # loa-xa an announcement in two hours and, earlier, a schedule item ("next" is the earlier); for loa-xb
    # the announcement only.
    for agent_id, name, zone in (("loa-xa", "Loa <i>chợ</i>", "khu-pho-3"), ("loa-xb", "", "khu-pho-4")):
        status, body = controller.post("/api/v1/devices", {"id": agent_id, "name": name, "zones": [zone]})
        assert status == 201, body
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    status, accepted = controller.post("/api/v1/announcements", {
        "text": "Họp tổ dân phố <script>alert('x')</script> lúc tám giờ tối.", "targets": ["loa-xa", "loa-xb"],
        "start_at": later})
    assert status == 202, accepted
    controller.wait_for(lambda: len(controller.announcement(accepted["id"])["deliveries"]) == 2, 30,
                        "deliveries to loa-xa and loa-xb")
    status, item = controller.post("/api/v1/schedule/items", {
        "title": "Bản tin <u>sáng</u>", "content": [{"kind": "tts", "text": "Bản tin của phường."}],
        "targets": {"zones": ["khu-pho-3"]}, "start": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    assert status == 201, item
    if item["status"] == "pending":
        status, item = controller.post(f"/api/v1/schedule/items/{item['id']}/approve", {})
        assert status == 200, item

    _faults_and_motion(controller)

    viewer = create_staff(controller, "xem", ["viewer"])
    security = create_staff(controller, "baove", ["security"])
    with console_client(controller, "xem", viewer) as client:
        page = client.get("/console/")
        assert page.status_code == 200
        assert "<h1>Tổng quan</h1>" in page.text
        assert 'id="panel-motion"' not in page.text
        assert client.get("/console/dashboard/motion").status_code == 403

        fleet = client.get("/console/dashboard/fleet").text
        assert "Loa &lt;i&gt;chợ&lt;/i&gt;" in fleet and "<i>chợ" not in fleet
        assert re.search(r'data-zone="khu-pho-3".*?0/1.*?Chưa kết nối lần nào', fleet, re.S)

        playing = client.get("/console/dashboard/playing").text
        rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-agent="(loa-x[ab])".*?</tr>', playing, re.S)}
        assert set(rows) == {"loa-xa", "loa-xb"}, playing
        assert "Bản tin &lt;u&gt;sáng&lt;/u&gt;" in rows["loa-xa"] and "Họp tổ dân phố" not in rows["loa-xa"]
        assert "Họp tổ dân phố &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in rows["loa-xb"]
        assert "<script>" not in playing and "<u>" not in playing
        faults = client.get("/console/dashboard/faults").text
        assert re.search(r"Bảng LED bị lỗi</td><td>loa-xa · bang-cho</td>.*?serial port &lt;gone&gt;", faults, re.S)
        assert re.search(r"Camera bị lỗi</td><td>Cổng chợ \(khu-pho-3\)</td>.*?no answer", faults, re.S)
        assert re.search(r"Thiết bị báo lỗi</td><td>loa-xb</td><td[^>]*>media_fetch: hash &lt;b&gt;", faults, re.S)
        assert "<gone>" not in faults and "<b>" not in faults

        # The dashboard only reads; a change sent without the CSRF header (here: signing out) is refused.
        refused = client.post("/console/logout", headers={"X-CSRF-Token": ""})
        assert refused.status_code == 403
        assert "Hãy tải lại trang rồi thử lại." in refused.text

    with console_client(controller, "baove", security) as client:
        page = client.get("/console/")
        assert 'id="panel-motion"' in page.text
        assert 'sse-connect="/console/events?kinds=' in page.text and "motion" in page.text
        motion = client.get("/console/dashboard/motion")
        assert motion.status_code == 200
        assert re.search(r'href="/console/cameras/cam-cho".*?Cổng chợ.*?12.5% vùng theo dõi có chuyển động',
                         motion.text, re.S), motion.text
    # Not signed in: the login page, then back here.
    anonymous = httpx.get(controller.api + "/console/", follow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and "/console/login" in anonymous.headers["location"]


def _faults_and_motion(controller: ControllerHandle) -> None:
    """A sign fault in loa-xa's state, an error report from loa-xb, a camera in fault and its motion event,
    written into the controller's database as the fleet recorder and the camera service write them."""
    now = int(time.time() * 1000)
    db = Database(f"sqlite:///{controller.data_dir / 'loaphuong.sqlite3'}")
    try:
        with db.session() as session:
            device = session.get(Device, "loa-xa")
            assert device is not None
            device.state = {"volume": 80, "ts": now, "signs": [
                {"sign": "bang-cho", "width": 64, "height": 16, "source": "idle", "since": now,
                 "fault": "serial port <gone>"}]}
            session.add(DeviceEvent(id="ev-err-1", agent_id="loa-xb", type="error", ts_ms=now - 60_000,
                                    data={"code": "media_fetch", "message": "hash <b>mismatch</b>"}))
            session.add(Camera(id="cam-cho", name="Cổng chợ", zone="khu-pho-3", host="192.0.2.10", port=80,
                               password_enc="", stream_uri="rtsp://192.0.2.10/stream", status="fault",
                               fault="no answer", status_changed_at=datetime.now(UTC)))
            session.flush()
            session.add(CameraEvent(id="mo-1", camera_id="cam-cho", type="camera.motion", ts_ms=now - 30_000,
                                    zone="khu-pho-3", score=0.125, detail={}))
    finally:
        db.engine.dispose()
