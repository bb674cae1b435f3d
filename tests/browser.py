"""Headless Chromium (Debian's /usr/bin/chromium) under Playwright, for tests of the real console pages.

Never ``playwright install``: the browser is the distribution's. A fake microphone can be given a WAV
file, so a page's getUserMedia captures exactly that audio. Import the fixture in a test module with
``from tests.browser import browser_factory  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CHROMIUM = os.environ.get("LP_CHROMIUM", "/usr/bin/chromium")
BASE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run")

BrowserFactory = Callable[..., Browser]


def chromium_flags(fake_audio: Path | None = None) -> list[str]:
    """Launch flags; with ``fake_audio`` the microphone is that WAV file (looped), granted without asking."""
    flags = list(BASE_FLAGS)
    if fake_audio is not None:
        flags += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={fake_audio}"]
    return flags


@pytest.fixture
def browser_factory() -> Iterator[BrowserFactory]:
    """Starts Chromium browsers (``make(fake_audio=…)``); all closed, and Playwright stopped, in teardown."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh --test installs Debian's chromium")
    playwright: Playwright = sync_playwright().start()
    browsers: list[Browser] = []

    def make(fake_audio: Path | None = None) -> Browser:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=chromium_flags(fake_audio), timeout=30_000)
        browsers.append(browser)
        return browser

    try:
        yield make
    finally:
        for browser in browsers:
            # A crashed browser must not hide the test's own failure.
            with contextlib.suppress(Exception):
                browser.close()
        playwright.stop()
