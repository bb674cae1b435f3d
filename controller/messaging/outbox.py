"""The controller's one way out to the broker: every message is signed, recorded and published here.

Nothing else in the controller publishes on the MQTT link or signs a command
(tests/test_import_contract.py holds the rule). A caller hands over a message model and its addressee;
the type and topic follow from the model (controller/messaging/routes.py).

**Written with the change (the transactional outbox).** :meth:`Outbox.send` takes the caller's
SQLAlchemy session: the signed message becomes a row of the ``outbox`` table in the same transaction
as the change that caused it, so it exists exactly when the change does — a rolled-back transaction
publishes nothing, a committed one is published even if the process dies the next instant. Written so:

* an announcement's ``speaker.play`` (its deliveries and group command are in the same transaction);
* a schedule window and a sign playlist (retained; a newer one for the same agent supersedes an older
  one not yet taken, and the stored document is marked published only if its version is still the one
  sent);
* a revoked device's retained ``offline`` status (its revocation is the change).

One publisher task (:meth:`Outbox.run`) publishes them, woken after every commit that wrote one and
polling every ``poll_s`` besides (a row written by another process, or left by a run that died, is
found). It takes a batch of up to :data:`BATCH_MAX` rows of the highest priority waiting (emergency
first, oldest first within a level), publishes the batch concurrently (QoS 1: one broker round trip or
so for all of them), and settles it in one transaction: published rows are ``sent`` and the deliveries
and group commands they carry move to ``sent``; rows past their expiry are ``expired`` and so are their
deliveries; a row the broker refuses (not an outage: the message itself) is ``failed``, with its
deliveries. A publish may be repeated (the process died after the broker took it, before ``sent`` was
written): agents drop a command id they have seen, and a retained copy replaces itself, so a repeat is
harmless.

**Said now, never written (the direct path).** :meth:`Outbox.send_now` signs and publishes at once and
is not persisted, because a late copy would be wrong or useless:

* ``ops.*`` (an API call waits for the reply): a restart or a volume change published minutes later,
  after the caller was told it failed, would act unasked;
* ``speaker.live`` / ``speaker.live_end``: valid 30 s, about a session that lives only in this process
  (its Icecast mount); after a restart the session is gone, so a replayed ``speaker.live`` would send
  speakers to a dead mount;
* ``events.ack``: an agent resends what was not acknowledged (and the recorder takes a repeat once),
  so a lost ack costs a resend, never an event;
* ``camera.discover``: asked from the console, answered now or reported as failed;
* the controller's own ``online`` / ``stopped``: the state of this connection at this moment (the birth
  is said again on every connection; the broker's will covers a crash);
* camera events on ``lp/v1/controller/camera/…``: a live copy for listeners; the event itself is in
  the database and on the console's stream.

**One policy for a broker that is down.** Written rows wait: the publisher waits for the link and
publishes them when it is back (their deliveries stay ``queued``), expiring what runs out of time
meanwhile. The direct path never waits or queues: with the link down, or a broker that does not
acknowledge within the timeout, it raises :class:`BrokerUnavailable` at once, and the caller reports
it (an operation answers ``link_down``) or logs it where the protocol repairs the loss.

**Several controller replicas (not built here).** Rows are claimed by a conditional update (pending,
and unclaimed or its claim lapsed after ``lease_ms``) and read back by claim token, so two publishers
never take the same row. The replicas issue must add: run the publisher only in the holder of a lease
kept in PostgreSQL; on taking the lease, free the claims of earlier holders (today :meth:`Outbox.run`
frees every claim at start, which is right only for one publisher per database); carry the lease's
fencing token as the claim token so a deposed holder's late settle matches no row; and, to keep
emergency-first across the fleet, take batches with ``FOR UPDATE SKIP LOCKED`` if more than one
publisher is ever allowed at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.orm import Session

from controller.messaging import store
from controller.messaging.routes import Route, command_route, route, unsigned_payload
from controller.messaging.store import Claimed
from controller.storage.engine import Database
from devices.mqtt_link import MqttLink, NotConnected
from devices.protocol import Priority, Signer, now_ms, parse_envelope

log = logging.getLogger(__name__)

#: Rows published together before their outcome is written in one transaction.
BATCH_MAX: Final = 1000
#: How long a claim holds a row; a publisher that died holding it frees it after this.
LEASE_MS: Final = 60_000
#: Settled rows are kept this long for whoever looks into what went out, then deleted.
KEEP_SETTLED: Final = timedelta(hours=24)
_PRUNE_EVERY_S: Final = 600.0
#: The direct path's wait for the broker's acknowledgement, and the last word's on closing.
SEND_TIMEOUT_S: Final = 10.0
_LAST_WORD_TIMEOUT_S: Final = 3.0
_WAKE_KEY: Final = "outbox_wake"


class BrokerUnavailable(NotConnected):
    """The broker cannot take a message now: the link is down, or it did not acknowledge in time.

    A kind of the link's own ``NotConnected``, so raised from the link's ``on_connect`` (the birth) it
    ends that session the way a dropped link does, and the link connects and says it again.
    """


@dataclass(frozen=True, slots=True)
class RetainedDoc:
    """A retained document written to the outbox: whose it is, its version, its signed bytes."""

    agent_id: str
    version: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to go: signed when it is a command; ``id`` is the command id (None if unsigned)."""

    route: Route
    target: str | None
    id: str | None
    exp_ms: int | None
    payload: bytes


class Outbox:
    """Signs, records and publishes every message the controller sends to the broker."""

    def __init__(self, db: Database, signer: Signer, link: MqttLink, *, poll_s: float = 2.0,
                 hold: bool = False, lease_ms: int = LEASE_MS) -> None:
        self._db = db
        self._signer = signer
        self._link = link
        self._poll_s = poll_s
        self._hold = hold
        self._lease_ms = lease_ms
        self._token = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Rows this process published (for logs and benches).
        self.published = 0

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key agents check this outbox's commands with."""
        return self._signer.public_key

    @property
    def connected(self) -> asyncio.Event:
        """Set while the broker is reachable."""
        return self._link.connected

    # preparing --------------------------------------------------------------------------------------

    def prepare(self, message: BaseModel, to: str | None = None, *, ttl_ms: int | None = None,
                attachment: bytes | None = None) -> Prepared:
        """Routes and (for a command) signs ``message``; a command needs ``ttl_ms``. Raises ProtocolError."""
        r = route(message, to)
        if r.signed:
            if ttl_ms is None:
                raise ValueError(f"a {r.kind} command needs ttl_ms")
            assert to is not None  # route() refuses a command without an addressee
            env = self._signer.command(r.kind, message, to=to, ttl_ms=ttl_ms, attachment=attachment)
            return Prepared(r, to, env.id, env.exp, env.to_bytes())
        if attachment is not None:
            raise ValueError(f"{r.kind} carries no attachment")
        exp = None if ttl_ms is None else now_ms() + ttl_ms
        return Prepared(r, to, None, exp, unsigned_payload(message))

    # written with the change ------------------------------------------------------------------------

    def send(self, session: Session, message: BaseModel, to: str | None = None, *, ttl_ms: int | None = None,
             priority: Priority = Priority.NORMAL, attachment: bytes | None = None,
             ref: str | None = None) -> Prepared:
        """Writes ``message`` into ``session``'s transaction; it is published once that commits (blocking).

        ``ref`` comes back to the settling (a retained document's version). Returns the signed message
        (its ``id`` is the command id the caller's deliveries record).
        """
        prepared = self.prepare(message, to, ttl_ms=ttl_ms, attachment=attachment)
        self.write(session, prepared, priority=priority, ref=ref)
        return prepared

    def send_stored(self, session: Session, payload: bytes, *, ref: str | None = None,
                    priority: Priority = Priority.NORMAL) -> None:
        """Writes again a command signed and stored earlier (a retained document the broker may have lost).

        The copy is the same envelope, same id: an agent that has it drops the repeat.
        """
        env = parse_envelope(payload)
        r = command_route(env.type, env.to)
        self.write(session, Prepared(r, env.to, env.id, env.exp, payload), priority=priority, ref=ref)

    def write(self, session: Session, prepared: Prepared, *, priority: Priority = Priority.NORMAL,
              ref: str | None = None) -> None:
        """Writes a message from :meth:`prepare` into ``session``'s transaction (for a caller that checks it first)."""
        store.insert(session, prepared.route, payload=prepared.payload, target=prepared.target,
                     command_id=prepared.id, priority=priority.rank, exp_ms=prepared.exp_ms, ref=ref,
                     now_ms=now_ms())
        if not session.info.get(_WAKE_KEY):
            session.info[_WAKE_KEY] = True
            event.listen(session, "after_commit", self._committed, once=True)

    def _committed(self, session: Session) -> None:
        session.info.pop(_WAKE_KEY, None)
        self.wake()

    def wake(self) -> None:
        """Tells the publisher rows are waiting. Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not running yet: its first round reads every waiting row anyway
        loop.call_soon_threadsafe(self._wake.set)

    # said now ---------------------------------------------------------------------------------------

    async def send_now(self, message: BaseModel, to: str | None = None, *, ttl_ms: int | None = None,
                       timeout: float = SEND_TIMEOUT_S) -> Prepared:  # noqa: ASYNC109
        """Signs and publishes ``message`` now, not persisted; BrokerUnavailable if the broker cannot take it."""
        prepared = self.prepare(message, to, ttl_ms=ttl_ms)
        await self.send_prepared(prepared, timeout=timeout)
        return prepared

    async def send_prepared(self, prepared: Prepared, *, timeout: float = SEND_TIMEOUT_S) -> None:  # noqa: ASYNC109
        """Publishes a message from :meth:`prepare` now (for a caller that records its id first)."""
        if not self._link.connected.is_set():
            raise BrokerUnavailable(f"{prepared.route.kind}: the MQTT broker is unreachable")
        try:
            for topic in prepared.route.topics:
                await self._link.publish(topic, prepared.payload, qos=1, retain=prepared.route.retain,
                                         timeout=timeout)
        except NotConnected as exc:
            raise BrokerUnavailable(f"{prepared.route.kind}: the MQTT broker did not take it ({exc})") from None

    async def close(self, last_word: BaseModel | None = None) -> None:
        """Says ``last_word`` (the controller's ``stopped``) if the broker is there, stops, disconnects."""
        if last_word is not None:
            try:
                await self.send_now(last_word, timeout=_LAST_WORD_TIMEOUT_S)
            except BrokerUnavailable as exc:
                log.info("last word not said: %s", exc)
        self._closing.set()
        await self._link.close()

    # the publisher ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Publishes written rows until closed; never ends on an error."""
        self._loop = asyncio.get_running_loop()
        if self._hold:
            log.warning("the outbox is held (LP_OUTBOX_HOLD): messages are written but not published")
            await self._closing.wait()
            return
        freed = await asyncio.to_thread(store.release_claims, self._db)
        if freed:
            log.info("outbox: %d row(s) a previous run was publishing are free again", freed)
        next_prune = time.monotonic()
        while not self._closing.is_set():
            try:
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + _PRUNE_EVERY_S
                    await asyncio.to_thread(store.prune, self._db, KEEP_SETTLED)
                if not await self._round():
                    await self._idle()
            except Exception:
                log.exception("outbox round failed; trying again in %.1f s", self._poll_s)
                await self._idle()

    async def _round(self) -> bool:
        """Expires what ran out of time and publishes one batch; True if it published anything."""
        self._wake.clear()
        connected = self._link.connected.is_set()
        taken = await asyncio.to_thread(store.claim, self._db, self._token, now_ms(), self._lease_ms,
                                        BATCH_MAX if connected else 0)
        if taken.expired:
            log.warning("outbox: %d message(s) expired before the broker could take them", len(taken.expired))
        if not taken.rows:
            return False
        await self._publish(taken.rows)
        return True

    async def _idle(self) -> None:
        """Until woken, until the link comes back, until the next poll, or until closed."""
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._closing.wait())]
        if not self._link.connected.is_set():
            waits.append(asyncio.ensure_future(self._link.connected.wait()))
        try:
            await asyncio.wait(waits, timeout=self._poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _publish(self, rows: list[Claimed]) -> None:
        # Concurrently: the broker acknowledges a whole batch in about one round trip.
        results = await asyncio.gather(*(self._put(row) for row in rows), return_exceptions=True)
        sent: list[Claimed] = []
        retry: list[Claimed] = []
        broken: list[Claimed] = []
        for row, result in zip(rows, results, strict=True):
            if result is None:
                sent.append(row)
            elif isinstance(result, NotConnected):
                retry.append(row)  # a zone that got it already drops the next copy as a replay
            else:
                log.error("outbox: %s %s could not be published: %r", row.kind, row.command_id or row.id, result)
                broken.append(row)
        await asyncio.to_thread(store.settle, self._db, self._token, sent, broken,
                                "the broker refused the message", retry)
        self.published += len(sent)
        if retry:
            log.info("outbox: %d message(s) wait for the broker", len(retry))
            await asyncio.sleep(0.5)  # the link just dropped: let it notice before the next round

    async def _put(self, row: Claimed) -> None:
        for topic in row.topics:
            await self._link.publish(topic, row.payload, qos=1, retain=row.retain)


async def waiting_commands(db: Database) -> int:
    """Commands written and not yet published (what a start resumes)."""
    return await asyncio.to_thread(store.waiting_commands, db)
