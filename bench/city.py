"""A city of wards at scale (issue 18): the city dashboard, a ward's dashboard, a ward's monthly report and
one ward's plays CSV, each beside the same queries on the raw database in the same run.

Seeds a controller's database in bulk (``executemany`` on the driver, never the API): ``--scale`` × 200 wards,
10,000 agents (50 a ward, a quarter offline, a few playing now), 2,000 zones, 5,000 schedule items, 4,000
announcements, 1,000,000 plays over the last 90 days (broadcasts that reach part of a ward's speakers, by
announcement, item or live session, of every priority), the history of the agents' link states (outages
and repairs) and 200 users (one viewer a ward, the city's staff). Then Mosquitto and the real controller on
127.0.0.1 (bench/stack.py: free ports, temp dir), the staff sign in through ``/console/login``, and each
page is fetched ``--requests`` times after one untimed warm-up:

- ``/console/city`` as the city's viewer (every ward, one row each),
- ``/console/`` as one ward's viewer (that ward's dashboard),
- ``/console/reports/monthly`` of that ward for this month,
- ``/console/reports/plays.csv`` of that ward's last 30 days.

The raw side is Python's ``sqlite3`` on the same file, a fresh connection a run, running the SQL each page
runs (the grouped counts, the ward's rows and their look-ups, the CSV written through ``csv.writer``).
``EXPLAIN QUERY PLAN`` of the ward-scoped plays queries is printed: each must search
``ix_plays_ward_scheduled`` (one ward's range), never scan the table.

    .venv/bin/python bench/city.py --scale 0.1      # 20 wards, 100,000 plays: under a minute
    .venv/bin/python bench/city.py                  # the issue's volumes: a few minutes on 2 cores

Only SQLite is measured today. For PostgreSQL later: :class:`Seeder` already inserts through SQLAlchemy's
driver connection in the dialect's parameter style; the raw side (:class:`Raw`, ``sqlite3``) and the plans
(``EXPLAIN QUERY PLAN``) are what would need a psycopg twin.

Progress goes to stderr, the table to stdout; exit code 0 when the table was printed.
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
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages import PageRow, fetcher, measure, run_in_temp_dir
from bench.stack import controller_stack
from controller.accounts.auth import create_user, ensure_first_admin
from controller.reports.monthly import Month, broadcasts_query
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import ROOT_UNIT

TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # the controller's default time zone (controller/settings.py)
DAY_MS = 86_400_000
PASSWORD = "mat-khau-bench-thanh-pho"
PRIORITIES = ("normal",) * 8 + ("priority",) * 3 + ("emergency",)
OUTCOMES = ("completed",) * 6 + ("preempted", "stopped", "failed")
#: The issue's volumes at --scale 1.
VOLUMES = {"wards": 200, "agents": 10_000, "zones": 2_000, "items": 5_000, "announcements": 4_000,
           "plays": 1_000_000, "users": 200}
PLAY_COLS = ("id, agent_id, play_id, attempt, announcement_id, item_id, sha256, priority, output, "
             "scheduled_start_ms, actual_start_ms, ended_at_ms, outcome, reason")


def log(msg: str) -> None:
    print(f"[city] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- the data


class Seeder:
    """Bulk inserts on the driver's own connection, in the dialect's parameter style (qmark for SQLite,
    format for psycopg): the same code serves a PostgreSQL run."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.mark = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], chunk: int = 50_000) -> None:
        """``rows`` into ``table`` (``columns`` in order), ``chunk`` rows per executemany."""
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([self.mark] * len(columns))})"
        raw = self.db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for n in range(0, len(rows), chunk):
                cursor.executemany(sql, rows[n:n + chunk])
            raw.commit()
        finally:
            raw.close()


def volumes(scale: float) -> dict[str, int]:
    """The issue's volumes times ``scale`` (at least two wards, one agent a ward)."""
    out = {k: max(1, round(v * scale)) for k, v in VOLUMES.items()}
    out["wards"] = max(2, out["wards"])
    out["agents"] = max(out["wards"], out["agents"])
    return out


def build_data(data_dir: Path, vol: dict[str, int], seed: int) -> dict[str, Any]:
    """Schema, staff and rows; returns what the run needs (db path, the measured ward, passwords)."""
    rnd = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = (data_dir / "loaphuong.sqlite3").resolve()
    db = Database(f"sqlite:///{db_path}")
    migrate.upgrade(db.engine)
    seeder = Seeder(db)
    now = int(time.time() * 1000)
    iso_now = datetime.now(UTC).isoformat(" ")
    wards = [f"phuong-{w:03d}" for w in range(vol["wards"])]
    seeder.insert("units", ("id", "kind", "name", "parent_id", "code", "created_at"),
                  [(w, "ward", f"Phường Số {n + 1} Quận Bình Thạnh", ROOT_UNIT, f"{27000 + n}", iso_now)
                   for n, w in enumerate(wards)])
    zones_of = {w: [f"kp-{w[-3:]}-{z}" for z in range(max(1, vol["zones"] // len(wards)))] for w in wards}
    seeder.insert("zones", ("id", "ward_id", "name", "quiet_hours", "volumes", "updated_at"),
                  [(z, w, f"Khu phố {z[-1]}", "[]", "[]", iso_now) for w in wards for z in zones_of[w]])
    agents: dict[str, list[str]] = {w: [] for w in wards}
    devices, changes = [], []
    created = (datetime.now(UTC) - timedelta(days=120)).isoformat(" ")
    for n in range(vol["agents"]):
        ward = wards[n % len(wards)]
        agent = f"loa-{n:05d}"
        agents[ward].append(agent)
        online = n % 4 != 3
        zone = zones_of[ward][n % len(zones_of[ward])]
        devices.append((agent, ward, f"Loa {n} đường số {n % 37 + 1}", json.dumps([zone]),
                        secrets.token_hex(32), 1, "online" if online else "offline", iso_now, iso_now, "1.0.0", agent,
                        '["tts", "opus"]', '["alsa"]', created, 0, 0))
        # Online since 100 days ago; an outage or two in the last 60 days; the offline quarter lost now.
        t = now - 100 * DAY_MS
        changes.append((agent, ward, "online", t))
        for _ in range(rnd.randrange(0, 3)):
            down = now - rnd.randrange(DAY_MS, 60 * DAY_MS)
            back = down + rnd.randrange(600_000, 12 * 3_600_000)
            changes += [(agent, ward, "offline", down), (agent, ward, "online", back)]
        if not online:
            changes.append((agent, ward, "offline", now - rnd.randrange(60_000, 2 * DAY_MS)))
    seeder.insert("devices", ("id", "ward_id", "name", "zones", "token_hash", "enabled", "status", "status_changed_at",
                              "last_seen_at", "version", "hostname", "capabilities", "outputs", "created_at",
                              "suspicious_plays", "inbox_dropped"), devices)
    changes.sort(key=lambda c: c[3])
    seeder.insert("device_status_changes", ("agent_id", "ward_id", "status", "at_ms"), changes)
    items = [(f"it{n:06d}", wards[n % len(wards)], f"Bản tin phát thanh số {n}", rnd.choice(PRIORITIES),
              '[{"kind": "tts", "text": "Bản tin"}]', "[]", '{"all": true}', "2026-01-01T06:00:00", "cancelled",
              now, iso_now, iso_now, 0, "[]", 0) for n in range(vol["items"])]
    seeder.insert("schedule_items", ("id", "ward_id", "title", "priority", "content", "segments", "targets",
                                     "start_local", "status", "saved_ms", "created_at", "updated_at", "revision",
                                     "exdates", "queue"), items)
    anns = [(f"ann{n:06d}", wards[n % len(wards)], f"Thông báo số {n}: lịch tiêm chủng tại trạm y tế phường.",
             rnd.choice(PRIORITIES), '["all"]', "done", now - rnd.randrange(0, 90 * DAY_MS), iso_now)
            for n in range(vol["announcements"])]
    seeder.insert("announcements", ("id", "ward_id", "text", "priority", "targets", "status", "start_ms", "created_at"),
                  anns)
    items_of = {w: [i[0] for i in items if i[1] == w] or [items[0][0]] for w in wards}
    anns_of = {w: [a[0] for a in anns if a[1] == w] or [anns[0][0]] for w in wards}
    plays = _plays(rnd, vol["plays"], wards, agents, items_of, anns_of, now)
    seeder.insert("plays", ("ward_id", "agent_id", "play_id", "attempt", "announcement_id", "item_id", "priority",
                            "output", "scheduled_start_ms", "actual_start_ms", "ended_at_ms", "outcome",
                            "updated_at"), plays)
    seeder.insert("device_events", ("id", "agent_id", "type", "ts_ms", "data", "received_at"),
                  [(f"ev{n:06d}", devices[(n * 7) % len(devices)][0], "error", now - n * 600_000,
                    '{"code": "alsa", "message": "không mở được thiết bị âm thanh"}', iso_now)
                   for n in range(max(10, vol["agents"] // 20))])
    with db.session() as session:
        boot = ensure_first_admin(session, "admin", data_dir)
        assert boot is not None
        create_user(session, "thanh-pho", PASSWORD, roles=["viewer"], unit=ROOT_UNIT)
        create_user(session, "phuong-000", PASSWORD, roles=["viewer"], unit=wards[0])
        session.commit()
    # The rest of the staff: one viewer a ward and the city's officers (not signed in: no password hashing).
    seeder.insert("users", ("username", "password_hash", "role", "roles", "zones", "disabled", "created_at"),
                  [(f"can-bo-{n:03d}", "!", "viewer", '["viewer"]', "[]", 0, iso_now)
                   for n in range(max(0, vol["users"] - 3))])
    raw = sqlite3.connect(db_path)
    try:
        raw.execute("INSERT INTO role_grants (user_id, role, unit_id) SELECT u.id, 'viewer', "
                    "'phuong-' || substr('000' || ((u.id - 1) % ?), -3, 3) FROM users u "
                    "WHERE u.username LIKE 'can-bo-%'", (len(wards),))
        raw.commit()
        raw.execute("ANALYZE")
    finally:
        raw.close()
    db.dispose()
    return {"db_path": str(db_path), "ward": wards[0], "wards": len(wards)}


def _plays(rnd: random.Random, total: int, wards: list[str], agents: dict[str, list[str]],
           items_of: dict[str, list[str]], anns_of: dict[str, list[str]], now: int) -> list[tuple[Any, ...]]:
    """Broadcasts reaching part of a ward's speakers, until ``total`` plays; a few playing now."""
    stamp = datetime.now(UTC).isoformat(" ")
    rows: list[tuple[Any, ...]] = []
    b = 0
    while len(rows) < total:
        ward = wards[b % len(wards)]
        speakers = agents[ward]
        reach = rnd.sample(speakers, min(len(speakers), rnd.randrange(5, 30)))
        start = now - rnd.randrange(3_600_000, 90 * DAY_MS)
        priority = rnd.choice(PRIORITIES)
        kind = rnd.random()
        ann = rnd.choice(anns_of[ward]) if kind < 0.5 else None
        item = rnd.choice(items_of[ward]) if 0.5 <= kind < 0.9 else None
        play_id = f"live-s{b:07d}" if kind >= 0.9 else f"c{b:07d}"
        length = rnd.randrange(30_000, 900_000)
        for agent in reach:
            outcome = rnd.choice(OUTCOMES)
            lag = rnd.randrange(0, 400)
            rows.append((ward, agent, play_id, 0, ann, item, priority, "alsa", start, start + lag,
                         start + lag + length, outcome, stamp))
        b += 1
    del rows[total:]
    # Playing now: one broadcast in every fifth ward, on its online speakers.
    for n, ward in enumerate(wards[::5]):
        for agent in [a for i, a in enumerate(agents[ward]) if i % 4 != 3][:10]:
            rows.append((ward, agent, f"now{n:05d}", 0, anns_of[ward][0], None, "priority", "alsa", now - 30_000,
                         now - 29_900, None, None, stamp))
    return rows


# ------------------------------------------------------------------------------------------ the clients


def signed_in(api: str, username: str, patience_s: float = 300) -> httpx.Client:
    """A console client signed in as ``username``.

    A controller that has just started on ten thousand agents writes each one's schedule window first, and a
    sign-in meanwhile may wait past SQLite's lock timeout (500): tried again until ``patience_s``.
    """
    client = httpx.Client(base_url=api, timeout=120, follow_redirects=False)
    deadline = time.monotonic() + patience_s
    while True:
        answer = client.post("/console/login", data={"username": username, "password": PASSWORD})
        if answer.status_code == 303:
            return client
        if answer.status_code < 500 or time.monotonic() > deadline:
            client.close()
            raise RuntimeError(f"sign-in of {username} answered {answer.status_code}")
        log(f"sign-in of {username} answered {answer.status_code}; the controller is still starting, again in 5 s")
        time.sleep(5)


class Raw:
    """The pages' SQL straight on the SQLite file, a fresh connection a run (as a request gets one)."""

    def __init__(self, db_path: str, ward: str, wards: list[str], day_start: int, month: tuple[int, int],
                 csv_span: tuple[int, int]) -> None:
        self.db_path, self.ward, self.wards = db_path, ward, wards
        self.day_start, self.month, self.csv_span = day_start, month, csv_span

    def conn(self) -> contextlib.closing[sqlite3.Connection]:
        """A fresh connection, closed when the ``with`` ends."""
        return contextlib.closing(sqlite3.connect(self.db_path))

    def city(self) -> int:
        now = int(time.time() * 1000)
        marks = ",".join("?" * len(self.wards))
        with self.conn() as c:
            c.execute(f"SELECT id, name FROM units WHERE id IN ({marks})", self.wards).fetchall()
            rows = c.execute(f"SELECT ward_id, status, count(*) FROM devices WHERE ward_id IN ({marks}) "
                             "AND revoked_at IS NULL GROUP BY ward_id, status", self.wards).fetchall()
            c.execute(f"SELECT ward_id, count(*) FROM cameras WHERE ward_id IN ({marks}) AND status = 'fault' "
                      "GROUP BY ward_id", self.wards).fetchall()
            c.execute(f"SELECT ward_id, count(*) FROM (SELECT ward_id, coalesce(announcement_id, item_id || ':' || "
                      f"scheduled_start_ms, play_id) AS k FROM plays WHERE ward_id IN ({marks}) AND "
                      "scheduled_start_ms >= ? AND scheduled_start_ms <= ? AND actual_start_ms IS NOT NULL "
                      "GROUP BY ward_id, k) GROUP BY ward_id", [*self.wards, self.day_start, now]).fetchall()
            since = now - 3 * 3_600_000
            open_plays = c.execute(f"SELECT ward_id, agent_id, play_id, announcement_id, item_id, priority, "
                                   f"actual_start_ms FROM plays WHERE outcome IS NULL AND actual_start_ms >= ? AND "
                                   f"scheduled_start_ms >= ? AND ward_id IN ({marks})",
                                   [since, since - 3 * 3_600_000, *self.wards]).fetchall()
            agents = sorted({p[1] for p in open_plays})
            c.execute(f"SELECT id FROM devices WHERE id IN ({','.join('?' * len(agents))}) AND status = 'online'",
                      agents).fetchall()
            ann = sorted({p[3] for p in open_plays if p[3]})
            c.execute(f"SELECT id, text FROM announcements WHERE id IN ({','.join('?' * len(ann))})", ann).fetchall()
        return len(rows)

    def ward_dashboard(self) -> int:
        now = int(time.time() * 1000)
        with self.conn() as c:
            devices = c.execute("SELECT * FROM devices WHERE revoked_at IS NULL AND ward_id = ? ORDER BY id",
                                [self.ward]).fetchall()
            c.execute("SELECT id, name FROM zones WHERE ward_id = ?", [self.ward]).fetchall()
            plays = c.execute(f"SELECT {PLAY_COLS} FROM plays WHERE outcome IS NULL AND actual_start_ms IS NOT NULL "
                              "AND actual_start_ms >= ? AND ward_id = ? ORDER BY actual_start_ms",
                              [now - 3 * 3_600_000, self.ward]).fetchall()
            ann = sorted({p[4] for p in plays if p[4]})
            c.execute(f"SELECT id, text FROM announcements WHERE id IN ({','.join('?' * len(ann))})", ann).fetchall()
            c.execute("SELECT d.agent_id, a.start_ms, a.text, a.priority FROM deliveries d JOIN announcements a "
                      "ON a.id = d.announcement_id WHERE a.start_ms > ? AND a.ward_id = ? AND "
                      "d.status IN ('queued','sent','accepted')", [now, self.ward]).fetchall()
            c.execute("SELECT * FROM cameras WHERE status = 'fault' AND ward_id = ?", [self.ward]).fetchall()
            c.execute("SELECT e.* FROM device_events e JOIN devices d ON d.id = e.agent_id WHERE e.type IN "
                      "('error','sign.status') AND e.ts_ms >= ? AND d.ward_id = ? ORDER BY e.ts_ms DESC LIMIT 200",
                      [now - DAY_MS, self.ward]).fetchall()
        return len(devices)

    def monthly(self) -> int:
        start, end = self.month
        until = min(end, int(time.time() * 1000))
        with self.conn() as c:
            groups = c.execute(
                "SELECT p.ward_id, p.priority, CASE WHEN p.play_id LIKE 'live-%' THEN 'live' WHEN s.parent_id IS "
                "NOT NULL OR a.parent_id IS NOT NULL THEN 'city' WHEN p.announcement_id IS NOT NULL THEN "
                "'announcement' WHEN p.item_id IS NOT NULL THEN 'schedule' ELSE 'other' END AS src, count(*), "
                "coalesce(sum(p.ended_at_ms - p.actual_start_ms), 0), min(p.actual_start_ms), max(p.ended_at_ms) "
                "FROM plays p LEFT JOIN schedule_items s ON s.id = p.item_id LEFT JOIN announcements a "
                "ON a.id = p.announcement_id WHERE p.ward_id = ? AND p.scheduled_start_ms >= ? AND "
                "p.scheduled_start_ms < ? AND p.actual_start_ms IS NOT NULL GROUP BY p.ward_id, p.priority, src, "
                "CASE WHEN p.play_id LIKE 'live-%' THEN p.play_id WHEN p.announcement_id IS NOT NULL THEN "
                "p.announcement_id WHEN p.item_id IS NOT NULL THEN p.item_id || ':' || p.scheduled_start_ms "
                "ELSE p.play_id END", [self.ward, start, end]).fetchall()
            agents = c.execute("SELECT d.id, (SELECT status FROM device_status_changes s WHERE s.agent_id = d.id AND "
                               "s.at_ms < ? ORDER BY s.at_ms DESC, s.id DESC LIMIT 1) FROM devices d WHERE "
                               "d.ward_id = ? AND d.revoked_at IS NULL", [start, self.ward]).fetchall()
            c.execute("SELECT agent_id, at_ms, status FROM device_status_changes WHERE ward_id = ? AND at_ms >= ? "
                      "AND at_ms < ? ORDER BY at_ms, id", [self.ward, start, until]).fetchall()
            ids = [a[0] for a in agents]
            c.execute(f"SELECT agent_id, count(*) FROM device_events WHERE agent_id IN ({','.join('?' * len(ids))}) "
                      "AND type = 'error' AND ts_ms >= ? AND ts_ms < ? GROUP BY agent_id",
                      [*ids, start, end]).fetchall()
        return len(groups)

    def plays_csv(self) -> int:
        since, until = self.csv_span
        with self.conn() as c:
            devices = {r[0]: (r[1], " ".join(json.loads(r[2])))
                       for r in c.execute("SELECT id, name, zones FROM devices")}
            out = io.StringIO()
            writer = csv.writer(out)
            names: dict[str, str] = {}
            for p in c.execute(f"SELECT {PLAY_COLS} FROM plays WHERE ward_id = ? AND scheduled_start_ms >= ? AND "
                               "scheduled_start_ms < ? ORDER BY scheduled_start_ms DESC, id DESC LIMIT 100000",
                               [self.ward, since, until]).fetchall():
                key = p[4] or p[5] or ""
                if key and key not in names:
                    table, col = ("announcements", "text") if p[4] else ("schedule_items", "title")
                    row = c.execute(f"SELECT {col} FROM {table} WHERE id = ?", [key]).fetchone()
                    names[key] = row[0] if row else ""
                name, zones = devices.get(p[1], ("", ""))
                writer.writerow([p[9], p[10], p[11], p[1], name, zones, names.get(key, ""), p[7], p[12], p[13],
                                 p[2], p[3]])
            return len(out.getvalue().encode("utf-8-sig"))


def query_plans(db_path: str, ward: str, month: tuple[int, int]) -> list[tuple[str, str]]:
    """EXPLAIN QUERY PLAN of the ward-scoped plays queries: the CSV's and the monthly report's (as compiled
    by controller/reports/monthly.py)."""
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.engine.connect() as conn:
            compiled = str(broadcasts_query([ward], *month).compile(conn, compile_kwargs={"literal_binds": True}))
    finally:
        db.dispose()
    queries = [("plays CSV of one ward", f"SELECT {PLAY_COLS} FROM plays WHERE ward_id IN ('{ward}') AND "
                f"scheduled_start_ms >= {month[0]} AND scheduled_start_ms < {month[1]} "
                "ORDER BY scheduled_start_ms DESC, id DESC LIMIT 100000"),
               ("monthly report's broadcasts", compiled)]
    plans = []
    with contextlib.closing(sqlite3.connect(db_path)) as c:
        for name, sql in queries:
            plan = " | ".join(str(r[-1]) for r in c.execute(f"EXPLAIN QUERY PLAN {sql}"))
            plans.append((name, plan))
    return plans


# ----------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    vol = volumes(args.scale)
    t0 = time.perf_counter()
    built = build_data(root / "controller", vol, args.seed)
    build_s = time.perf_counter() - t0
    log(f"data built in {build_s:.1f} s: {vol}")
    ward, db_path = built["ward"], built["db_path"]
    wards = [f"phuong-{w:03d}" for w in range(built["wards"])]
    now = datetime.now(TZ)
    midnight = datetime.combine(now.date(), datetime.min.time(), TZ)
    month = Month.of(now.date())
    span = month.span_ms(TZ)
    csv_from, csv_to = now.date() - timedelta(days=29), now.date()
    csv_span = (int(datetime.combine(csv_from, datetime.min.time(), TZ).timestamp() * 1000),
                int(datetime.combine(csv_to + timedelta(days=1), datetime.min.time(), TZ).timestamp() * 1000))
    raw = Raw(db_path, ward, wards, int(midnight.timestamp() * 1000), span, csv_span)
    plans = query_plans(db_path, ward, span)
    for name, plan in plans:
        log(f"plan, {name}: {plan}")
    results: list[PageRow] = []
    with controller_stack(root) as stack:
        log("controller up")
        city, staff = signed_in(stack.api, "thanh-pho"), signed_in(stack.api, "phuong-000")
        try:
            cases: list[tuple[str, httpx.Client, str, Callable[[], int], str]] = [
                ("city dashboard", city, "/console/city", raw.city,
                 "units, devices/cameras GROUP BY ward, today's broadcasts, open plays"),
                ("ward dashboard", staff, "/console/", raw.ward_dashboard,
                 "the ward's devices, zones, open plays, titles, deliveries, faults"),
                ("ward monthly report", staff, f"/console/reports/monthly?ward={ward}&month={month}", raw.monthly,
                 "broadcasts GROUP BY, status history, errors"),
                ("ward plays CSV 30 d", staff, f"/console/reports/plays.csv?date_from={csv_from.isoformat()}"
                 f"&date_to={csv_to.isoformat()}", raw.plays_csv, "the ward's SELECT → csv.writer"),
            ]
            for name, client, path, raw_fn, raw_what in cases:
                row = measure(name, path, fetcher(client, path), raw_fn, raw_what, args.requests)
                results.append(row)
                log(f"{name}: p95 {row.p95_ms:.0f} ms (raw {row.raw_p95_ms:.1f} ms), {row.bytes} bytes")
        finally:
            city.close()
            staff.close()
    return {"volumes": vol, "scale": args.scale, "build_s": build_s, "load_avg": os.getloadavg(),
            "plans": plans, "rows": [{**asdict(r), "ratio": r.over_raw(95)} for r in results]}


def print_table(report: dict[str, Any]) -> None:
    """The report as a table on stdout, with the targets (p95 ≤ 300 ms and ≤ 3× the raw p95) judged."""
    vol, load = report["volumes"], report["load_avg"]
    print(f"City at scale {report['scale']}: {vol['wards']} wards, {vol['agents']:,} agents, {vol['zones']:,} zones, "
          f"{vol['items']:,} items, {vol['plays']:,} plays, {vol['users']} users (built in {report['build_s']:.1f} s)")
    print(f"host: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    print(f"  {'page':<21} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'KB':>8}   {'raw p50':>8} {'raw p95':>8} "
          f"{'p95×raw':>7}  verdict  raw side")
    for r in report["rows"]:
        ok = r["p95_ms"] <= 300 and r["ratio"] <= 3
        print(f"  {r['name']:<21} {r['requests']:>3} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['bytes'] / 1024:>8.1f}"
              f"   {r['raw_p50_ms']:>8.1f} {r['raw_p95_ms']:>8.1f} {r['ratio']:>7.1f}  {'ok' if ok else 'MISS':<7}  "
              f"{r['raw_what']}")
    for name, plan in report["plans"]:
        verdict = "ok" if "ix_plays_ward_scheduled" in plan and "SCAN plays" not in plan else "SCANS OTHER WARDS"
        print(f"  plan ({verdict}), {name}: {plan}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="times the issue's volumes (0.1: a quick run)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--keep-dir", action="store_true", help="keep the temp dir (data, logs)")
    args = parser.parse_args()
    return run_in_temp_dir(args, "bench-city-", run, print_table, log)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
