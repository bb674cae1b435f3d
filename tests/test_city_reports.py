"""The city's dashboard and the wards' monthly reports (issue 18, item 6), with a real controller.

A month with known plays and a known history of link states is written into the controller's database;
the API's JSON, CSV and PDF, and the console's pages, must give exactly the figures worked out by hand
below, only to staff who see the ward (another ward answers 404 as an unknown one).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select, text

from controller.reports.documents import csv_columns
from controller.reports.monthly import Month, broadcasts_query
from controller.storage.engine import Database
from controller.storage.models import (
    ROOT_UNIT,
    Announcement,
    CityBroadcast,
    Device,
    DeviceEvent,
    DeviceStatusChange,
    Play,
)
from tests.conftest import AgentFactory, ControllerHandle
from tests.console_support import console_client
from tests.ward_support import PASSWORD, StaffCity, add_ward, database, seed_staff

TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the controller's default (controller/settings.py)
A, B = "binh-hung-hoa", "tan-nhut"
A_NAME, B_NAME = "Phường Bình Hưng Hoà", "Xã Tân Nhựt"
MONTH = "2025-03"
HOUR = 3_600_000


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 3) -> int:
    """Local time in March 2025 (or ``month``) → ms since the epoch."""
    return int(datetime(2025, month, day, hour, minute, second, tzinfo=TZ).timestamp() * 1000)


class Site(StaffCity):
    """The running controller, its database, and the staff's bearer tokens and usernames."""

    def get(self, path: str, who: str) -> httpx.Response:
        """A GET as ``who`` with their bearer token."""
        return httpx.get(self.ctl.api + path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=20)


def _play(ward: str, agent: str, play_id: str, priority: str, scheduled: int, start: int | None, end: int | None,
          announcement: str | None = None, item: str | None = None, attempt: int = 0) -> Play:
    return Play(ward_id=ward, agent_id=agent, play_id=play_id, attempt=attempt, announcement_id=announcement,
                item_id=item, priority=priority, scheduled_start_ms=scheduled, actual_start_ms=start,
                ended_at_ms=end, outcome="completed" if end else ("expired" if start is None else None))


def _seed(db: Database) -> tuple[dict[str, str], dict[str, str]]:
    created = datetime(2025, 1, 1, tzinfo=TZ)
    with db.session() as session:
        add_ward(session, A, A_NAME)
        add_ward(session, B, B_NAME)
        for agent, ward in (("loa-a1", A), ("loa-a2", A), ("loa-b1", B)):
            session.add(Device(id=agent, ward_id=ward, zones=[], token_hash=agent * 8, created_at=created))
        session.flush()
        history = [
            # a1: online since February; an outage of 6 h on the 10th, another from 20:00 on the 31st that was
            # repaired at 02:00 on 1 April (6 h, counted in March, open at March's end).
            ("loa-a1", A, "online", at(20, month=2)), ("loa-a1", A, "offline", at(10)),
            ("loa-a1", A, "online", at(10, 6)),
            ("loa-a1", A, "offline", at(31, 20)), ("loa-a1", A, "online", at(1, 2, month=4)),
            # a2: never seen before the 2nd, online until the 20th, then switched off (not a fault).
            ("loa-a2", A, "online", at(2)), ("loa-a2", A, "stopped", at(20)),
            ("loa-b1", B, "online", at(1, month=2)), ("loa-b1", B, "offline", at(15)),
        ]
        session.add_all(DeviceStatusChange(agent_id=a, ward_id=w, status=s, at_ms=t) for a, w, s, t in history)
        session.add_all([
            # One announcement on both speakers: 1 broadcast, 2 plays, on air 10:00:00 → 10:02:30.
            _play(A, "loa-a1", "c1", "normal", at(3, 10), at(3, 10), at(3, 10, 2), announcement="ann1"),
            _play(A, "loa-a2", "c1", "normal", at(3, 10), at(3, 10, 0, 1), at(3, 10, 2, 30), announcement="ann1"),
            # An item's two occurrences: 600 s, then pre-empted after 100 s and played again (07:00 → 07:15).
            _play(A, "loa-a1", "w1", "priority", at(5, 7), at(5, 7), at(5, 7, 10), item="it1"),
            _play(A, "loa-a1", "w2", "priority", at(6, 7), at(6, 7), at(6, 7, 1, 40), item="it1"),
            _play(A, "loa-a1", "w2", "priority", at(6, 7), at(6, 7, 5), at(6, 7, 15), item="it1", attempt=1),
            # A live session in an emergency on both: 30 minutes each.
            _play(A, "loa-a1", "live-s1", "emergency", at(8, 20), at(8, 20), at(8, 20, 30)),
            _play(A, "loa-a2", "live-s1", "emergency", at(8, 20), at(8, 20), at(8, 20, 30)),
            # Not counted: too late to play; scheduled just before and just after March (local time).
            _play(A, "loa-a1", "x1", "normal", at(9, 9), None, None, announcement="ann2"),
            _play(A, "loa-a1", "x2", "normal", at(28, 23, 59, month=2), at(28, 23, 59, month=2),
                  at(1, 0, 1), announcement="ann3"),
            _play(A, "loa-a1", "x3", "normal", at(1, 0, 30, month=4), at(1, 0, 30, month=4),
                  at(1, 0, 31, month=4), announcement="ann4"),
            # Ward B's, which no report of A may count.
            _play(B, "loa-b1", "b1", "emergency", at(4, 8), at(4, 8), at(4, 9), announcement="annb"),
        ])
        # The city's announcement to ward A ("from above"): its part in A names the city's parent row.
        session.add(CityBroadcast(id="citybc1", kind="announcement", unit_id=ROOT_UNIT, wards=[A],
                                  title="Thông báo của thành phố", priority="priority"))
        session.flush()
        session.add(Announcement(id="anncity1", ward_id=A, text="Thông báo của thành phố", priority="priority",
                                 targets=["all"], status="done", parent_id="citybc1"))
        session.add(_play(A, "loa-a1", "cb1", "priority", at(12, 9), at(12, 9), at(12, 9, 5), announcement="anncity1"))
        session.add(DeviceEvent(id="err-a1", agent_id="loa-a1", type="error", ts_ms=at(10, 0, 5),
                                data={"code": "alsa", "message": "mất thiết bị âm thanh"}))
        tokens, names = seed_staff(session, {"viewer_a": [("viewer", A)], "viewer_b": [("viewer", B)],
                                             "city": [("viewer", ROOT_UNIT)]})
        session.commit()
    return tokens, names


@pytest.fixture
def site(controller: ControllerHandle) -> Iterator[Site]:
    db = database(controller)
    try:
        tokens, names = _seed(db)
        yield Site(controller, db, tokens, names)
    finally:
        db.engine.dispose()


def test_a_wards_month_in_figures(site: Site) -> None:
    response = site.get(f"/api/v1/reports/monthly?ward={A}&month={MONTH}", "viewer_a")
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["ward"], report["ward_name"], report["month"]) == (A, A_NAME, MONTH)
    total = report["total"]
    assert (total["broadcasts"], total["plays"]) == (5, 8)
    assert total["hours"] == pytest.approx((150 + 600 + 900 + 1800 + 300) / 3600, abs=1e-4)
    assert total["speaker_hours"] == pytest.approx((120 + 149 + 600 + 100 + 600 + 1800 * 2 + 300) / 3600, abs=1e-4)
    by_priority = {k: (v["broadcasts"], v["plays"], round(v["hours"] * 3600)) for k, v in report["by_priority"].items()}
    assert by_priority == {"normal": (1, 2, 150), "priority": (3, 4, 1800), "emergency": (1, 2, 1800)}
    by_source = {k: (v["broadcasts"], v["plays"]) for k, v in report["by_source"].items()}
    assert by_source == {"announcement": (1, 2), "schedule": (2, 3), "live": (1, 2), "city": (1, 1), "other": (0, 0)}
    # 744 h in March: a1 was online for all but 6 h + 4 h, a2 from the 2nd to the 20th (432 h).
    assert report["speakers"] == {"in_service": 2, "availability": pytest.approx((734 + 432) / 1488, abs=1e-6)}
    assert report["faults"] == {"started": 2, "repaired": 2, "open_at_end": 1, "mean_time_to_repair_hours": 6.0,
                                "agent_errors": 1}
    # Ward B's month: one emergency, its speaker's outage from the 15th never repaired.
    b = site.get(f"/api/v1/reports/monthly?month={MONTH}", "viewer_b").json()
    assert (b["ward"], b["total"]["broadcasts"], b["by_priority"]["emergency"]["hours"]) == (B, 1, 1.0)
    assert b["faults"]["started"] == 1 and b["faults"]["repaired"] == 0 and b["faults"]["open_at_end"] == 1
    assert b["faults"]["mean_time_to_repair_hours"] is None


def test_reports_stay_within_the_callers_wards(site: Site) -> None:
    foreign = site.get(f"/api/v1/reports/monthly?ward={B}&month={MONTH}", "viewer_a")
    unknown = site.get(f"/api/v1/reports/monthly?ward=khong-co&month={MONTH}", "viewer_a")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["detail"].replace(B, "?") == unknown.json()["detail"].replace("khong-co", "?")
    for fmt in ("csv", "pdf"):
        assert site.get(f"/api/v1/reports/monthly?ward={B}&month={MONTH}&format={fmt}", "viewer_a").status_code == 404
    # City staff read every ward under the city, and must say which.
    assert site.get(f"/api/v1/reports/monthly?month={MONTH}", "city").status_code == 422
    for ward in (A, B):
        assert site.get(f"/api/v1/reports/monthly?ward={ward}&month={MONTH}", "city").json()["ward"] == ward
    rollup = site.get(f"/api/v1/reports/city?month={MONTH}", "city").json()
    assert [w["ward"] for w in rollup["wards"]] == sorted({"ward", A, B})  # the first ward is under the city too
    assert {w["ward"]: w["total"]["broadcasts"] for w in rollup["wards"]} == {"ward": 0, A: 5, B: 1}
    assert [w["ward"] for w in site.get(f"/api/v1/reports/city?month={MONTH}", "viewer_a").json()["wards"]] == [A]
    assert site.get("/api/v1/reports/monthly?ward=" + A + "&month=2025-13", "viewer_a").status_code == 422


def test_csv_has_one_row_a_ward_with_the_stable_columns(site: Site) -> None:
    response = site.get(f"/api/v1/reports/monthly?ward={A}&month={MONTH}&format=csv", "viewer_a")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert list(rows[0]) == csv_columns() and len(rows) == 1
    row = rows[0]
    assert (row["ward_name"], row["broadcasts"], row["broadcasts_emergency"], row["hours_emergency"]) == \
        (A_NAME, "5", "1", "0.50")
    assert (row["speakers_in_service"], row["availability_pct"], row["mean_time_to_repair_hours"]) == \
        ("2", "78.4", "6.00")
    city_rows = list(csv.DictReader(io.StringIO(
        site.get(f"/api/v1/reports/city?month={MONTH}&format=csv", "city").content.decode("utf-8-sig"))))
    assert [r["ward"] for r in city_rows] == sorted({"ward", A, B})


def test_pdf_names_the_ward_with_its_diacritics_and_gives_the_figures(site: Site) -> None:
    response = site.get(f"/api/v1/reports/monthly?ward={A}&month={MONTH}&format=pdf", "viewer_a")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    page = reader.pages[0].extract_text()
    for expected in (A_NAME, "Báo cáo hoạt động phát thanh tháng 03/2025", "Khẩn cấp", "Cấp trên", "Tỷ lệ sẵn sàng (%)",
                     "78,4", "6,00", "Sự cố chưa khắc phục cuối tháng"):
        assert expected in page, (expected, page)
    english = site.get(f"/api/v1/reports/monthly?ward={A}&month={MONTH}&format=pdf&lang=en", "viewer_a")
    assert "Broadcasting report for the month 03/2025" in PdfReader(io.BytesIO(english.content)).pages[0].extract_text()


def test_console_pages_for_city_and_ward_staff(site: Site) -> None:
    with console_client(site.ctl, site.names["city"], PASSWORD) as client:
        client.headers.pop("HX-Request")
        page = client.get("/console/city")
        assert page.status_code == 200 and A_NAME in page.text and B_NAME in page.text
        assert f'/console/reports/monthly?ward={A}&amp;month=' in page.text
        monthly = client.get(f"/console/reports/monthly?ward={B}&month={MONTH}")
        assert monthly.status_code == 200 and B_NAME in monthly.text
        rows = list(csv.reader(io.StringIO(client.get(f"/console/reports/city.csv?month={MONTH}")
                                           .content.decode("utf-8-sig"))))
        assert rows[0][:4] == ["Mã phường", "Phường", "Tháng", "Số buổi phát"] and len(rows) == 4
    with console_client(site.ctl, site.names["viewer_a"], PASSWORD) as client:
        client.headers.pop("HX-Request")
        page = client.get("/console/city")
        assert page.status_code == 200 and A_NAME in page.text and B_NAME not in page.text
        monthly = client.get(f"/console/reports/monthly?month={MONTH}")
        assert monthly.status_code == 200 and A_NAME in monthly.text and "78.4" in monthly.text
        assert f"/console/reports/monthly.pdf?ward={A}&amp;month={MONTH}" in monthly.text
        assert client.get(f"/console/reports/monthly?ward={B}&month={MONTH}").status_code == 404
        pdf = client.get(f"/console/reports/monthly.pdf?ward={A}&month={MONTH}")
        assert pdf.status_code == 200 and A_NAME in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
        assert client.get(f"/console/reports/monthly.csv?ward={B}&month={MONTH}").status_code == 404


def test_a_wards_month_reads_its_plays_by_the_ward_index(site: Site) -> None:
    start, end = Month.parse(MONTH).span_ms(TZ)
    query = broadcasts_query([A], start, end)
    with site.db.engine.connect() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_plays_ward_scheduled" in plan and "SCAN plays" not in plan, plan


def test_the_recorder_keeps_each_change_of_an_agents_link(controller: ControllerHandle, agents: AgentFactory) -> None:
    agent = agents("loa-lich-su")
    db = Database(f"sqlite:///{(controller.data_dir / 'loaphuong.sqlite3').resolve()}")
    try:
        def changes() -> list[tuple[str, str]]:
            with db.session() as session:
                return [(c.status, c.ward_id) for c in session.scalars(
                    select(DeviceStatusChange).where(DeviceStatusChange.agent_id == "loa-lich-su")
                    .order_by(DeviceStatusChange.id))]

        controller.wait_for(lambda: changes() or None, 10, "the online change recorded")
        assert changes()[-1] == ("online", "ward")
        agent.proc.stop()
        controller.wait_for(lambda: len(changes()) >= 2 or None, 20, "the agent's going recorded")
        assert changes()[-1][0] in ("stopped", "offline")
    finally:
        db.engine.dispose()
