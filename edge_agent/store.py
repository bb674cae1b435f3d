"""The agent's small on-disk memory (SQLite): seen command ids, the event outbox, accepted plays,
the last schedule window, which scheduled plays are already done and which attempt of a play sounds.

It is what lets an agent lose its link or restart without losing proof of play, replaying an old
command or forgetting a broadcast it has already accepted. All methods block; call them from threads.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from devices.protocol import now_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, exp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
    created INTEGER NOT NULL, sent_at INTEGER
);
CREATE TABLE IF NOT EXISTS pending (
    play_id TEXT PRIMARY KEY, envelope BLOB NOT NULL, start_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule (
    slot INTEGER PRIMARY KEY CHECK (slot = 1), version INTEGER NOT NULL, envelope BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS done_plays (play_id TEXT PRIMARY KEY, ended INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    play_id TEXT PRIMARY KEY,
    attempt INTEGER NOT NULL,
    segment_index INTEGER NOT NULL,
    latest_start INTEGER NOT NULL,
    relay_until INTEGER,
    resumable INTEGER NOT NULL,
    started BLOB NOT NULL,
    sounding INTEGER NOT NULL,
    progress_at INTEGER NOT NULL
);
"""

#: Done scheduled plays are remembered this long (longer than any window), so none plays twice.
DONE_KEEP_MS = 4 * 24 * 3600 * 1000

#: Outbox rows beyond this are the oldest to go: a months-long outage must not fill the SD card.
OUTBOX_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """A play that has sounded at least once and has not ended for good.

    ``sounding``: attempt ``attempt`` was sounding when last recorded (a row still sounding at start-up was
    cut by a crash or a power loss); otherwise ``attempt`` is the next one to make, from ``segment_index``.
    ``started`` is the last ``play.started`` (JSON); ``progress_at`` the last time it was seen sounding.
    """

    play_id: str
    attempt: int
    segment_index: int
    latest_start: int
    relay_until: int | None
    resumable: bool
    started: bytes
    sounding: bool
    progress_at: int


@dataclass(frozen=True, slots=True)
class PlayEnd:
    """What an attempt's ``play.finished`` does to the play's records, in the same transaction as the event.

    ``next_attempt`` None: the play is over (its attempt row, its accepted command go; a scheduled play is
    marked done). Otherwise attempt ``next_attempt`` follows, from ``segment_index``.
    """

    play_id: str
    next_attempt: int | None = None
    segment_index: int = 0
    relay_until: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event waiting for the controller's acknowledgement."""

    id: str
    topic: str
    payload: bytes


class AgentStore:
    """Thread-safe wrapper around one SQLite file in WAL mode."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Closes the database."""
        with self._lock:
            self._db.close()

    # replay protection ------------------------------------------------------------------------------

    def check_and_remember(self, msg_id: str, exp: int) -> bool:
        """True if ``msg_id`` was seen before; otherwise remembers it until ``exp`` and returns False."""
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO seen (id, exp) VALUES (?, ?)", (msg_id, exp))
            return cur.rowcount == 0

    def prune_seen(self) -> int:
        """Forgets ids whose commands have expired (an expired command is refused anyway)."""
        with self._lock:
            return self._db.execute("DELETE FROM seen WHERE exp < ?", (now_ms() - 60_000,)).rowcount

    # event outbox -----------------------------------------------------------------------------------

    def enqueue_event(self, msg_id: str, topic: str, payload: bytes, play_end: PlayEnd | None = None) -> None:
        """Keeps an event on disk until :meth:`ack_events` names it; with ``play_end``, in one transaction
        with what the event means for the play (so a crash can neither report an end twice nor lose it)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR IGNORE INTO outbox (id, topic, payload, created) VALUES (?,?,?,?)",
                                 (msg_id, topic, payload, now_ms()))
                self._db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY created DESC LIMIT -1 OFFSET ?)",
                    (OUTBOX_LIMIT,))
                if play_end is not None:
                    self._apply_play_end(play_end)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _apply_play_end(self, end: PlayEnd) -> None:
        if end.next_attempt is None:
            self._db.execute("DELETE FROM attempts WHERE play_id = ?", (end.play_id,))
            self._db.execute("DELETE FROM pending WHERE play_id = ?", (end.play_id,))
            # Harmless for a command's play id; for a scheduled play it keeps a later window from replaying it.
            self._db.execute("INSERT OR REPLACE INTO done_plays (play_id, ended) VALUES (?, ?)",
                             (end.play_id, now_ms()))
        else:
            self._db.execute("UPDATE attempts SET attempt = ?, segment_index = ?, relay_until = ?, sounding = 0 "
                             "WHERE play_id = ?", (end.next_attempt, end.segment_index, end.relay_until,
                                                   end.play_id))

    def events_due(self, resend_after_ms: int, limit: int = 200) -> list[OutboxRow]:
        """Events never sent, or sent ``resend_after_ms`` ago without an acknowledgement, oldest first."""
        cutoff = now_ms() - resend_after_ms
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE sent_at IS NULL OR sent_at < ? "
                "ORDER BY created LIMIT ?", (cutoff, limit)).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2])) for r in rows]

    def mark_sent(self, ids: list[str]) -> None:
        """Records that these events reached the broker."""
        with self._lock:
            self._db.executemany("UPDATE outbox SET sent_at = ? WHERE id = ?", [(now_ms(), i) for i in ids])

    def mark_all_unsent(self) -> None:
        """After a reconnect or a controller restart everything unacknowledged goes again."""
        with self._lock:
            self._db.execute("UPDATE outbox SET sent_at = NULL")

    def ack_events(self, ids: list[str]) -> int:
        """Drops acknowledged events; returns how many were known."""
        with self._lock:
            return self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids]).rowcount

    def unacked_count(self) -> int:
        """Events still waiting for the controller."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # accepted plays ---------------------------------------------------------------------------------

    def add_pending(self, play_id: str, envelope: bytes, start_at: int) -> None:
        """Remembers an accepted play so a restart before its start does not forget it."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO pending (play_id, envelope, start_at) VALUES (?,?,?)",
                             (play_id, envelope, start_at))

    def remove_pending(self, play_id: str) -> None:
        """The play has ended one way or another."""
        with self._lock:
            self._db.execute("DELETE FROM pending WHERE play_id = ?", (play_id,))

    def pending(self) -> list[bytes]:
        """Envelopes of accepted plays not yet ended, by start time."""
        with self._lock:
            rows = self._db.execute("SELECT envelope FROM pending ORDER BY start_at").fetchall()
        return [bytes(r[0]) for r in rows]

    # schedule window ---------------------------------------------------------------------------------

    def save_schedule(self, version: int, envelope: bytes) -> None:
        """Keeps the newest accepted window; the agent plays from it while the controller is away."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO schedule (slot, version, envelope) VALUES (1, ?, ?)",
                             (version, envelope))

    def schedule(self) -> tuple[int, bytes] | None:
        """The stored window's version and signed envelope, if any."""
        with self._lock:
            row = self._db.execute("SELECT version, envelope FROM schedule WHERE slot = 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def mark_done(self, play_id: str) -> None:
        """A scheduled play has ended (however): it must not play again from this or a later window."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO done_plays (play_id, ended) VALUES (?, ?)", (play_id, now_ms()))

    def done_among(self, play_ids: list[str]) -> set[str]:
        """Which of these scheduled plays have already ended."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(play_ids), 500):
                chunk = play_ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                found |= {r[0] for r in self._db.execute(
                    f"SELECT play_id FROM done_plays WHERE play_id IN ({marks})", chunk)}  # noqa: S608 - only "?"
        return found

    def prune_done(self) -> int:
        """Forgets done plays older than any window could still name."""
        with self._lock:
            return self._db.execute("DELETE FROM done_plays WHERE ended < ?", (now_ms() - DONE_KEEP_MS,)).rowcount

    # attempts in progress ---------------------------------------------------------------------------

    def begin_attempt(self, row: AttemptRow) -> None:
        """Records that attempt ``row.attempt`` sounds now (written before its ``play.started`` is sent)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO attempts (play_id, attempt, segment_index, latest_start, relay_until, "
                "resumable, started, sounding, progress_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (row.play_id, row.attempt, row.segment_index, row.latest_start, row.relay_until,
                 int(row.resumable), row.started, int(row.sounding), row.progress_at))

    def attempt_segment(self, play_id: str, segment_index: int, relay_until: int | None) -> None:
        """The sounding attempt moved on to segment ``segment_index`` (a replay would start there)."""
        with self._lock:
            self._db.execute("UPDATE attempts SET segment_index = ?, relay_until = ?, progress_at = ? "
                             "WHERE play_id = ?", (segment_index, relay_until, now_ms(), play_id))

    def touch_attempts(self, play_ids: list[str], at_ms: int) -> None:
        """These plays were still sounding at ``at_ms``."""
        with self._lock:
            self._db.executemany("UPDATE attempts SET progress_at = ? WHERE play_id = ? AND sounding = 1",
                                 [(at_ms, i) for i in play_ids])

    def drop_attempt(self, play_id: str) -> None:
        """Forgets a play's attempt record (one that could not be read)."""
        with self._lock:
            self._db.execute("DELETE FROM attempts WHERE play_id = ?", (play_id,))

    def attempts(self) -> list[AttemptRow]:
        """Every play with an attempt row."""
        with self._lock:
            rows = self._db.execute(
                "SELECT play_id, attempt, segment_index, latest_start, relay_until, resumable, started, sounding, "
                "progress_at FROM attempts ORDER BY play_id").fetchall()
        return [AttemptRow(r[0], int(r[1]), int(r[2]), int(r[3]), None if r[4] is None else int(r[4]), bool(r[5]),
                           bytes(r[6]), bool(r[7]), int(r[8])) for r in rows]
