"""The console's live broadcast page against real components: Chromium's fake microphone plays a WAV tone,
the page captures it (getUserMedia → AudioWorklet → WebSocket signed in with the session cookie), Icecast
carries it, two file-sink agents play it. Also the page's checks: roles, the relay form's errors, CSRF,
escaping.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.browser import BrowserFactory, browser_factory  # noqa: F401 - the fixture
from tests.conftest import ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot
from tests.test_live import LiveStack, controller, finished_plays, live, ws_url  # noqa: F401 - fixtures
from tests.test_live_support import heard_tone, relay_files, tone_pcm, write_wav


def admin_password(ctl: ControllerHandle) -> str:
    """The first admin's password (the file holds the username, then the password)."""
    return (ctl.data_dir / "admin.password").read_text().split("\n")[1]


def open_live_page(browser: Browser, ctl: ControllerHandle, viewport: tuple[int, int] = (1280, 900)) -> Page:
    """The live page, signed in as the first admin through the login form (Vietnamese)."""
    page = browser_page(browser, ctl, "admin", admin_password(ctl), viewport=viewport)
    page.goto(ctl.api + "/console/live")
    expect(page.locator("#go-live")).to_have_text("Phát trực tiếp")
    return page


def sessions(ctl: ControllerHandle) -> list[dict[str, Any]]:
    status, body = ctl.get("/api/v1/live/sessions")
    assert status == 200
    return list(body)


def test_console_goes_live_ends_tab_closes_and_icecast_down(live: LiveStack, agents: Any,  # noqa: F811
                                               browser_factory: BrowserFactory, tmp_path: Path) -> None:  # noqa: F811
    ctl = live.ctl
    a1, a2 = agents("loa-01"), agents("loa-02")
    tone_wav = write_wav(tmp_path / "tone.wav", tone_pcm(4.0))
    browser = browser_factory(fake_audio=tone_wav)
    page = open_live_page(browser, ctl)
    expect(page.locator("#hub-status")).to_be_hidden()
    page.locator("input[name=agent][value=loa-01]").check()
    page.locator("input[name=agent][value=loa-02]").check()
    page.locator("#go-live").click()
    expect(page.locator("#live-state")).to_contain_text("Đang phát trực tiếp tới: loa-01, loa-02", timeout=15_000)
    time.sleep(3.0)
    assert float(page.locator("#level").get_attribute("value") or 0) >= 0  # the meter is fed
    assert page.locator("#elapsed").text_content() != "0:00"
    screenshot(page, "live-on-air-desktop")
    page.locator("#end-live").click()
    expect(page.locator("#live-state")).to_contain_text("Đã kết thúc", timeout=10_000)
    session_id = sessions(ctl)[0]["id"]
    plays = finished_plays(ctl, session_id, 2)
    assert {p["agent_id"] for p in plays} == {"loa-01", "loa-02"}
    for agent in (a1, a2):
        files = relay_files(agent.files.sink_dir, f"live-{session_id}")
        assert files and heard_tone(files[0]) >= 1.5, agent.agent_id
    row = sessions(ctl)[0]
    assert row["status"] == "ended" and row["recording_available"] and row["recording_bytes"] > 1000
    # The page's record lists it, with its recording to listen to (approvers and admins).
    record = page.locator(f"tr[data-session={session_id}]")
    expect(record).to_contain_text("admin", timeout=15_000)
    expect(record.locator("button")).to_have_text("Nghe", timeout=15_000)
    record.locator("button").click()
    player = page.locator("#player-slot audio")
    expect(player).to_have_attribute("src", f"/api/v1/live/sessions/{session_id}/recording")
    page.wait_for_function("document.querySelector('#player-slot audio').duration > 1", timeout=15_000)

    # Again, as an emergency, and the tab closes mid-broadcast: the agents stop within 5 s and their
    # speaker is free for the schedule again (an announcement plays right after).
    page.locator("#priority").select_option("emergency")
    page.locator("#go-live").click()
    expect(page.locator("#live-state")).to_contain_text("Đang phát trực tiếp", timeout=15_000)
    second = sessions(ctl)[0]["id"]
    ctl.wait_for(lambda: relay_files(a1.files.sink_dir, f"live-{second}"), 10, "agents playing the second session")
    page.close()
    # Closing the tab stops the session: both plays end as "stopped" (waited for up to finished_plays' deadline;
    # how fast they stop is bench/live_delay.py's figure).
    plays = finished_plays(ctl, second, 2)
    assert all(p["outcome"] == "stopped" and p["priority"] == "emergency" for p in plays), plays
    assert ctl.get(f"/api/v1/live/sessions/{second}")[1]["end_reason"] == "browser disconnected"
    status, ann = ctl.post("/api/v1/announcements", {"text": "Xin chào", "targets": {"agents": ["loa-01"]}})
    assert status in (201, 202), ann
    ctl.wait_deliveries(ann["id"], {"played"}, timeout=40)

    # Icecast goes down: a fresh page says so before anyone tries, and going live is refused with the reason.
    live.stop_icecast()
    page = open_live_page(browser, ctl, viewport=(390, 844))
    expect(page.locator("#hub-status")).to_contain_text("Hiện không thể phát trực tiếp")
    expect(page.locator("#hub-status")).to_contain_text("Icecast")
    page.locator("input[name=agent][value=loa-01]").check()
    page.locator("#go-live").click()
    expect(page.locator("#live-state")).to_contain_text("Icecast")
    screenshot(page, "live-icecast-down-phone")
    assert len(sessions(ctl)) == 2


def test_live_page_roles_relay_form_errors_csrf_and_escaping(live: LiveStack, agents: Any) -> None:  # noqa: F811
    ctl = live.ctl
    agents("loa-01", wait_online=False)
    guard = create_staff(ctl, "bao-ve", ["security"])
    with console_client(ctl, "bao-ve", guard) as client:
        del client.headers["HX-Request"]
        denied = client.get("/console/live")
        assert denied.status_code == 403 and "Không được phép" in denied.text
        assert client.get("/console/live/sessions").status_code == 403
    # A session whose title is markup: shown as text in the record.
    status, created = ctl.post("/api/v1/live/sessions", {"agents": ["loa-01"], "priority": "priority",
                                                         "title": "<script>alert('x')</script>"})
    assert status == 201, created
    officer = create_staff(ctl, "can-bo", ["officer"])
    with console_client(ctl, "can-bo", officer) as client:
        page = client.get("/console/live")
        assert page.status_code == 200 and 'value="loa-01"' in page.text
        assert "&lt;script&gt;alert(" in page.text and "<script>alert(" not in page.text
        # An officer does not get the recording's player (approvers and admins do).
        assert client.get(f"/console/live/sessions/{created['id']}/player").status_code == 403
        # The relay form: errors next to their field, in Vietnamese, 422.
        bad = client.post("/console/live/relay", data={"relay_url": "ftp://dai-phat-thanh/", "priority": "priority"})
        assert bad.status_code == 422
        assert 'id="relay_url-error">Hãy nhập địa chỉ bắt đầu bằng http://' in bad.text
        assert 'id="targets-error" hx-swap-oob="true"' in bad.text and "Hãy chọn ít nhất một khu vực" in bad.text
        # Without the CSRF header nothing starts.
        token = client.headers.pop("X-CSRF-Token")
        refused = client.post("/console/live/relay", data={"agent": "loa-01", "relay_url": "http://127.0.0.1:9/x"})
        assert refused.status_code == 403 and "Trang đã cũ" in refused.text
        client.headers["X-CSRF-Token"] = token
        client.cookies.set("lp_lang", "en")
        english = client.get("/console/live")
        assert english.status_code == 200 and "Go live" in english.text and "Relay now" in english.text
    assert len(sessions(ctl)) == 1
    # The WebSocket takes the console's cookie (with the session's CSRF token) only from our own origin:
    # a page elsewhere that opens it with the admin's cookie is refused.
    with console_client(ctl, "admin", admin_password(ctl)) as client:
        cookie = f"lp_session={client.cookies['lp_session']}; lp_csrf={client.cookies['lp_csrf']}"
        with connect(ws_url(ctl, created["id"]), origin=Origin("http://evil.example"),
                     additional_headers={"Cookie": cookie}, open_timeout=5, close_timeout=5) as ws:
            ws.send(json.dumps({"csrf": client.cookies["lp_csrf"]}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert ctl.get(f"/api/v1/live/sessions/{created['id']}")[1]["status"] != "live"
