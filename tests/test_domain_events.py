"""The in-process domain-event bus (controller/messaging/events.py) on a real SQLite database: events raised
in a transaction go out after its commit and never after a rollback; a failing handler is logged and
harms neither the change nor the other handlers; blocking handlers stay off the event loop; the console's
change feed moves on the events that concern its pages."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from controller.messaging.events import (
    AgentsReported,
    AnnouncementChanged,
    CameraEventRaised,
    DeviceChanged,
    DomainEvent,
    EventBus,
    LiveChanged,
    ScheduleChanged,
    SignChanged,
    StandbyChanged,
    agent_set,
)
from controller.storage.change_feed import ChangeFeed
from controller.storage.engine import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'events.sqlite3'}")
    with database.session() as session:
        session.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield database
    database.dispose()


def _count(db: Database) -> int:
    with db.session() as session:
        return int(session.execute(text("SELECT count(*) FROM note")).scalar_one())


def test_without_a_transaction_an_event_goes_out_at_once(db: Database) -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []
    bus.subscribe(SignChanged, seen.append)
    bus.publish(SignChanged(agent_set(["loa-01"])))
    assert seen == [SignChanged(frozenset({"loa-01"}))]
    with db.session() as session:  # a session that has not begun anything holds no transaction
        bus.publish(SignChanged(None), session)
        assert seen[-1] == SignChanged(None)


def test_an_event_raised_in_a_transaction_goes_out_after_commit_and_sees_the_change(db: Database) -> None:
    bus = EventBus()
    seen: list[tuple[ScheduleChanged, int]] = []
    # The handler reads in a session of its own, as the window publisher does: the change must be there.
    bus.subscribe(ScheduleChanged, lambda e: seen.append((e, _count(db))))
    with db.session() as session:
        session.execute(text("INSERT INTO note (body) VALUES ('item')"))
        bus.publish(ScheduleChanged(agent_set({"loa-01", "loa-02"})), session)
        bus.publish(ScheduleChanged(None), session)
        assert seen == []  # not while the transaction is open
    assert seen == [(ScheduleChanged(frozenset({"loa-01", "loa-02"})), 1), (ScheduleChanged(None), 1)]


def test_a_rollback_delivers_nothing_and_the_next_transaction_only_its_own(db: Database) -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []
    bus.subscribe(DomainEvent, seen.append)  # the base type hears every event
    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(text("INSERT INTO note (body) VALUES ('lost')"))
        bus.publish(DeviceChanged(frozenset({"loa-01"}), access=True), session)
        raise RuntimeError("the request failed")
    assert seen == [] and _count(db) == 0

    with db.session() as session:
        session.execute(text("INSERT INTO note (body) VALUES ('first')"))
        bus.publish(SignChanged(frozenset({"a"})), session)
        session.rollback()
        session.execute(text("INSERT INTO note (body) VALUES ('second')"))
        bus.publish(SignChanged(frozenset({"b"})), session)
    assert seen == [SignChanged(frozenset({"b"}))]


def test_a_session_closed_without_commit_drops_its_events(db: Database) -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []
    bus.subscribe(DomainEvent, seen.append)
    session = db._factory()
    session.execute(text("INSERT INTO note (body) VALUES ('never committed')"))
    bus.publish(SignChanged(None), session)
    session.close()
    session.execute(text("SELECT 1"))
    session.commit()  # a later transaction of the same session does not bring the old event back
    session.close()
    assert seen == [] and _count(db) == 0


def test_a_rolled_back_savepoint_takes_back_only_its_own_events(db: Database) -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []
    bus.subscribe(DomainEvent, seen.append)
    with db.session() as session:
        session.execute(text("INSERT INTO note (body) VALUES ('kept')"))
        bus.publish(SignChanged(frozenset({"kept"})), session)
        savepoint = session.begin_nested()
        session.execute(text("INSERT INTO note (body) VALUES ('undone')"))
        bus.publish(SignChanged(frozenset({"undone"})), session)
        savepoint.rollback()
        with session.begin_nested():
            bus.publish(SignChanged(frozenset({"released"})), session)
    assert seen == [SignChanged(frozenset({"kept"})), SignChanged(frozenset({"released"}))]


def test_a_failing_handler_is_logged_and_neither_fails_the_commit_nor_stops_the_others(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[DomainEvent] = []

    def broken(_event: SignChanged) -> None:
        raise ValueError("broken subscriber")

    bus.subscribe(SignChanged, broken)
    bus.subscribe(SignChanged, seen.append)
    with caplog.at_level(logging.ERROR, logger="controller.messaging.events"), db.session() as session:
        session.execute(text("INSERT INTO note (body) VALUES ('stays')"))
        bus.publish(SignChanged(None), session)
    assert seen == [SignChanged(None)]
    assert _count(db) == 1
    failures = [r for r in caplog.records if "broken" in r.getMessage()]
    assert failures and failures[0].exc_info is not None
    assert "broken subscriber" in str(failures[0].exc_info[1])

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="controller.messaging.events"):
        bus.publish(SignChanged(frozenset({"x"})))  # and without a session alike
    assert seen[-1] == SignChanged(frozenset({"x"}))
    assert any("broken" in r.getMessage() for r in caplog.records)


def test_blocking_handlers_run_off_the_event_loop_and_quick_ones_on_it() -> None:
    bus = EventBus()
    threads: dict[str, int] = {}
    done = threading.Event()

    def quick(_event: SignChanged) -> None:
        threads["quick"] = threading.get_ident()

    def slow(_event: SignChanged) -> None:
        threads["slow"] = threading.get_ident()
        done.set()

    bus.subscribe(SignChanged, quick)
    bus.subscribe(SignChanged, slow, blocking=True)

    async def main() -> int:
        bus.publish(SignChanged(None))
        await asyncio.to_thread(done.wait, 10)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert done.is_set()
    assert threads["quick"] == loop_thread
    assert threads["slow"] != loop_thread

    # From a worker thread (a committing route) a blocking handler simply runs there.
    threads.clear()
    done.clear()
    worker = threading.Thread(target=bus.publish, args=(SignChanged(None),))
    worker.start()
    worker.join(10)
    assert threads["slow"] == threads["quick"] == worker.ident


def test_handlers_hear_only_their_own_event_types() -> None:
    bus = EventBus()
    signs: list[DomainEvent] = []
    devices: list[DomainEvent] = []
    bus.subscribe(SignChanged, signs.append)
    bus.subscribe(DeviceChanged, devices.append)
    bus.publish(DeviceChanged(frozenset({"loa-01"}), reach=True))
    assert signs == [] and devices == [DeviceChanged(frozenset({"loa-01"}), access=False, reach=True)]


def test_the_console_change_feed_follows_the_events_that_concern_it() -> None:
    bus = EventBus()
    feed = ChangeFeed()
    feed.follow(bus)
    before = feed.versions()
    bus.publish(DeviceChanged(frozenset({"loa-01"}), access=True))
    bus.publish(AgentsReported(frozenset({"event"})))
    bus.publish(CameraEventRaised("cam-1", "camera.motion"))
    bus.publish(ScheduleChanged(None))
    after = feed.versions()
    assert ChangeFeed.changed(before, after) == ["fleet", "plays", "announcements", "motion"]
    assert after["fleet"] - before["fleet"] == 2  # the device change and the agents' reports

    before = after
    bus.publish(CameraEventRaised("cam-1", "camera.fault"))
    bus.publish(SignChanged(frozenset()))
    bus.publish(LiveChanged("s1"))
    bus.publish(AnnouncementChanged("a1"))
    bus.publish(StandbyChanged())  # windows only: no console page lists standby alarms live
    assert ChangeFeed.changed(before, feed.versions()) == ["announcements", "live", "cameras", "signs"]
