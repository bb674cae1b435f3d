"""The console's announcements page against the real controller, broker, agent and Debian's chromium:
an officer listens, sends to a zone (the agent plays it), schedules a repeating item; an approver approves
it; form errors come back in Vietnamese next to their fields; roles, zone scope, CSRF and escaping hold."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from controller.tools.local_stack import register_agent
from tests.browser import BrowserFactory, browser_factory  # noqa: F401
from tests.conftest import AgentFactory, Broker, ControllerHandle, running_controller
from tests.console_support import browser_page, console_client, create_staff, screenshot

PAGE = "/console/announcements"
TEXT = "UBND phường thông báo: ngày 15/3 lúc 7h30 họp tổ dân phố số 5, liên hệ 0912345678."
#: How long a page may take to show something (ms): speech is rendered while it waits, and on a busy
#: two-core machine that takes longer than expect's default 5 s.
WAIT = 15_000
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> Họp tổ dân phố'


@pytest.fixture
def controller(tmp_path: Path, broker: Broker) -> Iterator[ControllerHandle]:
    """The controller with approval required, as a ward would run it (overrides conftest's)."""
    with running_controller(tmp_path, broker.port, {"LP_REQUIRE_APPROVAL": "true"}) as handle:
        yield handle


def _errors(html: str, field: str) -> list[str]:
    """The messages shown under ``field`` (the form macros give them the id ``<field>-error``)."""
    return re.findall(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]*)</p>', html)


def test_officer_listens_sends_schedules_and_approver_approves(controller: ControllerHandle, agents: AgentFactory,
                                                             browser_factory: BrowserFactory) -> None:  # noqa: F811
    agent = agents("loa-1", zones=("khu-pho-1",))
    officer_pw = create_staff(controller, "canbo", ["officer"])
    approver_pw = create_staff(controller, "duyet", ["approver"])
    browser = browser_factory()

    page = browser_page(browser, controller, "canbo", officer_pw)
    page.goto(controller.api + PAGE)
    expect(page.locator("h1")).to_have_text("Thông báo", timeout=WAIT)
    page.fill("#text", TEXT)
    page.click("#listen")
    spoken = page.locator("#spoken-text")
    expect(spoken).to_contain_text("ủy ban nhân dân phường", timeout=WAIT)
    expect(spoken).to_contain_text("mười lăm tháng ba", timeout=WAIT)
    source = page.locator("#preview-audio").get_attribute("src")
    assert source and source.startswith("/media/")
    audio = page.request.get(controller.api + source)
    assert audio.status == 200
    assert audio.headers["content-type"].startswith("audio/")
    assert audio.body()[:4] in (b"OggS", b"RIFF", b"ID3\x03", b"ID3\x04") or audio.body()[:2] == b"\xff\xfb"
    playable = page.evaluate("""() => new Promise((resolve) => {
        const a = document.getElementById('preview-audio');
        if (a.readyState >= 1) return resolve(a.duration);
        a.addEventListener('loadedmetadata', () => resolve(a.duration));
        a.addEventListener('error', () => resolve(-1));
        a.load();
    })""")
    assert playable > 1, playable
    screenshot(page, "announcements-officer-listen-desktop")

    # send now to the zone: the agent in it plays the announcement
    page.check("input[name=zones][value=khu-pho-1]")
    page.click("#send")
    expect(page.locator("#compose .flash.ok")).to_contain_text("Đã gửi", timeout=WAIT)
    controller.wait_for(lambda: any(line["event"] == "start" for line in agent.sink_lines()), 40,
                        "the agent to start playing")
    start = next(line for line in agent.sink_lines() if line["event"] == "start")
    status, anns = controller.get("/api/v1/announcements")
    assert status == 200 and anns[0]["text"] == TEXT and start["sha256"] == anns[0]["media_sha256"]

    # a repeating item, weekdays at 17:00: it waits for approval
    page.fill("#text", "Nhắc bà con thu gom rác lúc 17h.")
    page.check("input[name=zones][value=khu-pho-1]")
    page.check("input[name=when][value=recurring]")
    page.select_option("#repeat", "weekdays")
    page.fill("#time", "17:00")
    page.click("#send")
    expect(page.locator("#compose .flash.ok")).to_contain_text("chờ duyệt", timeout=WAIT)
    row = page.locator("#recent tr[data-status=pending]")
    expect(row).to_contain_text("Thứ Hai đến thứ Sáu", timeout=WAIT)
    expect(page.locator(".approve")).to_have_count(0)  # an officer has no approval queue
    phone = browser_page(browser, controller, "canbo", officer_pw, viewport=(390, 844))
    phone.goto(controller.api + PAGE)
    phone.check("input[name=when][value=recurring]")
    screenshot(phone, "announcements-officer-phone")

    # the approver approves it from the queue
    approver = browser_page(browser, controller, "duyet", approver_pw)
    approver.goto(controller.api + PAGE)
    card = approver.locator("#queue article")
    expect(card).to_have_count(1, timeout=WAIT)
    expect(card).to_contain_text("Nhắc bà con thu gom rác", timeout=WAIT)
    screenshot(approver, "announcements-approver-queue-desktop")
    approver_phone = browser_page(browser, controller, "duyet", approver_pw, viewport=(390, 844))
    approver_phone.goto(controller.api + PAGE)
    screenshot(approver_phone, "announcements-approver-queue-phone")
    approver.click("#queue .approve")
    expect(approver.locator("#queue-notice .flash.ok")).to_contain_text("Đã duyệt", timeout=WAIT)
    expect(approver.locator("#queue article")).to_have_count(0, timeout=WAIT)
    status, items = controller.get("/api/v1/schedule/items")
    assert status == 200 and [i["status"] for i in items] == ["approved"]
    assert items[0]["rrule"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR" and items[0]["decided_by"] == "duyet"
    # the officer's open page hears of it (SSE) without reloading, and of the speaker's play, down to "played"
    expect(page.locator("#recent tr[data-status=approved]")).to_have_count(1, timeout=WAIT)
    controller.wait_for(lambda: any(line["event"] == "end" for line in agent.sink_lines()), 40,
                        "the agent to finish playing")
    expect(page.locator("#recent [data-state=played]")).to_contain_text("Đã phát", timeout=WAIT)
    screenshot(page, "announcements-officer-desktop")


def test_form_errors_roles_and_csrf(controller: ControllerHandle) -> None:
    register_agent(controller.api, controller.token, "loa-1", ("khu-pho-1",))
    officer_pw = create_staff(controller, "canbo", ["officer"])
    viewer_pw = create_staff(controller, "xem", ["viewer"])
    with console_client(controller, "canbo", officer_pw) as client:
        # empty text and no listeners: both told, in Vietnamese, under their fields
        response = client.post(PAGE, data={"text": "  ", "when": "now", "priority": "normal"})
        assert response.status_code == 422
        assert _errors(response.text, "text") == ["Hãy nhập nội dung cần đọc."]
        assert _errors(response.text, "targets") == ["Hãy chọn nơi nghe: tất cả, hoặc một số khu vực hay loa."]
        # too long for the site's limit (5,000 characters)
        response = client.post(PAGE, data={"text": "a " * 3000, "zones": "khu-pho-1"})
        assert response.status_code == 422
        assert _errors(response.text, "text") == ["Quá dài: 5999 ký tự; tối đa 5000."]
        # a time that has passed, and a repeat without its time or days
        past = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        response = client.post(PAGE, data={"text": "Họp", "zones": "khu-pho-1", "when": "at", "at": past})
        assert response.status_code == 422
        assert _errors(response.text, "at") == ["Thời điểm này đã qua. Hãy chọn thời điểm muộn hơn."]
        response = client.post(PAGE, data={"text": "Họp", "zones": "khu-pho-1", "when": "recurring",
                                           "repeat": "weekly", "time": "25:00", "until_date": "2001-01-01"})
        assert response.status_code == 422
        assert _errors(response.text, "days") == ["Hãy chọn ít nhất một ngày trong tuần."]
        assert _errors(response.text, "time") == ["Hãy nhập giờ hợp lệ."]
        assert _errors(response.text, "until_date") == ["Ngày này đã qua."]
        # a choice the form never offers
        response = client.post(PAGE, data={"text": "Họp", "zones": "khu-pho-1", "priority": "loudest"})
        assert response.status_code == 422
        assert _errors(response.text, "priority") == ["Hãy chọn một trong các lựa chọn."]
        # the text typed is kept for correcting
        assert "Họp" in response.text
        # listening to nothing
        response = client.post(PAGE + "/preview", data={"text": ""})
        assert response.status_code == 422 and "Hãy nhập nội dung cần đọc." in response.text
        # a one-off in the future is a schedule item, pending approval
        later = (datetime.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
        response = client.post(PAGE, data={"text": "Họp tổ dân phố", "zones": "khu-pho-1", "when": "at",
                                           "at": later})
        assert response.status_code == 200, response.text
        assert "Đã lên lịch phát. Thông báo đang chờ duyệt trước khi phát." in response.text
        assert response.headers["HX-Trigger"] == "lp-announcements"
        item_id = controller.get("/api/v1/schedule/items")[1][0]["id"]
        # an officer cannot approve: 403 page
        response = client.post(f"{PAGE}/items/{item_id}/approve")
        assert response.status_code == 403
        page = client.get(PAGE).text
        assert 'class="approve"' not in page and f"/items/{item_id}/cancel" in page
        # but may cancel it
        response = client.post(f"{PAGE}/items/{item_id}/cancel")
        assert response.status_code == 200 and 'data-status="cancelled"' in response.text
        assert controller.get(f"/api/v1/schedule/items/{item_id}")[1]["status"] == "cancelled"
        # English on request
        client.cookies.set("lp_lang", "en")
        response = client.post(PAGE, data={"text": ""})
        assert _errors(response.text, "text") == ["Write the text to be read out."]
        client.cookies.delete("lp_lang")
        # without the CSRF header (a plain cross-site form): refused
        del client.headers["X-CSRF-Token"]
        response = client.post(PAGE, data={"text": "Họp", "zones": "khu-pho-1"})
        assert response.status_code == 403
    with console_client(controller, "xem", viewer_pw) as client:
        page = client.get(PAGE)
        assert page.status_code == 200 and 'id="compose"' not in page.text
        assert "Tài khoản của bạn được xem thông báo nhưng không được soạn." in page.text
        response = client.post(PAGE, data={"text": "Họp", "zones": "khu-pho-1"})
        assert response.status_code == 403
        response = client.post(PAGE + "/preview", data={"text": "Họp"})
        assert response.status_code == 403
        assert client.get(PAGE + "/queue").status_code == 403
        assert client.post(f"{PAGE}/items/{item_id}/cancel").status_code == 403
        assert "/cancel" not in client.get(PAGE + "/recent").text


def test_zone_scope_rejection_and_escaping(controller: ControllerHandle) -> None:
    register_agent(controller.api, controller.token, "loa-1", ("khu-pho-1",))
    register_agent(controller.api, controller.token, "loa-2", ("khu-pho-2",))
    local_pw = create_staff(controller, "canbo-kp1", ["officer"], zones=["khu-pho-1"])
    approver_pw = create_staff(controller, "duyet", ["approver"])
    with console_client(controller, "canbo-kp1", local_pw) as client:
        page = client.get(PAGE).text
        # the form offers only the officer's own zone, no "everyone" and no single speakers
        assert 'value="khu-pho-1"' in page and 'value="khu-pho-2"' not in page
        assert 'name="everyone"' not in page and 'name="agents"' not in page
        response = client.post(PAGE, data={"text": "Họp", "zones": "khu-pho-2"})
        assert response.status_code == 422
        assert _errors(response.text, "targets") == ["Bạn chỉ được phát tới khu vực của mình: khu-pho-1."]
        response = client.post(PAGE, data={"text": "Họp", "everyone": "1"})
        assert _errors(response.text, "targets") == ["Bạn chỉ được phát tới khu vực của mình: khu-pho-1."]
        assert controller.get("/api/v1/announcements")[1] == []
        # markup typed into the text is shown as text: in the list, the schedule, the queue and the form
        later = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        response = client.post(PAGE, data={"text": HOSTILE, "zones": "khu-pho-1"})
        assert response.status_code == 200, response.text
        response = client.post(PAGE, data={"text": HOSTILE, "zones": "khu-pho-1", "when": "at", "at": later})
        assert response.status_code == 200, response.text
        bad = client.post(PAGE, data={"text": HOSTILE})  # no listeners: the form comes back with the text
        assert bad.status_code == 422
        for html in (client.get(PAGE).text, client.get(PAGE + "/recent").text, bad.text):
            assert "<script>alert" not in html and "<img src=x" not in html
            assert "&lt;script&gt;alert(" in html
    with console_client(controller, "duyet", approver_pw) as client:
        queue = client.get(PAGE + "/queue")
        assert queue.status_code == 200
        assert "<script>alert" not in queue.text and "&lt;script&gt;alert(" in queue.text
        item_id = controller.get("/api/v1/schedule/items")[1][0]["id"]
        # rejecting needs a reason, said under the reason's box
        response = client.post(f"{PAGE}/items/{item_id}/reject", data={"reason": " "})
        assert response.status_code == 422
        assert f'<p class="field-error" id="reason-{item_id}-error">Trường này là bắt buộc.</p>' in response.text
        response = client.post(f"{PAGE}/items/{item_id}/reject", data={"reason": "<b>Sai giờ</b>"})
        assert response.status_code == 200 and "Đã từ chối" in response.text
        deadline = time.monotonic() + 5
        while controller.get(f"/api/v1/schedule/items/{item_id}")[1]["status"] != "rejected":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        recent = client.get(PAGE + "/recent").text
        assert "&lt;b&gt;Sai giờ&lt;/b&gt;" in recent and "<b>Sai giờ" not in recent

