"""How the web console's heaviest pages scale with a large fleet and a long history (issue 7).

Builds a controller data dir straight through the SQLAlchemy models, in bulk: ``--agents`` agents (200)
spread over ``--zones`` zones (10, some online, some silent, a few playing now), 500 announcements,
``--plays`` proof-of-play rows (50,000, over the last 30 days, most naming an announcement, the rest a
schedule item) and ``--audit`` chained audit rows (20,000, hashes as controller/accounts/audit_chain.py computes them).
Then Mosquitto and the real controller on 127.0.0.1 (free ports, temp dir); a few recurring schedule
items go through the API (so the dashboard's "next" has a plan to compute), the admin signs in through
``/console/login`` with httpx, and each page is fetched ``--requests`` times one after another (the CSV
exports of every play ``--csv-requests`` times), after one untimed warm-up:

- the dashboard (``/console/``) and each of its panels (``/console/dashboard/<panel>``),
- a reports page (``/console/reports``), without filters and with a zone and the last 7 days,
- the plays CSV (``/console/reports/plays.csv``), every play and with the same filters,
- the audit page (``/console/audit``) and its CSV (``/console/audit/export.csv``).

The raw tool in the same run: the same underlying queries on the same SQLite file with Python's
``sqlite3`` (the page's SELECTs with their ORDER BY/LIMIT, the look-ups of what the rows name, and for a
CSV the whole SELECT written through ``csv.writer``), timed the same way. ``× raw`` is how much the page
costs over its database work: the ORM, rendering, HTTP and, for the dashboard's playing panel, the day's
plan (which the raw side does not compute).

    .venv/bin/python bench/console_pages.py                       # 200 agents, 50,000 plays, ~2 minutes
    .venv/bin/python bench/console_pages.py --plays 10000 --requests 10 --json console.json

Progress goes to stderr, the table to stdout. Exit code 0 when the table was printed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import random
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages import PageRow, fetcher, measure, run_in_temp_dir
from bench.stack import controller_stack
from controller.accounts.audit_chain import canonical, chain_hash
from controller.accounts.auth import ensure_first_admin
from controller.storage.engine import Database
from controller.storage.models import Announcement, AuditEvent, Device, DeviceEvent, Play, Zone

TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the controller's default time zone (controller/settings.py)
DAY_MS = 86_400_000
#: The plays' columns in the order the raw side reads them (indices below).
PLAY_COLS = ("id, agent_id, play_id, attempt, announcement_id, item_id, sha256, priority, output, "
             "scheduled_start_ms, actual_start_ms, ended_at_ms, outcome, reason")
#: The reports' order (controller/proof_of_play.filtered_plays).
ORDER = "ORDER BY scheduled_start_ms DESC, id DESC"
ACTIONS = ("login.ok", "announcement.create", "announcement.approve", "schedule.update", "device.update",
           "camera.view", "device.ops.reboot", "zone.update")
OUTCOMES = ("completed", "completed", "completed", "completed", "preempted", "stopped", "expired", "failed")
TEXT = ("Thông báo của Ủy ban nhân dân phường: lịch tiêm chủng mở rộng cho trẻ em dưới năm tuổi vào sáng thứ bảy "
        "tại trạm y tế phường, đề nghị các gia đình mang theo sổ tiêm chủng. Số {n}.")


def log(msg: str) -> None:
    print(f"[console_pages] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- the data


def build_data(data_dir: Path, agents: int, zones: int, plays: int, audit_rows: int, seed: int) -> tuple[str, str]:
    """Creates the schema, the first admin and the rows; returns (admin password, SQLite path)."""
    rnd = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = (data_dir / "loaphuong.sqlite3").resolve()
    db = Database(f"sqlite:///{db_path}")
    from controller.storage import migrate

    migrate.upgrade(db.engine)
    now = int(time.time() * 1000)
    with db.session() as session:
        boot = ensure_first_admin(session, "admin", data_dir)
        assert boot is not None
        session.commit()
        zone_ids = [f"khu-pho-{z + 1}" for z in range(zones)]
        session.execute(insert(Zone), [{"id": z, "name": f"Khu phố {i + 1}", "quiet_hours": [], "volumes": []}
                                       for i, z in enumerate(zone_ids)])
        agent_ids = [f"loa-{a:04d}" for a in range(agents)]
        t_now = datetime.now(UTC)
        devices = []
        for a, agent_id in enumerate(agent_ids):
            online = a % 4 != 3  # a quarter silent, as a fleet with dead links would have
            devices.append({"id": agent_id, "name": f"Loa số {a} đường {a % 37 + 1}", "zones": [zone_ids[a % zones]],
                            "token_hash": secrets.token_hex(32), "enabled": True,
                            "status": "online" if online else "offline", "status_changed_at": t_now,
                            "last_seen_at": t_now - timedelta(seconds=0 if online else 3600 * (a % 48 + 1)),
                            "version": "1.0.0", "hostname": agent_id, "capabilities": ["tts", "opus"],
                            "outputs": ["alsa"], "state": None})
        session.execute(insert(Device), devices)
        ann_ids = [f"ann{n:05d}" for n in range(500)]
        session.execute(insert(Announcement), [
            {"id": ann_id, "text": TEXT.format(n=n), "priority": "normal", "targets": [zone_ids[n % zones]],
             "status": "done", "start_ms": now - DAY_MS * 30 + n * 5_000_000, "created_at": t_now}
            for n, ann_id in enumerate(ann_ids)])
        rows = []
        for n in range(plays):
            agent_id = agent_ids[n % agents]
            start = now - rnd.randrange(60_000, 30 * DAY_MS)
            offset = rnd.randrange(-40, 400)
            outcome = rnd.choice(OUTCOMES)
            announcement = rnd.random() < 0.7
            rows.append({"agent_id": agent_id, "play_id": f"p{n:07d}", "attempt": 0,
                         "announcement_id": rnd.choice(ann_ids) if announcement else None,
                         "item_id": None if announcement else f"item{n % 5}", "sha256": secrets.token_hex(32),
                         "priority": "normal", "output": "alsa", "scheduled_start_ms": start,
                         "actual_start_ms": None if outcome == "expired" else start + offset,
                         "ended_at_ms": None if outcome == "expired" else start + offset + rnd.randrange(5_000, 90_000),
                         "outcome": outcome, "reason": "preempted by an emergency" if outcome == "preempted" else None,
                         "updated_at": t_now})
        # Playing now: one open play on every tenth online agent, as the "playing" panel shows them.
        for a, agent_id in enumerate(agent_ids):
            if a % 10 == 0:
                rows.append({"agent_id": agent_id, "play_id": f"now{a:04d}", "attempt": 0,
                             "announcement_id": ann_ids[a % len(ann_ids)], "item_id": None, "sha256": None,
                             "priority": "normal", "output": "alsa", "scheduled_start_ms": now - 20_000,
                             "actual_start_ms": now - 19_900, "ended_at_ms": None, "outcome": None, "reason": None,
                             "updated_at": t_now})
        for chunk in range(0, len(rows), 10_000):
            session.execute(insert(Play), rows[chunk:chunk + 10_000])
        session.execute(insert(DeviceEvent), [
            {"id": f"ev{n:05d}", "agent_id": agent_ids[(n * 7) % agents], "type": "error",
             "ts_ms": now - n * 600_000, "data": {"code": "alsa", "message": "không mở được thiết bị âm thanh"},
             "received_at": t_now} for n in range(300)])
        session.commit()
        # The audit chain, as audit.record writes it, continued from whatever the bootstrap left.
        last = session.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
        next_id, prev = (last[0] + 1, last[1] or "") if last else (1, "")
        users = ["admin", "can-bo-1", "can-bo-2", "duyet", "ky-thuat"]
        audit = []
        start_at = t_now - timedelta(days=60)
        for n in range(audit_rows):
            at = start_at + timedelta(seconds=n * (60 * 86400 / max(1, audit_rows)))
            user = users[n % len(users)]
            action = ACTIONS[n % len(ACTIONS)]
            subject = agent_ids[n % agents] if action.startswith("device") else ann_ids[n % len(ann_ids)]
            detail = {"n": n, "note": "thay đổi âm lượng"} if n % 3 else {}
            row_id = next_id + n
            digest = chain_hash(prev, canonical(row_id, at, 1, user, action, subject, detail))
            audit.append({"id": row_id, "at": at, "user_id": 1, "username": user, "action": action,
                          "subject": subject, "detail": detail, "prev_hash": prev, "hash": digest})
            prev = digest
        for chunk in range(0, len(audit), 10_000):
            session.execute(insert(AuditEvent), audit[chunk:chunk + 10_000])
        session.commit()
    db.dispose()
    return boot.password, str(db_path)


def add_schedule_items(api: str, token: str, zones: int) -> int:
    """A few recurring items through the API (rendered and approved as staff would), so "next" has a plan."""
    made = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api, headers=headers, timeout=60) as client:
        for n in range(5):
            start = (datetime.now(UTC) + timedelta(minutes=30 + n * 7)).isoformat()
            resp = client.post("/api/v1/schedule/items", json={
                "title": f"Bản tin số {n}", "content": [{"kind": "tts", "text": f"Bản tin phát thanh số {n}."}],
                "targets": {"zones": [f"khu-pho-{z + 1}" for z in range(n, zones, 5)]}, "start": start,
                "rrule": "FREQ=HOURLY"})
            if resp.status_code != 201:
                log(f"schedule item not created ({resp.status_code}): {resp.text[:200]}")
                continue
            item = resp.json()
            if item.get("status") == "pending":
                client.post(f"/api/v1/schedule/items/{item['id']}/approve", json={})
            made += 1
    return made


# ------------------------------------------------------------------------------------------- the raw side


class Raw:
    """The pages' queries straight on the SQLite file (a fresh connection per run, as a request gets)."""

    def __init__(self, db_path: str, zone: str, since_ms: int, until_ms: int) -> None:
        self.db_path = db_path
        self.zone = zone
        self.since_ms = since_ms
        self.until_ms = until_ms

    def conn(self) -> contextlib.closing[sqlite3.Connection]:
        """A fresh connection, closed when the ``with`` ends."""
        return contextlib.closing(sqlite3.connect(self.db_path))

    @staticmethod
    def _fleet(c: sqlite3.Connection) -> list[Any]:
        devices = c.execute("SELECT * FROM devices WHERE revoked_at IS NULL ORDER BY id").fetchall()
        c.execute("SELECT id, name FROM zones").fetchall()
        return devices

    def _playing(self, c: sqlite3.Connection) -> None:
        now = int(time.time() * 1000)
        online = [r[0] for r in c.execute("SELECT id FROM devices WHERE revoked_at IS NULL AND status = 'online'")]
        marks = ",".join("?" * len(online))
        plays = c.execute(f"SELECT {PLAY_COLS} FROM plays WHERE outcome IS NULL AND actual_start_ms IS NOT NULL "
                          f"AND actual_start_ms >= ? AND agent_id IN ({marks}) ORDER BY actual_start_ms",
                          [now - 3 * 3600 * 1000, *online]).fetchall()
        ann = sorted({p[4] for p in plays if p[4]})
        c.execute(f"SELECT id, text FROM announcements WHERE id IN ({','.join('?' * len(ann))})", ann).fetchall()
        c.execute("SELECT d.agent_id, a.start_ms, a.text, a.priority FROM deliveries d JOIN announcements a "
                  "ON a.id = d.announcement_id WHERE a.start_ms > ? AND d.status IN ('queued','sent','accepted')",
                  [now]).fetchall()

    @staticmethod
    def _faults(c: sqlite3.Connection) -> None:
        c.execute("SELECT * FROM devices WHERE revoked_at IS NULL ORDER BY id").fetchall()
        c.execute("SELECT * FROM cameras WHERE status = 'fault' ORDER BY id").fetchall()
        c.execute("SELECT * FROM device_events WHERE type IN ('error','sign.status') AND ts_ms >= ? "
                  "ORDER BY ts_ms DESC LIMIT 200", [int(time.time() * 1000) - DAY_MS]).fetchall()

    @staticmethod
    def _motion(c: sqlite3.Connection) -> None:
        c.execute("SELECT * FROM camera_events WHERE type = 'camera.motion' ORDER BY ts_ms DESC LIMIT 12").fetchall()

    def fleet(self) -> int:
        with self.conn() as c:
            return len(self._fleet(c))

    def playing(self) -> int:
        with self.conn() as c:
            self._fleet(c)
            self._playing(c)
        return 0

    def faults(self) -> int:
        with self.conn() as c:
            self._faults(c)
        return 0

    def motion(self) -> int:
        with self.conn() as c:
            self._motion(c)
        return 0

    def dashboard(self) -> int:
        with self.conn() as c:
            self._fleet(c)
            self._playing(c)
            self._faults(c)
            self._motion(c)
        return 0

    def _where(self, c: sqlite3.Connection, filtered: bool) -> tuple[str, list[Any]]:
        if not filtered:
            return "", []
        members = [r[0] for r in c.execute("SELECT id, zones FROM devices") if self.zone in json.loads(r[1])]
        return (f" WHERE agent_id IN ({','.join('?' * len(members))}) AND scheduled_start_ms >= ? "
                f"AND scheduled_start_ms < ?", [*members, self.since_ms, self.until_ms])

    @staticmethod
    def _names(c: sqlite3.Connection, plays: list[Any]) -> dict[str, str]:
        ann = sorted({p[4] for p in plays if p[4]})
        items = sorted({p[5] for p in plays if p[5]})
        names = dict(c.execute(f"SELECT id, text FROM announcements WHERE id IN ({','.join('?' * len(ann))})", ann))
        names.update(c.execute(f"SELECT id, title FROM schedule_items WHERE id IN ({','.join('?' * len(items))})",
                               items))
        return names

    def report(self, filtered: bool) -> int:
        with self.conn() as c:
            where, args = self._where(c, filtered)
            c.execute(f"SELECT count(*) FROM plays{where}", args).fetchone()
            plays = c.execute(f"SELECT {PLAY_COLS} FROM plays{where} {ORDER} LIMIT 50", args).fetchall()
            c.execute("SELECT id, name, zones FROM devices").fetchall()
            self._names(c, plays)
            c.execute("SELECT * FROM live_sessions ORDER BY started_at DESC LIMIT 500").fetchall()
        return len(plays)

    def plays_csv(self, filtered: bool) -> int:
        with self.conn() as c:
            where, args = self._where(c, filtered)
            devices = {r[0]: (r[1], " ".join(json.loads(r[2])))
                       for r in c.execute("SELECT id, name, zones FROM devices")}
            names = dict(c.execute("SELECT id, text FROM announcements"))
            names.update(c.execute("SELECT id, title FROM schedule_items"))
            out = io.StringIO()
            writer = csv.writer(out)
            for p in c.execute(f"SELECT {PLAY_COLS} FROM plays{where} {ORDER} LIMIT 100000", args):
                name, zones = devices.get(p[1], ("", ""))
                writer.writerow([p[9], p[10], p[11], p[1], name, zones, names.get(p[4] or p[5] or "", ""), p[7],
                                 p[12], p[13], p[2], p[3]])
            return len(out.getvalue().encode("utf-8-sig"))

    def audit_page(self) -> int:
        with self.conn() as c:
            rows = c.execute("SELECT * FROM audit_events ORDER BY id DESC LIMIT 51").fetchall()
            c.execute("SELECT DISTINCT username FROM audit_events ORDER BY username").fetchall()
            c.execute("SELECT DISTINCT action FROM audit_events ORDER BY action").fetchall()
        return len(rows)

    def audit_csv(self) -> int:
        with self.conn() as c:
            out = io.StringIO()
            writer = csv.writer(out)
            for r in c.execute("SELECT id, at, user_id, username, action, subject, detail, prev_hash, hash "
                               "FROM audit_events ORDER BY id"):
                writer.writerow(r)
            return len(out.getvalue().encode("utf-8-sig"))


# ----------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    password, db_path = build_data(root / "controller", args.agents, args.zones, args.plays, args.audit, args.seed)
    build_s = time.perf_counter() - t0
    log(f"data built in {build_s:.1f} s ({args.agents} agents, {args.plays} plays, {args.audit} audit rows)")
    with controller_stack(root) as stack:
        api = stack.api
        items = add_schedule_items(api, stack.token, args.zones)
        log(f"controller up; {items} schedule items")

        today = datetime.now(TZ).date()
        since_day = today - timedelta(days=6)
        zone = "khu-pho-1"
        since_ms = int(datetime.combine(since_day, datetime.min.time(), TZ).timestamp() * 1000)
        until_ms = int(datetime.combine(today + timedelta(days=1), datetime.min.time(), TZ).timestamp() * 1000)
        raw = Raw(db_path, zone, since_ms, until_ms)
        filters = {"zone": zone, "date_from": since_day.isoformat(), "date_to": today.isoformat()}

        results: list[PageRow] = []
        with httpx.Client(base_url=api, timeout=120, follow_redirects=False) as client:
            signed = client.post("/console/login", data={"username": "admin", "password": password})
            if signed.status_code != 303:
                raise RuntimeError(f"sign-in answered {signed.status_code}")
            cases: list[tuple[str, str, dict[str, str] | None, Callable[[], int], str, int]] = [
                ("dashboard", "/console/", None, raw.dashboard, "all four panels' SELECTs", args.requests),
                ("panel fleet", "/console/dashboard/fleet", None, raw.fleet, "devices + zones", args.requests),
                ("panel playing", "/console/dashboard/playing", None, raw.playing,
                 "devices, open plays, titles, deliveries (no plan)", args.requests),
                ("panel faults", "/console/dashboard/faults", None, raw.faults, "devices, cameras, events",
                 args.requests),
                ("panel motion", "/console/dashboard/motion", None, raw.motion, "camera events", args.requests),
                ("reports", "/console/reports", None, lambda: raw.report(False),
                 "count + LIMIT 50 + names + live", args.requests),
                ("reports zone+7d", "/console/reports", filters, lambda: raw.report(True),
                 "same, zone members + date range", args.requests),
                ("plays.csv all", "/console/reports/plays.csv", None, lambda: raw.plays_csv(False),
                 "full SELECT → csv.writer", args.csv_requests),
                ("plays.csv zone+7d", "/console/reports/plays.csv", filters, lambda: raw.plays_csv(True),
                 "filtered SELECT → csv.writer", args.requests),
                ("audit", "/console/audit", None, raw.audit_page, "LIMIT 51 + distinct users/actions",
                 args.requests),
                ("audit export.csv", "/console/audit/export.csv", None, raw.audit_csv, "full SELECT → csv.writer",
                 args.csv_requests),
            ]
            for name, path, params, raw_fn, raw_what, count in cases:
                row = measure(name, path + (f"?{httpx.QueryParams(params)}" if params else ""),
                              fetcher(client, path, params), raw_fn, raw_what, count)
                results.append(row)
                log(f"{name}: p50 {row.p50_ms:.0f} ms (raw {row.raw_p50_ms:.1f} ms), {row.bytes} bytes")
        return {"agents": args.agents, "zones": args.zones, "plays": args.plays, "audit": args.audit,
                "build_s": build_s, "schedule_items": items, "load_avg": os.getloadavg(),
                "rows": [{**asdict(r), "ratio": r.over_raw(50)} for r in results]}


def print_table(report: dict[str, Any]) -> None:
    """The report as a table on stdout."""
    load = report["load_avg"]
    print(f"Console pages: {report['agents']} agents in {report['zones']} zones, {report['plays']:,} plays, "
          f"{report['audit']:,} audit rows, {report['schedule_items']} schedule items "
          f"(built in {report['build_s']:.1f} s)")
    print(f"host: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    print(f"  {'page':<19} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'KB':>8}   {'raw p50':>8} {'raw p95':>8} "
          f"{'× raw':>6}  raw side")
    for r in report["rows"]:
        print(f"  {r['name']:<19} {r['requests']:>3} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['bytes'] / 1024:>8.1f}"
              f"   {r['raw_p50_ms']:>8.1f} {r['raw_p95_ms']:>8.1f} {r['ratio']:>6.1f}  {r['raw_what']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--plays", type=int, default=50_000)
    parser.add_argument("--audit", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--csv-requests", type=int, default=3, help="timed requests of the full CSV exports")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--keep-dir", action="store_true", help="keep the temp dir (data, logs)")
    args = parser.parse_args()
    return run_in_temp_dir(args, "bench-console-", run, print_table, log)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
