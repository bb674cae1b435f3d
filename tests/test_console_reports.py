"""The console's reports against the real controller: filters checked with errors next to their field in
Vietnamese, the CSV's headers in the user's language, the live sessions' record (recordings for approvers),
and text typed by people shown as text. (Plays reported by real agents: tests/test_console_dashboard.py.)"""

from __future__ import annotations

import csv
import io
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from controller.storage.engine import Database
from controller.storage.models import Announcement, LiveSession, Play
from tests.browser import BrowserFactory, browser_factory  # noqa: F401
from tests.conftest import ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot

PARTIAL = {"HX-Target": "report"}
#: The test controller's time zone (the default setting): report days are its local days.
SITE_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _error(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html)
    assert found, f"no error shown for {field}:\n{html[:3000]}"
    return found.group(1)


def test_reports_filters_csv_live_record_and_browser(controller: ControllerHandle,
                                                     browser_factory: BrowserFactory) -> None:  # noqa: F811
    # One controller for both halves: starting one costs more than either half.
    _filters_and_csv(controller)
    _pages_and_formulas(controller)
    _live_record_and_browser(controller, browser_factory)


def _filters_and_csv(controller: ControllerHandle) -> None:
    """Filters checked with errors under their fields, in Vietnamese; the CSV in the user's language."""
    password = create_staff(controller, "xem", ["viewer"])
    with console_client(controller, "xem", password) as client:
        page = client.get("/console/reports")
        assert page.status_code == 200 and "<h1>Báo cáo</h1>" in page.text
        assert "Không có lượt phát nào khớp với bộ lọc này." in page.text

        # The filter form's own request gets the report part only, errors under their fields, 422.
        bad = client.get("/console/reports", params={"date_from": "31/02/2026"}, headers=PARTIAL)
        assert bad.status_code == 422
        assert "<html" not in bad.text and bad.text.lstrip().startswith('<div id="report">')
        assert _error(bad.text, "date_from") == "Hãy nhập ngày hợp lệ."
        assert 'id="date_from" name="date_from" type="date" value="31/02/2026" aria-invalid="true"' in bad.text

        backwards = client.get("/console/reports", params={"date_from": "02/12/2026", "date_to": "2026-12-01"},
                               headers=PARTIAL)
        assert backwards.status_code == 422
        assert _error(backwards.text, "date_to") == "Ngày kết thúc đang trước ngày bắt đầu."

        wrong = client.get("/console/reports", params={"kind": "radio", "outcome": "lost", "page": "0"},
                           headers=PARTIAL)
        assert wrong.status_code == 422
        assert _error(wrong.text, "kind") == "Hãy chọn một trong các lựa chọn."
        assert _error(wrong.text, "outcome") == "Hãy chọn một trong các lựa chọn."
        assert "Phải từ 1 trở lên." in wrong.text

        # Typed text comes back as text, in the box, never as markup.
        typed = client.get("/console/reports", params={"date_from": '"><script>alert(1)</script>'}, headers=PARTIAL)
        assert typed.status_code == 422 and "<script>alert(1)" not in typed.text
        assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in typed.text

        # Day/month/year as typed on a phone is read, and written back as the date box wants it.
        ok = client.get("/console/reports", params={"date_from": "1/12/2026", "date_to": "02/12/2026",
                                                    "kind": "live"}, headers=PARTIAL)
        assert ok.status_code == 200
        assert 'value="2026-12-01"' in ok.text and 'value="2026-12-02"' in ok.text
        assert "/console/reports/plays.csv?date_from=2026-12-01&amp;date_to=2026-12-02&amp;kind=live" in ok.text

        empty = client.get("/console/reports/plays.csv", params={"date_from": "2026-12-01"})
        assert empty.status_code == 200 and empty.content.startswith(b"\xef\xbb\xbf")
        assert "attachment" in empty.headers["content-disposition"]
        header = next(csv.reader(io.StringIO(empty.content.decode("utf-8-sig"))))
        assert header[:3] == ["Giờ phát theo lịch", "Giờ bắt đầu thực tế", "Kết thúc lúc"]
        assert "Kết quả" in header and "Nội dung" in header

        refused = client.get("/console/reports/plays.csv", params={"date_to": "hôm qua"})
        assert refused.status_code == 422 and "Hãy nhập ngày hợp lệ." in refused.text

        client.cookies.set("lp_lang", "en")
        english = client.get("/console/reports/plays.csv")
        assert next(csv.reader(io.StringIO(english.content.decode("utf-8-sig"))))[:2] == ["Scheduled start",
                                                                                         "Actual start"]

    anonymous = httpx.get(controller.api + "/console/reports/plays.csv", follow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and "/console/login" in anonymous.headers["location"]


def _pages_and_formulas(controller: ControllerHandle) -> None:
    """60 plays: two pages on screen, all 60 in the CSV, and a formula typed as text stays text there."""
    status, body = controller.post("/api/v1/devices", {"id": "loa-p", "zones": ["khu-pho-9"]})
    assert status == 201, body
    text = '=HYPERLINK("http://example.invalid","Bấm vào đây")'
    base = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    db = Database(f"sqlite:///{controller.data_dir / 'loaphuong.sqlite3'}")
    try:
        with db.session() as session:
            # Rows as the fleet recorder writes them from agents' play events.
            session.add(Announcement(id="ann-formula", text=text, priority="normal", targets=["loa-p"],
                                     status="sent"))
            session.add_all(Play(agent_id="loa-p", play_id=f"cmd-{n}", attempt=0, announcement_id="ann-formula",
                                 priority="normal", output="file", scheduled_start_ms=base + n * 1000,
                                 actual_start_ms=base + n * 1000 + 20, ended_at_ms=base + n * 1000 + 5020,
                                 outcome="completed") for n in range(60))
    finally:
        db.engine.dispose()
    password = create_staff(controller, "baocao", ["officer"])
    with console_client(controller, "baocao", password) as client:
        first = client.get("/console/reports", params={"zone": "khu-pho-9"}, headers=PARTIAL).text
        assert "Tìm thấy 60 lượt phát · trang 1/2" in first
        assert first.count('<tr data-agent="loa-p"') == 50
        assert 'href="/console/reports?zone=khu-pho-9&amp;page=2"' in first
        second = client.get("/console/reports", params={"zone": "khu-pho-9", "page": "2"}, headers=PARTIAL).text
        assert second.count('<tr data-agent="loa-p"') == 10 and 'rel="prev"' in second
        beyond = client.get("/console/reports", params={"zone": "khu-pho-9", "page": "9"}, headers=PARTIAL)
        assert beyond.status_code == 200 and "trang 2/2" in beyond.text  # past the end: the last page
        exported = client.get("/console/reports/plays.csv", params={"zone": "khu-pho-9"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 60
    assert {r["Nội dung"] for r in rows} == {"'" + text}
    assert {r["Lệch so với lịch (ms)"] for r in rows} == {"20"} and {r["Thời lượng (giây)"] for r in rows} == {"5.0"}


def _add_live_session(controller: ControllerHandle, title: str) -> tuple[str, date]:
    """A finished live session with a recording, written into the controller's database as the hub would;
    its id and its local day."""
    session_id = secrets.token_hex(8)
    start = datetime.now(UTC) - timedelta(minutes=10)
    db = Database(f"sqlite:///{controller.data_dir / 'loaphuong.sqlite3'}")
    try:
        with db.session() as session:
            session.add(LiveSession(id=session_id, username="canbo", source="microphone", priority="priority",
                                    title=title, zones=["khu-pho-1"], targets=["loa-a", "loa-b"], status="ended",
                                    started_at=start, live_at=start + timedelta(seconds=2),
                                    ended_at=start + timedelta(minutes=3, seconds=2),
                                    end_reason="ended by the officer", recording=f"live/{session_id}.ogg",
                                    recording_bytes=1234))
    finally:
        db.engine.dispose()
    return session_id, start.astimezone(SITE_TZ).date()


def _live_record_and_browser(controller: ControllerHandle, browser_factory: BrowserFactory) -> None:  # noqa: F811
    """The live sessions' record (a player for approvers only), and the filter form in a phone's browser."""
    session_id, day = _add_live_session(controller, "Tin <img src=x onerror=alert(1)> khẩn")
    approver = create_staff(controller, "duyet", ["approver"])
    viewer = create_staff(controller, "xem2", ["viewer"])

    with console_client(controller, "xem2", viewer) as client:
        html = client.get("/console/reports").text
    row = re.search(rf'<tr data-session="{session_id}">.*?</tr>', html, re.S)
    assert row, html[-3000:]
    assert "Tin &lt;img src=x onerror=alert(1)&gt; khẩn" in row.group(0) and "<img" not in row.group(0)
    assert "Người duyệt có thể nghe lại" in row.group(0)  # a viewer is told who may listen, gets no player
    assert "/recording" not in row.group(0)
    assert "3:00" in row.group(0) and "Đã kết thúc" in row.group(0)

    browser = browser_factory()
    page = browser_page(browser, controller, "duyet", approver, viewport=(390, 844))
    page.goto(controller.api + "/console/reports")
    live = page.locator(f'tr[data-session="{session_id}"]')
    expect(live.locator("audio")).to_have_attribute("src", f"/api/v1/live/sessions/{session_id}/recording")
    expect(live).to_contain_text("Tin <img src=x onerror=alert(1)> khẩn")

    # A backwards period: the message is under the end date, in Vietnamese, without leaving the page.
    page.evaluate("window.lpNotReloaded = true")
    page.fill("#date_from", (day + timedelta(days=1)).isoformat())
    page.fill("#date_to", day.isoformat())
    page.click("#report-filters button[type=submit]")
    expect(page.locator("#date_to-error")).to_have_text("Ngày kết thúc đang trước ngày bắt đầu.")
    expect(page.locator("#date_to")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("window.lpNotReloaded") is True
    screenshot(page, "reports-filter-error-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1

    first, last = day.isoformat(), (day + timedelta(days=1)).isoformat()
    page.fill("#date_from", first)
    page.fill("#date_to", last)
    page.select_option("#kind", "live")  # no agent played this session (it was written, not broadcast)
    page.click("#report-filters button[type=submit]")
    expect(page.locator("#date_to-error")).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"date_from={first}&date_to={last}&kind=live"))
    expect(page.locator("#report p.empty")).to_have_text("Không có lượt phát nào khớp với bộ lọc này.")
    expect(page.locator(f'tr[data-session="{session_id}"]')).to_have_count(1)  # in the period: still listed
