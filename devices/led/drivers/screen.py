"""A full-screen HDMI / framebuffer display through pygame (the ``screen`` extra).

pygame (SDL) belongs to the thread that opened it: the sign runner gives each sign its own thread, and
every call here happens on it. Scrolling blits the text surface at each frame's position, so no frame is
copied.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from devices.led.content import Panel, SignMode
from devices.led.drivers.base import Showing, SignDriver, SignFault
from devices.led.settings import ScreenDriverSettings


class ScreenDriver(SignDriver):
    """Shows pages on the screen pygame opens (``SDL_VIDEODRIVER`` picks the backend)."""

    kind = "screen"

    def __init__(self, panel: Panel, settings: ScreenDriverSettings) -> None:
        super().__init__(panel)
        self.settings = settings
        self._pg: Any = None
        self._screen: Any = None

    def open(self) -> None:
        """Initialises pygame's display at the panel size."""
        try:
            import pygame
        except ImportError:
            raise SignFault("no_pygame", "pygame is not installed: pip install 'loaphuong[screen]'") from None
        try:
            pygame.display.init()
            flags = pygame.FULLSCREEN if self.settings.fullscreen else 0
            self._screen = pygame.display.set_mode((self.panel.width, self.panel.height), flags)
            pygame.mouse.set_visible(False)
            pygame.display.set_caption("loaphuong")
        except pygame.error as exc:
            raise SignFault("no_display", f"cannot open the screen: {exc}") from None
        self._pg = pygame

    @property
    def surface(self) -> Any:
        """The display surface (tests read its pixels)."""
        return self._screen

    def show(self, showing: Showing, interrupt: threading.Event) -> None:
        """Plays the page's frames until ``hold_ms`` has passed (a scroll repeats) or ``interrupt`` is set."""
        pg, screen = self._pg, self._screen
        if pg is None or screen is None:
            raise SignFault("not_open", "screen is not open")
        r = showing.rendered
        strip = r.strip.convert("RGB")
        surface = pg.image.frombuffer(strip.tobytes(), strip.size, "RGB")
        deadline = time.monotonic() + showing.hold_ms / 1000
        index = 0
        try:
            while True:
                screen.fill((0, 0, 0))
                if r.mode in (SignMode.SCROLL_LEFT, SignMode.SCROLL_UP):
                    screen.blit(surface, r.position(index))  # SDL clips what lies off the panel
                elif not (r.mode is SignMode.FLASH and index % 2):
                    screen.blit(surface, (0, 0))
                pg.display.flip()
                pg.event.pump()  # keeps the window manager from calling us hung
                index = (index + 1) % r.frame_count
                left = deadline - time.monotonic()
                # A still page is drawn again twice a second, so a screen that was switched on late shows it.
                if left <= 0 or interrupt.wait(min(r.frame_ms / 1000, left, 0.5)):
                    return
        except pg.error as exc:
            raise SignFault("display_lost", str(exc)) from None

    def blank(self) -> None:
        """A black screen."""
        if self._pg is not None and self._screen is not None:
            self._screen.fill((0, 0, 0))
            self._pg.display.flip()

    def close(self) -> None:
        """Closes the display."""
        if self._pg is not None:
            self._pg.display.quit()
        self._pg = self._screen = None
