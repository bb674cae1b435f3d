"""Helpers for tests of the web console: staff accounts, a signed-in HTTP client, a signed-in browser page,
and screenshots kept as test artefacts.

A console test uses the real controller (``controller`` fixture) and, for pages, Debian's chromium
(``browser_factory`` from tests/browser.py).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page

from tests.conftest import ControllerHandle

#: Where screenshots go (kept by CI as artefacts); git-ignored.
ARTIFACTS = Path(os.environ.get("LP_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


def create_staff(ctl: ControllerHandle, username: str, roles: Sequence[str],
                 zones: Sequence[str] = ()) -> str:
    """A new member of staff made through the API as the first admin; returns the password."""
    password = "pw-" + secrets.token_urlsafe(12)
    status, body = ctl.post("/api/v1/users", {"username": username, "password": password, "roles": list(roles),
                                              "zones": list(zones)})
    assert status == 201, body
    return password


@contextmanager
def console_client(ctl: ControllerHandle, username: str, password: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in through the console's login form, sending the CSRF header and
    ``HX-Request`` as htmx does (``with console_client(...) as client:``; closed on leaving)."""
    with httpx.Client(base_url=ctl.api, timeout=20, follow_redirects=False) as client:
        response = client.post("/console/login", data={"username": username, "password": password, "next": ""})
        assert response.status_code == 303, response.text[:2000]
        csrf = client.cookies.get("lp_csrf")
        assert csrf
        client.headers["X-CSRF-Token"] = csrf
        client.headers["HX-Request"] = "true"
        yield client


def browser_page(browser: Browser, ctl: ControllerHandle, username: str, password: str,
                 viewport: tuple[int, int] = (1280, 900)) -> Page:
    """A page signed in through the login form (Vietnamese, the default language)."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, locale="vi-VN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(ctl.api + "/console/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/(?!login).*"))
    return page


def screenshot(page: Page, name: str) -> Path:
    """Saves a full-page screenshot as ``test-artifacts/console/<name>.png``."""
    folder = ARTIFACTS / "console"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
