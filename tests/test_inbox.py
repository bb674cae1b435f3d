"""The controller's fair inbox: per-agent lanes, token buckets, round-robin, coalesced state.

Unit tests of :class:`controller.fleet.inbox.FairInbox` on a manual clock, then the real thing: a real agent
whose event backlog is far over its burst loses nothing (it resends what the controller dropped).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.fleet.inbox import FairInbox, InboxLimits, agent_of
from controller.tools.local_stack import register_agent, start_agent, write_agent_config
from devices.protocol import AgentError, Topics, make_event
from edge_agent.store import AgentStore
from tests.conftest import Broker, ControllerHandle


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event_topic(agent: str) -> str:
    return Topics.event(agent, "play.started")


def inbox(clock: Clock, **limits: float) -> FairInbox:
    return FairInbox(InboxLimits(**limits), clock=clock)  # type: ignore[arg-type]


def test_agent_of_picks_the_lane_without_trusting_the_topic() -> None:
    assert agent_of("lp/v1/agent/loa-01/event/play.started") == ("loa-01", "event")
    assert agent_of("lp/v1/agent/loa-01/status") == ("loa-01", "status")
    assert agent_of("lp/v1/controller/status") == ("", "")
    assert agent_of("something/else") == ("", "")


def test_a_quiet_agent_is_served_within_one_round_of_a_noisy_one() -> None:
    clock = Clock()
    box = inbox(clock, burst=10_000, agent_messages=10_000)
    for i in range(3000):
        assert box.put(event_topic("loa-01"), f"noise {i}".encode())
    assert box.put(Topics.reply("loa-02"), b"the reply an operation waits for")
    first = box.get_nowait(200)
    assert (Topics.reply("loa-02"), b"the reply an operation waits for") in first[:2]
    # Each agent's own messages stay in order.
    noise = [p for t, p in first if t == event_topic("loa-01")]
    assert noise == [f"noise {i}".encode() for i in range(len(noise))]
    assert box.waiting == 3001 - 200


def test_token_bucket_limits_each_agent_alone() -> None:
    clock = Clock()
    box = inbox(clock, rate_per_s=2.0, burst=10)
    accepted = sum(box.put(event_topic("loa-01"), b"x") for _ in range(15))
    assert accepted == 10
    assert box.put(event_topic("loa-02"), b"y")  # another agent has its own bucket
    clock.now += 1.5  # three tokens back
    assert sum(box.put(event_topic("loa-01"), b"x") for _ in range(5)) == 3
    stats = box.stats()
    assert stats["loa-01"]["over_rate"] == 7 and stats["loa-01"]["over_share"] == 0
    assert box.take_drops() == {"loa-01": 7}
    assert box.take_drops() == {}


def test_each_agent_has_its_own_bound_and_everyone_a_total_one() -> None:
    clock = Clock()
    box = inbox(clock, burst=1000, agent_messages=5, total_messages=8, agent_bytes=100)
    assert sum(box.put(event_topic("loa-01"), b"x") for _ in range(8)) == 5
    assert box.put(event_topic("loa-02"), b"y" * 101) is False  # over its bytes
    assert sum(box.put(event_topic("loa-02"), b"y") for _ in range(5)) == 3  # the total is reached
    assert box.stats()["loa-01"]["over_share"] == 3
    assert len(box.get_nowait(100)) == 8
    assert box.put(event_topic("loa-01"), b"x")  # room again once served


def test_retained_state_is_coalesced_costs_no_tokens_and_is_never_starved() -> None:
    clock = Clock()
    box = inbox(clock, rate_per_s=0.001, burst=1, agent_messages=3)
    assert box.put(event_topic("loa-01"), b"e")
    assert not box.put(event_topic("loa-01"), b"e2")  # bucket empty
    for i in range(100):
        assert box.put(Topics.status("loa-01"), f'{{"status":"s{i}"}}'.encode())
    assert box.put(Topics.state("loa-01"), b"{}")
    batch = box.get_nowait(10)
    assert batch == [(event_topic("loa-01"), b"e"), (Topics.status("loa-01"), b'{"status":"s99"}'),
                     (Topics.state("loa-01"), b"{}")]
    assert box.put(Topics.status("loa-01"), b'{"status":"offline"}')  # a new slot once the old one is served
    assert box.get_nowait(10) == [(Topics.status("loa-01"), b'{"status":"offline"}')]


def test_drops_are_logged_at_most_every_30_s_per_agent(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    box = inbox(clock, rate_per_s=1.0, burst=1)
    with caplog.at_level(logging.WARNING, logger="controller.fleet.inbox"):
        for _ in range(1001):
            box.put(event_topic("loa-01"), b"x")
        assert len(caplog.records) == 1
        clock.now += 31
        box.take_drops()
    assert len(caplog.records) == 2
    assert "dropped 999 message(s) from loa-01" in caplog.records[1].getMessage()


def test_idle_lanes_are_forgotten() -> None:
    clock = Clock()
    box = inbox(clock, rate_per_s=10.0, burst=10)
    box.put(event_topic("loa-01"), b"x")
    box.get_nowait(10)
    clock.now += 5
    box.take_drops()
    assert box.stats() == {}


def test_get_waits_for_a_message_or_times_out() -> None:
    async def scenario() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
        box = FairInbox()
        empty = await box.get(10, timeout=0.05)
        asyncio.get_running_loop().call_later(0.05, box.put, Topics.reply("loa-02"), b"r")
        got = await box.get(10, timeout=5)
        return empty, got

    empty, got = asyncio.run(scenario())
    assert empty == [] and got == [(Topics.reply("loa-02"), b"r")]


# ------------------------------------------------------------------------------------ real components


@pytest.fixture
def tight_controller(broker: Broker, controller_factory: Callable[..., ControllerHandle]) -> ControllerHandle:
    """A controller whose agents may send only 200 events at once and 25 a second."""
    handle = controller_factory(broker.port, env={"LP_INBOX_AGENT_BURST": "200", "LP_INBOX_AGENT_RATE": "25"})
    handle.wait_for(lambda: handle.get("/healthz")[1]["mqtt"] == "connected", 15, "controller on MQTT")
    return handle


def test_an_agent_over_its_burst_loses_nothing(tight_controller: ControllerHandle, tmp_path: Path) -> None:
    controller = tight_controller
    backlog = 400
    registered = register_agent(controller.api, controller.token, "loa-01", ["khu-pho-1"])
    files = write_agent_config(tmp_path / "agents" / "loa-01", registered, ["khu-pho-1"])
    # What a long outage leaves on the agent's disk: events the controller never acknowledged.
    files.data_dir.mkdir(parents=True, exist_ok=True)
    store = AgentStore(files.data_dir / "agent.sqlite3")
    try:
        for i in range(backlog):
            env = make_event("loa-01", "error", AgentError(code="amp_fault", message=f"outage event {i}"))
            store.enqueue_event(env.id, Topics.event("loa-01", "error"), env.to_bytes())
    finally:
        store.close()
    proc = start_agent(files, tmp_path / "loa-01.log")
    started = time.monotonic()
    try:
        def drained() -> bool:
            device = controller.device("loa-01")
            state = device["state"] or {}
            return bool(device["online"] and state.get("unacked_events") == 0 and device["inbox_dropped"] > 0)

        controller.wait_for(drained, 150, "every event acknowledged after drops")
        took = time.monotonic() - started
        device = controller.device("loa-01")
        with sqlite3.connect(f"file:{controller.data_dir / 'loaphuong.sqlite3'}?mode=ro", uri=True) as db:
            stored = db.execute("SELECT count(*) FROM device_events WHERE agent_id = 'loa-01' AND type = 'error'"
                                ).fetchone()[0]
        print(f"\nbacklog {backlog}: stored {stored}, dropped on the way {device['inbox_dropped']}, "
              f"all acknowledged after {took:.1f} s")
        assert stored == backlog
        assert "message(s) from loa-01" in controller.proc.log_text()
    finally:
        proc.stop()
