"""Issue 7's journey through the real console, end to end: an officer signs in on Debian's chromium,
composes a Vietnamese announcement, listens to the preview, sends it to a zone of two speakers (agents
with file sinks, a real broker and controller), watches the dashboard show it playing and then finds it
played in the reports; the users page is not hers. Screenshots of each step are kept as artefacts.
(Security's camera grid runs against the ONVIF emulator in tests/test_console_cameras.py.)"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import BrowserFactory, browser_factory  # noqa: F401 - the fixture
from tests.conftest import AgentFactory, ControllerHandle
from tests.console_support import browser_page, create_staff, screenshot

TEXT = ("Kính thưa bà con tổ dân phố số 3: UBND phường tổ chức tiêm chủng vào ngày 15/3 lúc 7h30 "
        "tại nhà văn hóa khu phố. Bà con mang theo sổ tiêm chủng và CCCD.")
WAIT = 20_000


def test_officer_composes_listens_sends_to_a_zone_and_follows_it_to_the_reports(
        controller: ControllerHandle, agents: AgentFactory, browser_factory: BrowserFactory) -> None:  # noqa: F811
    speakers = [agents("loa-tdp3-a", zones=("to-dan-pho-3",)), agents("loa-tdp3-b", zones=("to-dan-pho-3",))]
    password = create_staff(controller, "can-bo-van-hoa", ["officer"])
    page = browser_page(browser_factory(), controller, "can-bo-van-hoa", password)
    expect(page.locator("h1")).to_have_text("Tổng quan")
    screenshot(page, "journey-1-dashboard")

    # compose in Vietnamese and listen first: the page shows what the speakers will read
    page.click("nav a[href='/console/announcements']")
    expect(page.locator("h1")).to_have_text("Thông báo")
    page.fill("#text", TEXT)
    page.click("#listen")
    expect(page.locator("#spoken-text")).to_contain_text("ủy ban nhân dân phường", timeout=WAIT)
    expect(page.locator("#spoken-text")).to_contain_text("mười lăm tháng ba", timeout=WAIT)
    expect(page.locator("#preview-audio")).to_have_attribute("src", re.compile(r"^/media/[0-9a-f]{64}"))
    screenshot(page, "journey-2-listen")

    # send it now to the zone
    page.check("input[name=zones][value=to-dan-pho-3]")
    page.click("#send")
    expect(page.locator("#compose .flash.ok")).to_contain_text("Đã gửi", timeout=WAIT)
    screenshot(page, "journey-3-sent")

    # the dashboard shows both speakers playing it (refreshed by the change feed)
    page.click("nav a[href='/console/']")
    for speaker in speakers:
        row = page.locator(f'#panel-playing tr[data-agent="{speaker.agent_id}"]')
        expect(row).to_have_class(re.compile(r"\bplaying\b"), timeout=WAIT)
        expect(row.locator("td.now")).to_contain_text("Kính thưa bà con tổ dân phố số 3")
    screenshot(page, "journey-4-dashboard-playing")

    # when both have finished, the reports list the two plays as played in full
    for speaker in speakers:
        controller.wait_for(lambda s=speaker: any(line["event"] == "end" for line in s.sink_lines()), 60,
                            f"{speaker.agent_id} to finish playing")
    page.click("nav a[href='/console/reports']")
    expect(page.locator("h1")).to_have_text("Báo cáo")
    page.select_option("#zone", "to-dan-pho-3")
    page.click("#report-filters button[type=submit]")
    rows = page.locator("table.plays tbody tr")
    expect(rows).to_have_count(2, timeout=WAIT)
    for n in range(2):
        expect(rows.nth(n)).to_contain_text("Đã phát hết", timeout=WAIT)
    screenshot(page, "journey-5-reports")

    # the officer's menu has no users page, and going there anyway gets the console's own refusal
    expect(page.locator("nav a[href='/console/users']")).to_have_count(0)
    response = page.goto(controller.api + "/console/users")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Không được phép")
    expect(page.locator("main")).to_contain_text("Quản trị viên")
    screenshot(page, "journey-6-users-refused")
