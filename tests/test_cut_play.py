"""A play cut by the agent's death (kill -9) stays in proof of play as cut, and its replay is a new attempt."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from controller.local_stack import start_agent
from devices.protocol import now_ms
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
