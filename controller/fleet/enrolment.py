"""Enrolment of agents: one-time codes, credential rotation, revocation, and keeping the broker in step.

A technician asks for a code for a registered device; the Pi trades it (once, before it expires) for
its identity: a fresh device token and a fresh broker password, both stored only as hashes here. Every
change to who may use the broker rewrites Mosquitto's password and ACL files and signals the broker
(:class:`BrokerAccess`), so a revoked or re-enrolled device's old password stops working at once and
its live connection is dropped.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import segno
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controller.accounts.auth import new_token, token_hash
from controller.broadcasts.wards import single_ward
from controller.fleet.broker_accounts import BrokerAccount, BrokerFiles, hash_password, new_password
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import Device, EnrolmentCode
from devices.protocol import capability_ward

log = logging.getLogger(__name__)

#: Letters and digits that cannot be misread for one another (no 0/O, 1/I/L, 8/B, 5/S…).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXYZ234679"
_CODE_LEN = 8


def new_code() -> str:
    """A fresh enrolment code, ``XXXX-XXXX`` (about 38 bits; the rate limit and expiry do the rest)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(_CODE_LEN))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_code(text: str) -> str | None:
    """The code's eight characters (case, spaces and dashes ignored), or None if it cannot be a code."""
    raw = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(raw) != _CODE_LEN or any(ch not in CODE_ALPHABET for ch in raw):
        return None
    return raw


def code_hash(code: str) -> str:
    """What is stored for a code (SHA-256 of its normalised form)."""
    raw = normalize_code(code)
    if raw is None:
        raise ValueError("not an enrolment code")
    return hashlib.sha256(raw.encode()).hexdigest()


def enrol_uri(controller_url: str, code: str) -> str:
    """What the QR code holds: the controller to ask and the code (``loaphuong agent enroll`` reads it)."""
    return "loaphuong://enrol?" + urllib.parse.urlencode({"controller": controller_url, "code": code})


def qr_svg(text: str) -> str:
    """An SVG QR code of ``text`` (error correction M, readable from a phone screen)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, border=2)
    return out.getvalue().decode()


class EnrolmentRefused(Exception):
    """A code that cannot be used; ``reason`` is unknown / used / expired / malformed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code as shown once to the technician."""

    code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Credentials:
    """Fresh secrets for a device, in the clear only in the response that hands them over."""

    token: str
    mqtt_password: str


def issue_code(session: Session, device: Device, created_by: str, ttl: timedelta,
               now: datetime | None = None) -> IssuedCode:
    """A new code for ``device``; any code it had that was not used yet stops working."""
    now = now or datetime.now(UTC)
    session.execute(update(EnrolmentCode).where(EnrolmentCode.device_id == device.id,
                                                EnrolmentCode.used_at.is_(None)).values(used_at=now))
    code = new_code()
    session.add(EnrolmentCode(code_hash=code_hash(code), device_id=device.id, created_by=created_by,
                              created_at=now, expires_at=now + ttl))
    return IssuedCode(code, now + ttl)


def rotate_credentials(device: Device) -> Credentials:
    """New device token and broker password for ``device`` (old ones stop working once the broker reloads)."""
    token = new_token()
    password = new_password()
    device.token_hash = token_hash(token)
    device.mqtt_password_hash = hash_password(password)
    device.revoked_at = None
    device.enabled = True
    return Credentials(token, password)


def redeem(session: Session, code: str, now: datetime | None = None) -> tuple[Device, Credentials]:
    """Uses a code once: marks it used and rotates the device's credentials; :class:`EnrolmentRefused` if not."""
    now = now or datetime.now(UTC)
    if normalize_code(code) is None:
        raise EnrolmentRefused("malformed", "that is not an enrolment code (XXXX-XXXX)")
    row = session.get(EnrolmentCode, code_hash(code))
    if row is None:
        raise EnrolmentRefused("unknown", "unknown enrolment code")
    if row.used_at is not None:
        raise EnrolmentRefused("used", "this enrolment code was already used or replaced; ask for a new one")
    if row.expires_at <= now:
        raise EnrolmentRefused("expired", "this enrolment code has expired; ask for a new one")
    device = session.get(Device, row.device_id)
    if device is None:  # the FK cascades, so only a race with a delete gets here
        raise EnrolmentRefused("unknown", "unknown enrolment code")
    row.used_at = now
    return device, rotate_credentials(device)


def revoke(session: Session, device: Device, now: datetime | None = None) -> None:
    """Withdraws broker access and the device token, and voids its unused codes."""
    now = now or datetime.now(UTC)
    device.mqtt_password_hash = None
    # The token column is unique and required: an unguessable value nobody ever saw.
    device.token_hash = token_hash(new_token())
    device.revoked_at = now
    device.enabled = False
    # Mosquitto sends no last will for a session it drops on reload, so the registry says it here.
    device.status = "offline"
    device.status_changed_at = now
    session.execute(update(EnrolmentCode).where(EnrolmentCode.device_id == device.id,
                                                EnrolmentCode.used_at.is_(None)).values(used_at=now))


class AttemptLimiter:
    """Failed enrolment attempts per client address in a sliding window (codes are short; guessing must be slow)."""

    def __init__(self, per_client: int = 10, overall: int = 100, window_s: float = 600.0) -> None:
        self.per_client = per_client
        self.overall = overall
        self.window_s = window_s
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window_s:
            q.popleft()

    def retry_after(self, client: str) -> int:
        """Seconds the client must wait before trying again; 0 if it may try now."""
        now = time.monotonic()
        with self._lock:
            q = self._failures.get(client, deque())
            self._trim(q, now)
            self._trim(self._all, now)
            waits = []
            if len(q) >= self.per_client:
                waits.append(q[0] + self.window_s - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window_s - now)
            return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, client: str) -> None:
        """Counts one failed attempt by ``client``."""
        now = time.monotonic()
        with self._lock:
            self._failures.setdefault(client, deque()).append(now)
            self._all.append(now)
            if len(self._failures) > 10_000:  # a flood of addresses must not grow memory without bound
                for key in [k for k, q in self._failures.items() if not q or q[-1] <= now - self.window_s]:
                    del self._failures[key]


class BrokerAccess:
    """Keeps Mosquitto's password and ACL files equal to the device registry (when the controller manages them)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._lock = threading.Lock()
        s = settings
        self.files = (BrokerFiles(s.broker_password_file, s.broker_acl_file, s.broker_pid_file)
                      if s.broker_password_file is not None and s.broker_acl_file is not None else None)
        if self.files is not None and not (s.mqtt_username and s.mqtt_password):
            raise ValueError("LP_BROKER_PASSWORD_FILE needs LP_MQTT_USERNAME and LP_MQTT_PASSWORD "
                             "(the controller's own broker account)")

    @property
    def managed(self) -> bool:
        """True if this controller writes the broker's password and ACL files."""
        return self.files is not None

    def sync(self) -> bool:
        """Rewrites the files from the database and signals the broker; True if the broker was signalled."""
        if self.files is None:
            return False
        assert self.settings.mqtt_username and self.settings.mqtt_password
        with self._lock:  # two requests at once must not interleave their writes
            with self.db.session() as session:
                agents = [BrokerAccount(d.id, d.mqtt_password_hash, tuple(d.zones), d.ward_id,
                                        capability_ward(d.capabilities or ()) != d.ward_id) for d in session.scalars(
                    select(Device).where(Device.mqtt_password_hash.is_not(None), Device.revoked_at.is_(None))
                    .order_by(Device.id)) if d.mqtt_password_hash]
                revoked = list(session.scalars(select(Device.id).where(Device.revoked_at.is_not(None))
                                               .order_by(Device.id)))
                one_ward = single_ward(session)
            controller = BrokerAccount(self.settings.mqtt_username, hash_password(self.settings.mqtt_password))
            try:
                signalled = self.files.write(controller, agents, revoked, one_ward)
            except OSError as exc:
                # The registry change stands; the broker keeps its old files until the next change or restart.
                log.error("could not rewrite the broker's password/ACL files: %s", exc)
                return False
        log.info("broker accounts rewritten: controller + %d agents (reload %s)", len(agents),
                 "signalled" if signalled else "not signalled")
        return signalled
