"""The console's schedule page against the real controller: the week and day views show what plays where
and mark clashes (two items of one level overlapping on a speaker), a phone gets a list per day, items'
details open in place, and approving, rejecting and cancelling keep the API's roles and rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from controller.tools.local_stack import register_agent
from devices.protocol import Priority
from schedules.conflicts import Overlap, play_overlaps
from schedules.plan import PlannedPlay
from tests.browser import BrowserFactory, browser_factory  # noqa: F401
from tests.conftest import Broker, ControllerHandle
from tests.console_support import browser_page, console_client, create_staff, screenshot

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def _start(hours: float) -> datetime:
    """A local wall time ``hours`` from now, on the minute, kept inside its day so one day view shows it."""
    start = (datetime.now(HCM) + timedelta(hours=hours)).replace(second=0, microsecond=0)
    if start.hour >= 23:  # late at night: the next morning instead, so a 10-minute programme stays in the day
        start = (start + timedelta(days=1)).replace(hour=8, minute=0)
    return start


def _item(ctl: ControllerHandle, title: str, start: datetime, targets: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"title": title, "content": [{"kind": "tts", "text": "Thông báo của phường."}], "targets": targets,
            "start": start.isoformat(), **extra}
    status, item = ctl.post("/api/v1/schedule/items", body)
    assert status == 201, item
    return item  # type: ignore[no-any-return]


def test_week_and_day_views_mark_a_clash(controller: ControllerHandle,
                                         browser_factory: BrowserFactory) -> None:  # noqa: F811
    register_agent(controller.api, controller.token, "loa-01", ["khu-pho-1"])
    register_agent(controller.api, controller.token, "loa-02", ["khu-pho-2"])
    start = _start(2)
    first = _item(controller, "Bản tin sáng", start, {"zones": ["khu-pho-1"]})
    # The same level at the same time on the same speaker: the API refuses it unless it is queued.
    second = _item(controller, "Lịch tiêm chủng", start + timedelta(minutes=0), {"agents": ["loa-01"]}, queue=True)
    other = _item(controller, "Phát thanh khu phố 2", start, {"zones": ["khu-pho-2"]})
    password = create_staff(controller, "canbo", ["officer"])
    day = start.date().isoformat()

    browser = browser_factory()
    page = browser_page(browser, controller, "canbo", password)
    page.goto(f"{controller.api}/console/schedule?date={day}")
    assert page.locator("h1").inner_text() == "Lịch phát"
    row = page.locator(".week-grid tr[data-row='khu-pho-1']")
    clash = row.locator(".slot.conflict")
    assert clash.count() == 2
    assert {clash.nth(i).get_attribute("data-item") for i in range(2)} == {first["id"], second["id"]}
    calm = page.locator(".week-grid tr[data-row='khu-pho-2'] .slot")
    assert calm.count() == 1 and calm.get_attribute("data-item") == other["id"]
    assert "conflict" not in (calm.get_attribute("class") or "")
    assert "Trùng giờ" in clash.first.inner_text()
    screenshot(page, "schedule-week-desktop")

    # Details of one occurrence: what it clashes with, in Vietnamese.
    row.locator(f".slot[data-item='{first['id']}']").click()
    detail = page.locator("#item-detail")
    detail.locator(".overlaps").wait_for()
    assert "Lịch tiêm chủng" in detail.inner_text() and "loa-01" in detail.inner_text()
    screenshot(page, "schedule-detail-desktop")

    # The day view: one time axis per zone; rows by speaker also mark the clash on loa-01.
    page.goto(f"{controller.api}/console/schedule?view=day&date={day}&by=agent")
    assert page.locator(".day-grid [data-row='loa-01'] .slot.conflict").count() == 2
    assert page.locator(".day-grid [data-row='loa-02'] .slot").count() == 1
    screenshot(page, "schedule-day-desktop")

    # A phone: the week becomes a list per day, the clash still marked.
    phone = browser_page(browser, controller, "canbo", password, viewport=(390, 844))
    phone.goto(f"{controller.api}/console/schedule?date={day}")
    assert not phone.locator(".week-grid").is_visible()
    listed = phone.locator(".day-list .slot.conflict")
    assert listed.count() == 2 and listed.first.is_visible()
    screenshot(phone, "schedule-week-phone")
    phone.goto(f"{controller.api}/console/schedule?view=day&date={day}")
    assert phone.locator(".day-list .slot.conflict").count() == 2
    screenshot(phone, "schedule-day-phone")


def test_changes_keep_roles_rules_and_escaping(broker: Broker, controller_factory: Callable[..., ControllerHandle]
                                               ) -> None:
    controller = controller_factory(broker.port, env={"LP_REQUIRE_APPROVAL": "true"})
    controller.wait_for(lambda: controller.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    register_agent(controller.api, controller.token, "loa-01", ["khu-pho-1"])
    start = _start(3)
    item = _item(controller, "<script>alert('x')</script> Họp tổ dân phố", start, {"agents": ["loa-01"]})
    assert item["status"] == "pending"
    passwords = {name: create_staff(controller, name, [role]) for name, role in
                 (("xem", "viewer"), ("canbo", "officer"), ("duyet", "approver"))}
    day = start.date().isoformat()

    with console_client(controller, "xem", passwords["xem"]) as viewer:
        page = viewer.get(f"/console/schedule?date={day}")
        assert page.status_code == 200
        assert "&lt;script&gt;alert(" in page.text and "<script>alert(" not in page.text
        assert "status-pending" in page.text  # waiting for approval, shown where it would play
        detail = viewer.get(f"/console/schedule/items/{item['id']}")
        assert detail.status_code == 200 and "<script>alert(" not in detail.text
        assert "cancel-item" not in detail.text and "approve-item" not in detail.text
        assert viewer.delete(f"/console/schedule/items/{item['id']}").status_code == 403
        assert viewer.post(f"/console/schedule/items/{item['id']}/approve").status_code == 403
        # A zone that does not exist: a page saying so, not an empty grid.
        missing = viewer.get("/console/schedule?zone=khu-pho-99")
        assert missing.status_code == 404 and "Không có khu vực này." in missing.text

    with console_client(controller, "canbo", passwords["canbo"]) as officer:
        refused = officer.post(f"/console/schedule/items/{item['id']}/reject", data={"reason": "x"})
        assert refused.status_code == 403 and "Không được phép" in refused.text
        # Without the CSRF header htmx sends, a change is refused.
        bare = officer.delete(f"/console/schedule/items/{item['id']}", headers={"X-CSRF-Token": ""})
        assert bare.status_code == 403

    with console_client(controller, "duyet", passwords["duyet"]) as approver:
        shown = approver.get(f"/console/schedule/items/{item['id']}")
        assert "approve-item" in shown.text and "reject-form" in shown.text
        empty = approver.post(f"/console/schedule/items/{item['id']}/reject", data={"reason": "  "})
        assert empty.status_code == 422
        assert 'id="reason-error"' in empty.text and "Trường này là bắt buộc." in empty.text
        approved = approver.post(f"/console/schedule/items/{item['id']}/approve")
        assert approved.status_code == 200 and approved.headers["HX-Trigger"] == "schedule-changed"
        assert "Đã duyệt." in approved.text
        late = approver.post(f"/console/schedule/items/{item['id']}/reject", data={"reason": "muộn"})
        assert late.status_code == 409 and "không còn chờ duyệt" in late.text
        gone = approver.delete(f"/console/schedule/items/{item['id']}")
        assert gone.status_code == 200 and "Đã hủy." in gone.text
        assert approver.get(f"/console/schedule/grid?date={day}").text.count("data-item=") == 0
    status, stored = controller.get(f"/api/v1/schedule/items/{item['id']}")
    assert status == 200 and stored["status"] == "cancelled" and stored["decided_by"] == "duyet"


def test_play_overlaps_pairs_each_clash_once_per_agent() -> None:
    def play(pid: str, agent: str, start: int, end: int, level: Priority = Priority.NORMAL) -> PlannedPlay:
        return PlannedPlay(pid, agent, pid, 0, start, end, level, (), None, pid)

    plays = [play("a", "loa-1", 0, 100), play("b", "loa-1", 50, 150), play("c", "loa-1", 150, 200),
             play("d", "loa-1", 120, 130, Priority.EMERGENCY), play("a", "loa-2", 0, 100),
             play("e", "loa-2", 100, 110)]
    assert play_overlaps(plays) == [Overlap("loa-1", "a", "b", True), Overlap("loa-1", "b", "d", False)]
