"""Staff accounts and tokens: argon2 passwords, SHA-256-hashed bearer tokens, the first admin."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.messaging.keys import write_private
from controller.storage.models import ApiToken, Device, User, utcnow

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
# Verifying against a real hash for unknown users keeps response time from telling which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105
ADMIN_PASSWORD_FILE = "admin.password"  # noqa: S105
MIN_PASSWORD_LENGTH = 10


def new_token() -> str:
    """A random bearer token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored for a token: high-entropy secrets need no slow hash, only a one-way one."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """The first admin's credentials, only known on the start that created them."""

    username: str
    password: str
    token: str


def ensure_first_admin(session: Session, username: str, data_dir: Path) -> Bootstrap | None:
    """Creates the first admin and an API token when there are no users yet.

    The password and token go to 0600 files in the data directory (the demo prints them; a real
    site reads them once and deletes the password file after changing it).
    """
    if session.scalar(select(func.count()).select_from(User)):
        return None
    password = secrets.token_urlsafe(12)
    token = new_token()
    user = User(username=username, password_hash=_hasher.hash(password))
    user.set_roles(["admin"])
    session.add(user)
    session.flush()
    session.add(ApiToken(user_id=user.id, token_hash=token_hash(token), name="first admin"))
    write_private(data_dir / ADMIN_TOKEN_FILE, (token + "\n").encode())
    write_private(data_dir / ADMIN_PASSWORD_FILE, (f"{username}\n{password}\n").encode())
    log.warning("created first admin %r; password and API token written to %s (mode 0600)", username, data_dir)
    return Bootstrap(username, password, token)


def user_for_token(session: Session, token: str) -> User | None:
    """The enabled user a bearer token belongs to."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is None:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    # One write a minute per token at most: reads stay reads.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return user


def verify_password(session: Session, username: str, password: str) -> User | None:
    """The enabled user with these credentials; the hash is checked even for unknown names."""
    user = session.scalar(select(User).where(User.username == username))
    candidate = user.password_hash if user is not None else _DUMMY_HASH
    ok: bool
    try:
        ok = _hasher.verify(candidate, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def issue_session_token(session: Session, user: User, lifetime: timedelta,
                        name: str = "console session") -> tuple[str, datetime]:
    """A console session: an API token that expires."""
    token = new_token()
    expires = utcnow() + lifetime
    session.add(ApiToken(user_id=user.id, token_hash=token_hash(token), name=name, expires_at=expires))
    return token, expires


def revoke_token(session: Session, token: str) -> None:
    """Deletes a token (logout)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is not None:
        session.delete(row)


class LoginThrottle:
    """Refuses logins for a while after repeated failures for one name or from one address."""

    def __init__(self, max_failures: int = 5, window_s: float = 900.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        self._failures[key] = times
        return times

    def retry_after(self, keys: list[str]) -> float:
        """Seconds until a login for these keys may be tried again (0 = now)."""
        now = time.monotonic()
        with self._lock:
            waits = [self.window_s - (now - times[0]) for key in keys
                     if len(times := self._recent(key, now)) >= self.max_failures]
        return max(waits, default=0.0)

    def failed(self, keys: list[str]) -> None:
        """Counts one failure against each key."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, keys: list[str]) -> None:
        """Clears the keys' failures."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def device_for_token(session: Session, token: str) -> Device | None:
    """The enabled device a device token belongs to."""
    device = session.scalar(select(Device).where(Device.token_hash == token_hash(token)))
    return device if device is not None and device.enabled else None


def check_password_policy(username: str, password: str) -> None:
    """ValueError when the password is too weak: under 10 characters, or the username itself."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() == username.strip().lower():
        raise ValueError("password must not be the username")


def create_user(session: Session, username: str, password: str, role: str | None = None,
                roles: list[str] | None = None, zones: list[str] | None = None,
                unit: str | None = None) -> User:
    """A new member of staff with an argon2 hash of the password; ValueError if the name is taken or the
    password breaks the policy. ``role`` is shorthand for ``roles=[role]``; the roles are held on ``unit``
    (default: the whole deployment, the root unit)."""
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    check_password_policy(username, password)
    user = User(username=username, password_hash=_hasher.hash(password), zones=list(zones or []))
    user.set_roles(list(roles or []) + ([role] if role else []), unit)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Replaces the password (after the policy check) and ends every console session of the user.

    Script tokens stay: they are managed separately and a password reset is not a token leak.
    """
    check_password_policy(user.username, password)
    user.password_hash = _hasher.hash(password)
    for row in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                      ApiToken.expires_at.is_not(None))):
        session.delete(row)


def password_matches(user: User, password: str) -> bool:
    """Whether ``password`` is this user's current password."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
