"""Building a city of several wards in a test: units, staff holding roles on them, and agents in wards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from controller.accounts.auth import create_user, new_token, token_hash
from controller.storage.engine import Database
from controller.storage.models import ROOT_UNIT, AgentSchedule, ApiToken, Unit, User
from controller.tools.local_stack import http_json, start_agent, write_agent_config
from devices.protocol.envelope import parse_envelope
from tests.conftest import ControllerHandle, RunningAgent

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


def database(ctl: ControllerHandle) -> Database:
    """The running controller's own database (SQLite in WAL mode: the test reads and seeds it alongside)."""
    return Database(f"sqlite:///{(ctl.data_dir / 'loaphuong.sqlite3').resolve()}")


@contextmanager
def ward_database(ctl: ControllerHandle, *wards: str) -> Iterator[Database]:
    """:func:`database` with ``wards`` added under the city; its connections closed on the way out."""
    db = database(ctl)
    try:
        with db.session() as session:
            for ward in wards:
                add_ward(session, ward)
        yield db
    finally:
        db.dispose()


def seed_staff(session: Session, staff: dict[str, list[tuple[str, str]]]) -> tuple[dict[str, str], dict[str, str]]:
    """Each member of ``staff`` (name → ``(role, unit)`` grants; username: the name with dashes); returns
    their bearer tokens and their usernames, by name."""
    tokens: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, grants in staff.items():
        user, token = add_staff(session, grants, username=name.replace("_", "-"))
        tokens[name], names[name] = token, user.username
    return tokens, names


def start_ward_agent(ctl: ControllerHandle, root: Path, agent_id: str, zone: str, ward: str,
                     with_ward: bool = True) -> RunningAgent:
    """Registers ``agent_id`` (in ``zone`` of ``ward``) as the first admin and starts it, its files under
    ``root``; ``with_ward=False``: a config from before wards. The caller stops it and waits as it needs."""
    status, registered = http_json("POST", f"{ctl.api}/api/v1/devices", ctl.token,
                                   {"id": agent_id, "name": agent_id, "zones": [zone], "ward": ward})
    assert status == 201, registered
    files = write_agent_config(root / "agents" / agent_id, registered, (zone,), with_ward=with_ward)
    return RunningAgent(files, start_agent(files, root / f"{agent_id}.log"), registered)


def wait_online(ctl: ControllerHandle, agent: RunningAgent) -> None:
    """Until the controller sees ``agent`` online; fails with its log if it exited first."""
    ctl.wait_for(lambda: ctl.device(agent.agent_id)["online"] or not agent.proc.alive, 20,
                 f"{agent.agent_id} online")
    assert agent.proc.alive, agent.log()


def window_items(db: Database, agent_id: str) -> tuple[int, set[str]]:
    """The version and item ids of the signed window the controller last published for an agent."""
    with db.session() as session:
        row = session.get(AgentSchedule, agent_id)
        if row is None:
            return 0, set()
        env = parse_envelope(row.payload.encode())
    assert env.sig and env.to == agent_id
    return int(env.data["version"]), {p["item_id"] for p in env.data["plays"]}


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
