"""A play cut by the agent's death (kill -9) stays in proof of play as cut, and its replay is a new attempt."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from controller.tools.local_stack import start_agent
from devices.protocol import (
    PlayFinished,
    PlayOutcome,
    PlayStarted,
    Priority,
    Topics,
    make_event,
    now_ms,
    parse_topic,
)
from edge_agent.play_journal import PlayJournal, ResumePoint
from edge_agent.store import AgentStore, AttemptRow, PlayEnd
from tests.conftest import AgentFactory, ControllerHandle, RunningAgent
from tests.helpers import iso_ms

#: About 20 s of speech: long enough to be killed well inside it.
LONG_TEXT = " ".join(["Thông báo: phường tổ chức tiêm chủng tại trạm y tế từ bảy giờ sáng."] * 5)


def kill_hard(agent: RunningAgent) -> int:
    """SIGKILL to the agent's whole process group (its decoder too), as a crash or power cut would; returns
    the moment in ms."""
    at = now_ms()
    os.killpg(agent.proc.pid, signal.SIGKILL)
    agent.proc.proc.wait(10)
    agent.proc.stop()  # closes its log
    return at


def plays_of(controller: ControllerHandle, play_id: str) -> list[dict[str, Any]]:
    status, rows = controller.get("/api/v1/plays?agent_id=loa-01")
    assert status == 200, rows
    return sorted((r for r in rows if r["play_id"] == play_id), key=lambda r: r["attempt"])


def test_a_play_cut_by_kill_9_is_recorded_as_cut_and_replayed_as_a_new_attempt(
        controller: ControllerHandle, agents: AgentFactory, tmp_path: Path) -> None:
    agent = agents("loa-01")
    status, body = controller.post("/api/v1/announcements", {"text": LONG_TEXT, "targets": ["loa-01"]})
    assert status == 202, body
    ann = controller.wait_deliveries(body["id"], {"playing"}, timeout=60)
    play_id = ann["deliveries"][0]["command_id"]
    first_start = controller.wait_for(
        lambda: next((line for line in agent.sink_lines() if line["event"] == "start"), None), 10, "the sink's start")
    time.sleep(3.5)
    killed_at = kill_hard(agent)
    assert not any(line["event"] == "end" for line in agent.sink_lines()), "the play ended before the kill"

    agent.proc = start_agent(agent.files, tmp_path / "loa-01-again.log")
    ann = controller.wait_deliveries(body["id"], {"played"}, timeout=90)
    rows = controller.wait_for(lambda: (r := plays_of(controller, play_id)) and len(r) == 2
                               and all(p["outcome"] for p in r) and r, 30, "both attempts reported")

    cut, replay = rows
    assert (cut["attempt"], cut["outcome"]) == (0, "cut"), rows
    assert "cut" in cut["reason"] and "will play again" in cut["reason"], cut
    # The cut attempt keeps its own start, and how far it got: up to its last recorded progress before the kill.
    assert iso_ms(cut["actual_start"]) == first_start["actual_start"], (cut, first_start)
    assert iso_ms(cut["ended_at"]) <= killed_at
    assert 1000 <= cut["duration_ms"] <= killed_at - first_start["actual_start"], cut
    assert (replay["attempt"], replay["outcome"]) == (1, "completed"), rows
    assert iso_ms(replay["actual_start"]) > killed_at
    assert ann["deliveries"][0]["status"] == "played"

    starts = [line for line in agent.sink_lines() if line["event"] == "start" and line["play_id"] == play_id]
    assert len(starts) == 2 and starts[1]["actual_start"] == iso_ms(replay["actual_start"]), starts
    # The outcome filter knows the new outcome.
    status, only_cut = controller.get("/api/v1/plays?agent_id=loa-01&outcome=cut")
    assert status == 200 and [r["attempt"] for r in only_cut] == [0], only_cut
    print(f"\ncut after {cut['duration_ms']} ms reported (killed {killed_at - first_start['actual_start']} ms in); "
          f"replay started {iso_ms(replay['actual_start']) - killed_at} ms after the kill; plays: {len(rows)}")


# Faster layers: the agent's journal on its real SQLite store, the controller's recorder on a real database --------


def _started(play_id: str, attempt: int, actual_start: int) -> PlayStarted:
    return PlayStarted(play_id=play_id, attempt=attempt, sha256="ab" * 32, priority=Priority.NORMAL,
                       scheduled_start=actual_start, actual_start=actual_start, output="file-sink")


def _sounding(play_id: str, *, latest_start: int, resumable: bool = True, relay_until: int | None = None,
              attempt: int = 0, sounding: bool = True, segment_index: int = 0) -> AttemptRow:
    start = now_ms() - 5000
    return AttemptRow(play_id=play_id, attempt=attempt, segment_index=segment_index, latest_start=latest_start,
                      relay_until=relay_until, resumable=resumable,
                      started=_started(play_id, attempt, start).model_dump_json().encode(), sounding=sounding,
                      progress_at=start + 3200)


def test_journal_reports_each_cut_once_and_replays_only_what_the_rules_allow(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.sqlite3")
    emitted: list[tuple[PlayFinished, PlayEnd | None]] = []

    async def emit(msg_type: str, data: BaseModel, end: PlayEnd | None) -> None:
        assert msg_type == "play.finished" and isinstance(data, PlayFinished)
        emitted.append((data, end))
        store.enqueue_event(f"ev-{len(emitted)}", "t", data.model_dump_json().encode(), end)

    async def in_thread(fn: Any) -> Any:
        return fn()

    later = now_ms() + 600_000
    store.add_pending("cmd-late", b"{}", 0)
    for row in (_sounding("cmd-ok", latest_start=later), _sounding("cmd-late", latest_start=now_ms() - 1),
                _sounding("live-x", latest_start=later, resumable=False),
                _sounding("relay-1", latest_start=now_ms() - 1, relay_until=later, segment_index=2),
                _sounding("waiting", latest_start=later, attempt=2, sounding=False, segment_index=1)):
        store.begin_attempt(row)

    async def scenario() -> None:
        journal = PlayJournal(store, in_thread, emit)
        assert await journal.recover() == 4
        by_id = {f.play_id: (f, end) for f, end in emitted}
        ok, ok_end = by_id["cmd-ok"]
        assert (ok.outcome, ok.attempt, ok.final, ok.ended_at - (ok.actual_start or 0)) == \
            (PlayOutcome.CUT, 0, False, 3200)
        assert ok_end == PlayEnd("cmd-ok", 1, 0, None) and "will play again" in ok.reason
        late, _ = by_id["cmd-late"]
        assert late.final and "too late" in late.reason
        assert by_id["live-x"][0].final and "not kept" in by_id["live-x"][0].reason
        relay, relay_end = by_id["relay-1"]
        assert not relay.final and "rejoin" in relay.reason and relay_end == PlayEnd("relay-1", 1, 2, later)
        assert "waiting" not in by_id  # pre-empted before the restart: nothing was cut
        # What goes on: the cut recording as attempt 1, the relay from its segment, the waiting play as attempt 2.
        assert journal.resume_point("cmd-ok") == ResumePoint(1, 0, None)
        assert journal.resume_point("relay-1") == ResumePoint(1, 2, later)
        assert journal.awaits("waiting")
        # Nothing restored the waiting one: its attempt 2 ends, so the controller is not left waiting.
        assert await journal.close_unrestored() == 1
        closed, closed_end = emitted[-1]
        assert (closed.play_id, closed.attempt, closed.outcome, closed.final) == ("waiting", 2, PlayOutcome.EXPIRED,
                                                                                   True)
        assert closed_end == PlayEnd("waiting")
        # A second start-up reports nothing again.
        emitted.clear()
        assert await PlayJournal(store, in_thread, emit).recover() == 0 and emitted == []

    asyncio.run(scenario())
    rows = {r.play_id: r for r in store.attempts()}
    assert set(rows) == {"cmd-ok", "relay-1"} and not rows["cmd-ok"].sounding and rows["cmd-ok"].attempt == 1
    assert store.pending() == []  # the final cut took its accepted command along
    assert store.done_among(["cmd-late", "live-x", "waiting", "cmd-ok"]) == {"cmd-late", "live-x", "waiting"}
    assert store.unacked_count() == 5
    store.close()


def test_controller_keeps_an_attempts_first_start_and_end_and_each_attempt_apart(tmp_path: Path) -> None:
    from controller.fleet.play_guard import give_plays
    from controller.fleet.recorder import FleetRecorder
    from controller.storage import migrate
    from controller.storage.engine import Database
    from controller.storage.models import Device, Play

    db = Database(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    migrate.upgrade(db.engine)
    with db.session() as session:
        session.add(Device(id="loa-01", token_hash="x" * 64))
        session.flush()
        give_plays(session, "loa-01", [("item1-occ", 1_000_000)], "schedule")
    recorder = FleetRecorder(db)

    def send(msg_type: str, data: BaseModel) -> None:
        recorder.handle(parse_topic(Topics.event("loa-01", msg_type)), make_event("loa-01", msg_type, data).to_bytes())

    def finished(attempt: int, start: int, outcome: PlayOutcome, end: int) -> PlayFinished:
        return PlayFinished(**_started("item1-occ", attempt, start).model_dump(), ended_at=end, outcome=outcome)

    send("play.started", _started("item1-occ", 0, 1_000_100))
    send("play.started", _started("item1-occ", 0, 1_009_000))  # a replay that forgot to count: ignored
    send("play.finished", finished(0, 1_000_100, PlayOutcome.CUT, 1_003_400))
    send("play.finished", finished(0, 1_009_000, PlayOutcome.COMPLETED, 1_030_000))  # a second end: ignored
    send("play.started", _started("item1-occ", 1, 1_009_000))
    send("play.finished", finished(1, 1_009_000, PlayOutcome.COMPLETED, 1_030_000))
    with db.session() as session:
        rows = [(p.attempt, p.actual_start_ms, p.ended_at_ms, p.outcome)
                for p in session.scalars(select(Play).order_by(Play.attempt))]
    assert rows == [(0, 1_000_100, 1_003_400, "cut"), (1, 1_009_000, 1_030_000, "completed")]
