"""A sign that writes what it would show as PNG files: ``current.png``, frames, and ``shown.jsonl``."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from devices.led.content import Panel, TextPage
from devices.led.drivers.base import Showing, SignDriver, SignFault
from devices.led.render import png_bytes
from devices.led.settings import VirtualDriverSettings

log = logging.getLogger(__name__)

#: Pages whose frames are kept on disk; older ones are removed so a demo can run for weeks.
KEEP_PAGES = 20


class VirtualDriver(SignDriver):
    """Writes ``current.png`` (the still), ``frames/{n}-{i}.png`` and one JSON line per page shown."""

    kind = "virtual"

    def __init__(self, panel: Panel, settings: VirtualDriverSettings) -> None:
        super().__init__(panel)
        self.settings = settings
        self.directory = settings.directory
        self._seq = 0

    def open(self) -> None:
        """Creates the folder."""
        try:
            (self.directory / "frames").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SignFault("unwritable", f"{self.directory}: {exc}") from None

    def show(self, showing: Showing, interrupt: threading.Event) -> None:
        """Writes the page's frames (up to ``max_frames``) and the still, then waits ``hold_ms``."""
        rendered = showing.rendered
        self._seq += 1
        seq = self._seq
        try:
            written = 0
            for i, frame in enumerate(rendered.frames()):
                if i >= self.settings.max_frames:
                    break
                (self.directory / "frames" / f"{seq:06d}-{i:05d}.png").write_bytes(png_bytes(frame))
                written += 1
            self._atomic("current.png", png_bytes(rendered.preview()))
            page = showing.page
            record = {"seq": seq, "ts": time.time_ns() // 1_000_000, "kind": page.kind,
                      "lines": list(rendered.lines) if isinstance(page, TextPage) else [],
                      "mode": rendered.mode.value, "frames": rendered.frame_count, "written": written,
                      "frame_ms": rendered.frame_ms, "font_px": rendered.font_px,
                      "unsupported": list(rendered.unsupported), "hold_ms": showing.hold_ms}
            with (self.directory / "shown.jsonl").open("a", encoding="utf-8") as log_file:
                log_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._prune(seq)
        except OSError as exc:
            raise SignFault("unwritable", f"{self.directory}: {exc}") from None
        interrupt.wait(showing.hold_ms / 1000)

    def blank(self) -> None:
        """Removes ``current.png`` and notes the blank in the log."""
        try:
            (self.directory / "current.png").unlink(missing_ok=True)
            with (self.directory / "shown.jsonl").open("a", encoding="utf-8") as log_file:
                log_file.write(json.dumps({"seq": self._seq, "ts": time.time_ns() // 1_000_000, "kind": "blank"})
                               + "\n")
        except OSError as exc:
            raise SignFault("unwritable", f"{self.directory}: {exc}") from None

    def close(self) -> None:
        """Nothing to release."""

    def _atomic(self, name: str, data: bytes) -> None:
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.directory / name)

    def _prune(self, seq: int) -> None:
        oldest = seq - KEEP_PAGES
        if oldest <= 0:
            return
        for path in (self.directory / "frames").glob("*.png"):
            try:
                if int(path.name.split("-", 1)[0]) <= oldest:
                    path.unlink(missing_ok=True)
            except ValueError:
                continue
