"""Staff accounts and tokens: argon2 passwords, SHA-256-hashed bearer tokens, the first admin."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.keys import write_private
from controller.models import ApiToken, Device, User, utcnow

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105
ADMIN_PASSWORD_FILE = "admin.password"  # noqa: S105


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
    user = User(username=username, password_hash=_hasher.hash(password), role="admin")
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
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    row.last_used_at = utcnow()
    return user


def device_for_token(session: Session, token: str) -> Device | None:
    """The enabled device a device token belongs to."""
    device = session.scalar(select(Device).where(Device.token_hash == token_hash(token)))
    return device if device is not None and device.enabled else None
