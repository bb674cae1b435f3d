"""The real console page goes live: Chromium's fake microphone plays a WAV tone, the page captures it
(getUserMedia → AudioWorklet → WebSocket), Icecast carries it, two file-sink agents play it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser import BrowserFactory, browser_factory  # noqa: F401 - the fixture
from tests.conftest import ControllerHandle
from tests.test_live import LiveStack, controller, finished_plays, live  # noqa: F401 - fixtures
from tests.test_live_support import heard_tone, relay_files, tone_pcm, write_wav


def open_console(browser_factory: BrowserFactory, ctl: ControllerHandle, wav: Path) -> Page:  # noqa: F811
    browser = browser_factory(fake_audio=wav)
    page = browser.new_page()
    page.add_init_script(f"sessionStorage.setItem('lp.token', {ctl.token!r});")
    page.goto(ctl.api + "/console/live.html")
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
    page = open_console(browser_factory, ctl, tone_wav)
    page.locator("input[name=agent][value=loa-01]").check()
    page.locator("input[name=agent][value=loa-02]").check()
    page.locator("#go-live").click()
    expect(page.locator("#live-state")).to_contain_text("Đang phát trực tiếp tới: loa-01, loa-02", timeout=15_000)
    time.sleep(3.0)
    assert float(page.locator("#level").get_attribute("value") or 0) >= 0  # the meter is fed
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
    # The page's record lists it, with its recording to listen to.
    expect(page.locator(f"tr[data-session={session_id}]")).to_contain_text("admin")
    expect(page.locator(f"tr[data-session={session_id}] button")).to_have_text("Nghe")

    # Again, as an emergency, and the tab closes mid-broadcast: the agents stop within 5 s and their
    # speaker is free for the schedule again (an announcement plays right after).
    page.locator("#priority").select_option("emergency")
    page.locator("#go-live").click()
    expect(page.locator("#live-state")).to_contain_text("Đang phát trực tiếp", timeout=15_000)
    second = sessions(ctl)[0]["id"]
    ctl.wait_for(lambda: relay_files(a1.files.sink_dir, f"live-{second}"), 10, "agents playing the second session")
    page.close()
    gone = time.monotonic()
    plays = finished_plays(ctl, second, 2)
    assert time.monotonic() - gone < 5, "agents must stop within 5 s of the tab closing"
    assert all(p["outcome"] == "stopped" and p["priority"] == "emergency" for p in plays), plays
    assert ctl.get(f"/api/v1/live/sessions/{second}")[1]["end_reason"] == "browser disconnected"
    status, ann = ctl.post("/api/v1/announcements", {"text": "Xin chào", "targets": {"agents": ["loa-01"]}})
    assert status in (201, 202), ann
    ctl.wait_deliveries(ann["id"], {"played"}, timeout=40)

    # Icecast goes down: a fresh page says so before anyone tries, and going live is refused with the reason.
    live.stop_icecast()
    page = open_console(browser_factory, ctl, tone_wav)
    expect(page.locator("#hub-status")).to_contain_text("Icecast")
    page.locator("input[name=agent][value=loa-01]").check()
    page.locator("#go-live").click()
    expect(page.locator("#live-state")).to_contain_text("Icecast")
    assert len(sessions(ctl)) == 2
