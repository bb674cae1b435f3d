"""The interface every sign driver implements; drivers block, so the sign runner calls them from a thread."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

from devices.led.content import ImagePage, Panel, TextPage
from devices.led.render import RenderedPage


class SignFault(RuntimeError):
    """The sign cannot be reached or refused what was sent; ``code`` is short and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Showing:
    """A page to show now: its content, how it was drawn for this panel, and for how long."""

    page: TextPage | ImagePage
    rendered: RenderedPage
    hold_ms: int


class SignDriver(ABC):
    """Opens a sign, shows pages on it, blanks it, closes it. Every method may block."""

    kind: str = ""

    def __init__(self, panel: Panel) -> None:
        self.panel = panel

    @abstractmethod
    def open(self) -> None:
        """Connects to the sign; raises :class:`SignFault` when it cannot."""

    @abstractmethod
    def show(self, showing: Showing, interrupt: threading.Event) -> None:
        """Shows a page for ``hold_ms`` or until ``interrupt`` is set; raises :class:`SignFault`."""

    @abstractmethod
    def blank(self) -> None:
        """Leaves the sign dark (nothing to show)."""

    @abstractmethod
    def close(self) -> None:
        """Releases the sign; never raises."""
