"""An Alpha-protocol sign on a serial port (pyserial).

On open: the port is opened, the sign's memory cleared and laid out (one TEXT file, eight DOTS pictures sized for
the panel) and its clock set. A text page goes as DOTS pictures drawn by our renderer, so every Vietnamese
diacritic shows on a sign with no Vietnamese font; with ``text = "ascii"`` it goes as a TEXT file of the
transliterated words instead. The sign itself runs the display mode (hold, rotate, roll up, flash).

With ``read_ack`` each packet waits for the sign's ACK (NAK: sent again, twice at most). A port that
vanishes (USB adapter pulled), an open that fails, or a sign that does not answer raises
:class:`SignFault`; the sign runner reports it and reopens with back-off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import termios
import threading
import time
from datetime import datetime
from typing import Any

import serial
from PIL import Image

from devices.led import alpha
from devices.led.content import Panel, SignMode, TextPage
from devices.led.drivers.base import Showing, SignDriver, SignFault
from devices.led.render import RenderedPage
from devices.led.settings import AlphaDriverSettings

log = logging.getLogger(__name__)

#: Times a packet is sent again after a NAK.
NAK_RETRIES = 2
#: The page a sign holds is sent again after this long even if unchanged (the sign may have lost power).
REFRESH_S = 60.0
_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class AlphaSerialDriver(SignDriver):
    """Talks the Alpha protocol over one serial port."""

    kind = "alpha"

    def __init__(self, panel: Panel, settings: AlphaDriverSettings) -> None:
        super().__init__(panel)
        self.settings = settings
        self._port: Any = None
        #: Digest of the packets the sign holds now, and when they were sent.
        self._shown = ""
        self._shown_at = 0.0
        #: Bytes written since open (the bench reads it).
        self.bytes_sent = 0
        self.dots_width = min(alpha.MAX_DOTS_SIDE, max(panel.width, alpha.DOTS_PIECE_WIDTH))

    # lifecycle ------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Opens the port, lays out the sign's memory and sets its clock."""
        s = self.settings
        try:
            self._port = serial.serial_for_url(
                s.port, baudrate=s.baud, bytesize=s.bytesize, parity=_PARITY[s.parity], stopbits=s.stopbits,
                timeout=s.ack_timeout_s, write_timeout=30)
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            raise SignFault("port_unavailable", f"cannot open {s.port}: {exc}") from None
        # Clear first: whatever another controller or the IR keyboard left in the sign must not show.
        self.send(self._packet(alpha.clear_memory(), what="clear memory"))
        self.send(self._packet(alpha.memory_config(self.panel.height, self.dots_width),
                               what="memory configuration"))
        if s.set_clock:
            now = datetime.now()
            self.send(self._packet(alpha.set_time(now.hour, now.minute), what="set time"))
            self.send(self._packet(alpha.set_date(now.month, now.day, now.year), what="set date"))

    def close(self) -> None:
        """Closes the port (if it is still there)."""
        self._shown = ""
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("closing %s: %s", self.settings.port, exc)

    # showing --------------------------------------------------------------------------------------------

    def show(self, showing: Showing, interrupt: threading.Event) -> None:
        """Writes the page's files; the sign runs the mode while we wait ``hold_ms``.

        The page the sign already holds is not sent again (a 96×16 picture takes ~2 s at 9,600 baud and the
        sign would restart its effect), except every ``REFRESH_S`` so a sign that lost power gets it back.
        """
        packets = self.packets(showing)
        digest = hashlib.sha256(b"".join(p.wire for p in packets)).hexdigest()
        now = time.monotonic()
        if digest != self._shown or now - self._shown_at >= REFRESH_S:
            self._shown = ""
            for pkt in packets:
                self.send(pkt)
            self._shown, self._shown_at = digest, now
        elif self.settings.port.startswith("/") and not os.path.exists(self.settings.port):
            # Nothing to write, but a pulled USB adapter must still be noticed now, not at the next refresh.
            raise SignFault("port_lost", f"{self.settings.port} is gone")
        interrupt.wait(showing.hold_ms / 1000)

    def blank(self) -> None:
        """An empty TEXT file: the sign shows nothing."""
        self._shown = ""
        self.send(self._packet(alpha.write_text(b"", SignMode.STATIC), what="blank"))

    def packets(self, showing: Showing) -> list[alpha.Packet]:
        """Every packet that puts ``showing`` on the sign (DOTS pictures first, then the TEXT that calls them)."""
        page = showing.page
        if self.settings.text == "ascii" and isinstance(page, TextPage):
            body = alpha.coloured_text(page.text, page.colour)
            if len(body) > alpha.TEXT_FILE_BYTES:
                limit = alpha.TEXT_FILE_BYTES
                raise alpha.AlphaError(f"văn bản dài {len(body)} byte, tệp TEXT của bảng giữ {limit} "
                                       f"(text of {len(body)} bytes, the sign's TEXT file holds {limit})")
            return [self._packet(alpha.write_text(body, page.mode), what="text")]
        pictures = self.pictures(showing.rendered)
        out = []
        for label, img in zip(alpha.DOTS_LABELS, pictures, strict=False):
            command, size_end = alpha.write_small_dots(label, img)
            out.append(self._packet(command, split_at=size_end, pause_s=alpha.DOTS_PAUSE_S,
                                    what=f"dots {label.decode()}"))
        labels = list(alpha.DOTS_LABELS[:len(pictures)])
        mode = showing.rendered.mode
        out.append(self._packet(alpha.write_text(alpha.call_pictures(labels), mode), what="text"))
        return out

    def pictures(self, rendered: RenderedPage) -> list[Image.Image]:
        """The DOTS pictures for a rendered page; the sign scrolls or flashes them itself."""
        w, h = self.panel.width, self.panel.height
        if rendered.mode is SignMode.SCROLL_LEFT:
            # Only the text: the sign's "rotate" mode brings it in from the right edge itself.
            text = rendered.text_image()
            pieces = [text.crop((x, 0, min(x + alpha.DOTS_PIECE_WIDTH, text.width), h))
                      for x in range(0, text.width, alpha.DOTS_PIECE_WIDTH)]
        elif rendered.mode is SignMode.SCROLL_UP:
            block = rendered.text_image()
            pieces = []
            for y in range(0, block.height, h):
                piece = Image.new("RGB", (w, h))
                piece.paste(block.crop((0, y, w, min(y + h, block.height))), (0, 0))
                pieces.append(piece)
        else:
            pieces = [rendered.strip]
        if len(pieces) > len(alpha.DOTS_LABELS):
            raise alpha.AlphaError(
                f"trang này cần {len(pieces)} ảnh DOTS, bảng chỉ giữ {len(alpha.DOTS_LABELS)} "
                f"(page needs {len(pieces)} DOTS pictures, the sign holds {len(alpha.DOTS_LABELS)}; split it)")
        return pieces

    # wire -----------------------------------------------------------------------------------------------

    def _packet(self, command: bytes, *, split_at: int | None = None, pause_s: float = 0.0,
                what: str = "") -> alpha.Packet:
        return alpha.packet(command, type_code=self.settings.type_code, address=self.settings.address,
                            split_at=split_at, pause_s=pause_s, what=what)

    def send(self, pkt: alpha.Packet) -> None:
        """Writes one packet (pausing where it asks) and, with ``read_ack``, waits for the sign's answer."""
        port = self._port
        if port is None:
            raise SignFault("not_open", f"{self.settings.port} is not open")
        for attempt in range(NAK_RETRIES + 1):
            try:
                if self.settings.read_ack:
                    port.reset_input_buffer()
                for i, chunk in enumerate(pkt.chunks):
                    if i:
                        time.sleep(pkt.pause_s)
                    port.write(chunk)
                    self.bytes_sent += len(chunk)
                port.flush()
                if not self.settings.read_ack:
                    return
                answer = port.read(1)
            except (serial.SerialException, OSError, termios.error) as exc:
                raise SignFault("port_lost", f"{self.settings.port}: {exc}") from None
            if answer == bytes([alpha.ACK]):
                return
            if not answer:
                raise SignFault("no_answer", f"sign on {self.settings.port} did not acknowledge {pkt.what} "
                                             f"within {self.settings.ack_timeout_s:g} s")
            log.warning("sign on %s refused %s (answer %r, attempt %d)", self.settings.port, pkt.what, answer,
                        attempt + 1)
        raise SignFault("nak", f"sign on {self.settings.port} refused {pkt.what} {NAK_RETRIES + 1} times")
