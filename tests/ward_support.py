"""Building a city of several wards in a test: units, and staff holding roles on them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from controller.accounts.auth import create_user, new_token, token_hash
from controller.storage.engine import Database
from controller.storage.models import ROOT_UNIT, ApiToken, Unit, User
from controller.tools.local_stack import http_json
from tests.conftest import ControllerHandle

PASSWORD = "correct horse battery"


def add_ward(session: Session, ward_id: str, name: str = "", parent: str = ROOT_UNIT) -> Unit:
    """A ward under ``parent`` (the city by default)."""
    unit = Unit(id=ward_id, kind="ward", name=name or f"Phường {ward_id}", parent_id=parent)
    session.add(unit)
    session.flush()
    return unit


def add_staff(session: Session, grants: list[tuple[str, str]], username: str | None = None,
              zones: list[str] | None = None) -> tuple[User, str]:
    """A member of staff holding ``(role, unit)`` grants, and a bearer token for them."""
    first_role, first_unit = grants[0]
    user = create_user(session, username or f"u{secrets.token_hex(4)}", PASSWORD, roles=[first_role],
                       zones=zones, unit=first_unit)
    user.set_grants(grants)
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=token_hash(token), name="test"))
    session.flush()
    return user, token


@dataclass
class StaffCity:
    """A running controller, its database, and bearer tokens and usernames of its staff, by name."""

    ctl: ControllerHandle
    db: Database
    tokens: dict[str, str]
    names: dict[str, str]

    def call(self, method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
        """An API request as ``who`` (``root``: the first admin)."""
        token = self.ctl.token if who == "root" else self.tokens[who]
        return http_json(method, self.ctl.api + path, token, body)
