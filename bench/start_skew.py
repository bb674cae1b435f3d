"""Start skew: how far from the scheduled instant every speaker starts, for scheduled and emergency plays.

Starts Mosquitto, the controller and ``--agents`` real agent processes with file sinks on 127.0.0.1
(free ports, temp dir), all on this machine's clock. Then:

- **scheduled**: ``--rounds`` one-off schedule items for everyone, a few seconds apart, pushed to the
  agents in their signed windows (they play from their own clock);
- **emergency**: ``--rounds`` emergency announcements for everyone ("broadcast now"), one after another.

Each agent's proof of play gives ``actual_start − scheduled_start`` (``start_offset_ms``, measured by
the agent's file sink when its first sample goes out). Reported: |offset| p50/p99/max over every play,
and the spread across agents of each occurrence (latest − earliest start). Beside it, in the same run,
the raw floor: the same number of bare Python processes, each sleeping until the same absolute instants
and noting when it woke (what the OS timer gives any process on this machine).

    .venv/bin/python bench/start_skew.py                  # 8 agents, 10 rounds of each
    .venv/bin/python bench/start_skew.py --agents 4 --rounds 5 --json skew.json

Target (issue 4): p99 ≤ 5 ms, scheduled and emergency. Progress on stderr, the report on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import QUIET, controller_stack
from bench.stats import percentile
from controller.tools.local_stack import http_json, register_agent, start_agent, write_agent_config

ZONE = "khu-pho-1"
SITE_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SPACING_S = 6.0

RAW_SLEEPER = """
import json, sys, time
instants = json.loads(sys.argv[1])
woke = []
for t in instants:
    delay = t / 1000 - time.time()
    if delay > 0:
        time.sleep(delay)
    woke.append(time.time_ns() // 1_000_000 - t)
print(json.dumps(woke))
"""


def log(msg: str) -> None:
    print(f"[start_skew] {msg}", file=sys.stderr, flush=True)


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise TimeoutError(what)


def plays_of(api: str, token: str, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = http_json("GET", f"{api}/api/v1/plays?limit=1000&{query}", token)
    if status != 200:
        raise RuntimeError(f"plays: {status} {body}")
    return list(body)


def finished(api: str, token: str, n_agents: int, **filters: str) -> list[dict[str, Any]] | None:
    """The plays matching ``filters`` once every agent has finished one, else None."""
    found = plays_of(api, token, **filters)
    return found if len([p for p in found if p["ended_at"]]) >= n_agents else None


def scheduled_round(api: str, token: str, n_agents: int, rounds: int) -> list[dict[str, Any]]:
    """One-off items for everyone, ``SPACING_S`` apart, starting far enough ahead for the windows to land."""
    first = datetime.now(SITE_TZ).replace(microsecond=0) + timedelta(seconds=15)
    items = []
    for r in range(rounds):
        start = first + timedelta(seconds=r * SPACING_S)
        status, body = http_json("POST", f"{api}/api/v1/schedule/items", token, {
            "title": f"Đo độ lệch {r + 1}", "targets": {"all": True},
            "content": [{"kind": "tts", "text": f"Bản tin thử số {r + 1}."}],
            "start": start.replace(tzinfo=None).isoformat()})
        if status != 201:
            raise RuntimeError(f"schedule item refused: {status} {body}")
        items.append(body["id"])
    log(f"scheduled {rounds} items from {first.time()} for {n_agents} agents; waiting for them to play")
    rows: list[dict[str, Any]] = []
    for item in items:
        rows += wait_until(lambda item=item: finished(api, token, n_agents, item_id=item),
                           60 + rounds * SPACING_S, f"plays of item {item}")
    return rows


def emergency_round(api: str, token: str, n_agents: int, rounds: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        status, body = http_json("POST", f"{api}/api/v1/announcements", token, {
            "text": f"Khẩn cấp, thử lần {r + 1}.", "priority": "emergency", "targets": {"all": True}})
        if status != 202:
            raise RuntimeError(f"announcement refused: {status} {body}")
        rows += wait_until(lambda ann=body["id"]: finished(api, token, n_agents, announcement_id=ann), 60,
                           f"plays of announcement {body['id']}")
        log(f"emergency {r + 1}/{rounds} played on {n_agents} agents")
    return rows


def summarise(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    offsets = [abs(p["start_offset_ms"]) for p in rows if p["start_offset_ms"] is not None]
    by_occurrence: dict[str, list[int]] = {}
    for p in rows:
        if p["actual_start"] is not None:
            by_occurrence.setdefault(str(p[key]), []).append(p["start_offset_ms"])
    spreads = [max(v) - min(v) for v in by_occurrence.values()]
    return {"plays": len(rows), "started": len(offsets),
            "offset_ms": {"p50": percentile(offsets, 50), "p99": percentile(offsets, 99),
                          "max": max(offsets, default=0)},
            "spread_across_agents_ms": {"p50": percentile(spreads, 50), "max": max(spreads, default=0)},
            "outcomes": sorted({p["outcome"] or "" for p in rows})}


def raw_floor(n: int, rounds: int) -> dict[str, Any]:
    """``n`` bare processes sleeping until the same ``rounds`` instants (0.5 s apart)."""
    base = (time.time_ns() // 1_000_000) + 1500
    instants = [base + i * 500 for i in range(rounds)]
    procs = [subprocess.Popen([sys.executable, "-c", RAW_SLEEPER, json.dumps(instants)], stdout=subprocess.PIPE)
             for _ in range(n)]
    woke: list[list[int]] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        woke.append(json.loads(out))
    offsets = [abs(v) for row in woke for v in row]
    spreads = [max(row[i] for row in woke) - min(row[i] for row in woke) for i in range(rounds)]
    return {"plays": len(offsets), "offset_ms": {"p50": percentile(offsets, 50), "p99": percentile(offsets, 99),
                                                  "max": max(offsets)},
            "spread_across_agents_ms": {"p50": percentile(spreads, 50), "max": max(spreads)}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lp-skew-") as tmp, controller_stack(Path(tmp)) as stack:
        api, token = stack.api, stack.token
        for i in range(args.agents):
            agent_id = f"loa-{i + 1:02d}"
            registered = register_agent(api, token, agent_id, [ZONE])
            files = write_agent_config(stack.root / "agents" / agent_id, registered, [ZONE])
            stack.procs.append(start_agent(files, stack.root / f"{agent_id}.log", QUIET))
        wait_until(lambda: all(d["online"] for d in http_json("GET", f"{api}/api/v1/devices", token)[1]),
                   60, "agents online")
        log(f"{args.agents} agents online")
        scheduled = summarise(scheduled_round(api, token, args.agents, args.rounds), "item_id")
        emergency = summarise(emergency_round(api, token, args.agents, args.rounds), "announcement_id")
        raw = raw_floor(args.agents, args.rounds)
    return {"agents": args.agents, "rounds": args.rounds, "scheduled": scheduled, "emergency": emergency,
            "raw_sleep": raw}


def report(result: dict[str, Any]) -> str:
    lines = [f"{result['agents']} agents, {result['rounds']} rounds each, one machine's clock",
             "| what | plays | |actual − scheduled| p50 / p99 / max | spread across agents p50 / max | verdict |",
             "|---|---|---|---|---|"]
    for name in ("scheduled", "emergency", "raw_sleep"):
        r = result[name]
        o, s = r["offset_ms"], r["spread_across_agents_ms"]
        verdict = "" if name == "raw_sleep" else ("PASS ≤ 5 ms" if o["p99"] <= 5 else "FAIL (> 5 ms)")
        label = "raw: bare processes sleeping until the instant" if name == "raw_sleep" else name
        lines.append(f"| {label} | {r['plays']} | {o['p50']:.0f} / {o['p99']:.0f} / {o['max']:.0f} ms | "
                     f"{s['p50']:.0f} / {s['max']:.0f} ms | {verdict} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    result = run(args)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
