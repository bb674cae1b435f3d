"""Every route of the real app × every role: a declared policy, 403 where the role is not allowed, never
401/403 where it is, and 401 with no credentials at all (the console's pages: a redirect to its login).

API routes are called with bearer tokens; console routes (``/console/…``) with a session cookie and its
CSRF header, as the console's pages send them.

The policy is read from the routes' dependencies (``require_roles`` and ``current_staff`` declare theirs,
see ``controller.api.deps.declare_roles``); routes that check callers their own way are listed in
``OWN_AUTH_ROUTES``. The app runs once under uvicorn in a thread (no broker: the API serves without one),
so streaming routes can be opened and closed after their status line.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import routing
from fastapi.dependencies.models import Dependant
from starlette.routing import Mount

from controller.accounts.auth import create_user, token_hash
from controller.api.deps import (
    ANY_STAFF,
    CSRF_COOKIE,
    CSRF_HEADER,
    OWN_AUTH_ROUTES,
    POLICY_ATTR,
    SESSION_COOKIE,
    csrf_for,
)
from controller.app import create_app
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import ROLES, ApiToken
from controller.tools.local_stack import free_port

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class Case:
    """One method of one route and the roles its dependencies let through."""

    method: str
    path: str
    allowed: frozenset[str]

    @property
    def console(self) -> bool:
        """A console route (session cookie) rather than the API (bearer token)."""
        return self.path.startswith("/console")

    def url(self) -> str:
        """The path with every parameter filled with a value no row has."""
        return re.sub(r"\{[^}]+\}", "1", self.path)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def policy_of(dependant: Dependant) -> frozenset[str] | None:
    """The roles every role-declaring dependency of a route lets through (None: no declared policy)."""
    found = [frozenset(getattr(call, POLICY_ATTR)) for call in _calls(dependant) if hasattr(call, POLICY_ATTR)]
    if not found:
        return None
    allowed = frozenset(ROLES)
    for roles in found:
        allowed &= roles
    return allowed


def route_cases(app: Any) -> tuple[list[Case], list[str]]:
    """Cases for every HTTP route of ``app``, and the routes that have neither a policy nor an entry in
    ``OWN_AUTH_ROUTES``."""
    cases: list[Case] = []
    undeclared: list[str] = []
    for route in routing.iter_route_contexts(app.routes):
        path = route.path
        if path is None or isinstance(route.route, Mount):
            continue  # static files
        dependant = getattr(route, "dependant", None)
        policy = policy_of(dependant) if dependant is not None else None
        if policy is None:
            if path not in OWN_AUTH_ROUTES:
                undeclared.append(f"{sorted(route.methods or ['WS'])} {path}")
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            cases.append(Case(method, path, policy))
    return cases, undeclared


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Path]]:
    """The real app under uvicorn on 127.0.0.1 in a thread; stopped in teardown."""
    data_dir = tmp_path_factory.mktemp("matrix") / "controller"
    port = free_port()
    app = create_app(Settings(data_dir=data_dir, http_host="127.0.0.1", http_port=port, mqtt_host="127.0.0.1",
                              mqtt_port=free_port()))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="matrix-uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield base, app, data_dir
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _tokens(data_dir: Path, count: int) -> dict[str, list[str]]:
    """``count`` fresh bearer tokens for a user holding exactly one role, for each role.

    Tokens are written straight to the database (a login per case would cost an argon2 hash each),
    one per case, so a case that logs out or changes a password cannot spoil the next.
    """
    db = Database(f"sqlite:///{data_dir / 'loaphuong.sqlite3'}")
    tokens: dict[str, list[str]] = {}
    try:
        with db.session() as session:
            for role in ROLES:
                user = create_user(session, f"matrix-{role}", secrets.token_urlsafe(16), role=role)
                tokens[role] = [secrets.token_urlsafe(32) for _ in range(count)]
                # expiring tokens, like the console's sessions (the cookie's value is such a token)
                expires = datetime.now(UTC) + timedelta(hours=1)
                session.add_all(ApiToken(user_id=user.id, token_hash=token_hash(t), name="matrix",
                                         expires_at=expires) for t in tokens[role])
    finally:
        db.engine.dispose()
    return tokens


def _status(client: httpx.Client, case: Case, token: str | None) -> int:
    client.cookies.clear()
    if case.console:
        # the console's way: the session cookie, and the CSRF token in cookie and header alike
        headers = {CSRF_HEADER: csrf_for(token)} if token else {}
        cookies = {SESSION_COOKIE: token, CSRF_COOKIE: csrf_for(token)} if token else {}
        form: dict[str, str] | None = {} if case.method in BODY_METHODS else None
        request = client.build_request(case.method, case.url(), data=form, headers=headers, cookies=cookies)
    else:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict[str, Any] | None = {} if case.method in BODY_METHODS else None
        request = client.build_request(case.method, case.url(), json=body, headers=headers)
    # streamed: a live view or event stream answers its status line and is closed unread
    response = client.send(request, stream=True)
    try:
        return response.status_code
    finally:
        response.close()


def _anonymous_expected(case: Case) -> int:
    """No credentials: the API says 401; a console page sends the browser to the login form (303), and a
    console change without a session is a 401 page."""
    if case.console:
        return 303 if case.method == "GET" else 401
    return 401


def test_every_route_declares_a_policy_and_enforces_it(served: tuple[str, Any, Path]) -> None:
    base, app, data_dir = served
    cases, undeclared = route_cases(app)
    assert not undeclared, f"routes without a role policy (require_roles, current_staff or OWN_AUTH_ROUTES): " \
        f"{undeclared}"
    assert len(cases) > 60  # the whole API, not an empty walk
    paths = {c.path for c in cases}
    for expected in ("/api/v1/users", "/api/v1/audit", "/api/v1/announcements", "/api/v1/cameras/{camera_id}/ptz/move",
                     "/console/account", "/console/events"):
        assert expected in paths
    tokens = _tokens(data_dir, len(cases))
    wrong: list[str] = []
    seen: dict[int, int] = {}
    with httpx.Client(base_url=base, timeout=20, follow_redirects=False) as client:
        for n, case in enumerate(cases):
            anonymous = _status(client, case, None)
            if anonymous != _anonymous_expected(case):
                wrong.append(f"{case.method} {case.path} without credentials: {anonymous}, "
                             f"expected {_anonymous_expected(case)}")
            for role in ROLES:
                status = _status(client, case, tokens[role][n])
                seen[status] = seen.get(status, 0) + 1
                if role in case.allowed and status in (401, 403):
                    wrong.append(f"{case.method} {case.path} as {role} (allowed): {status}")
                elif role not in case.allowed and status != 403:
                    wrong.append(f"{case.method} {case.path} as {role} (not allowed): {status}, expected 403")
    assert not wrong, "\n".join(wrong)
    print(f"{len(cases)} route methods × {len(ROLES)} roles; statuses seen: {dict(sorted(seen.items()))}")


def test_matrix_table_matches_the_issue(served: tuple[str, Any, Path]) -> None:
    """Spot checks of the declared table against issue 7's roles."""
    _base, app, _data_dir = served
    table = {(c.method, c.path): c.allowed for c in route_cases(app)[0]}
    assert table[("GET", "/api/v1/users")] == {"admin"}
    assert table[("GET", "/api/v1/audit")] == {"admin"}
    assert table[("POST", "/api/v1/announcements")] == {"admin", "approver", "officer"}
    assert table[("POST", "/api/v1/schedule/items/{item_id}/approve")] == {"admin", "approver"}
    assert table[("POST", "/api/v1/cameras/{camera_id}/ptz/move")] == {"admin", "security"}
    assert table[("POST", "/api/v1/devices")] == {"admin", "technician"}
    assert table[("GET", "/api/v1/devices")] == ANY_STAFF
    assert table[("POST", "/api/v1/source/items")] == {"admin", "source"}
    assert table[("GET", "/api/v1/source/broadcasts/{broadcast_id}/plays")] == {"admin", "source"}
