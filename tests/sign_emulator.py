"""An Alpha-protocol LED sign, written for the tests from the protocol description (not from our encoder).

It reads one end of a serial line, finds packets (``NUL… SOH type address STX command … ETX checksum
EOT``), checks each checksum (16-bit sum of STX through ETX as four ASCII hex digits), decodes the
commands it knows — memory configuration and clock (``E``), TEXT files (``A``), SMALL DOTS PICTURES
(``I``) — and answers ACK (good) or NAK (bad checksum, unknown command), like a sign with responses on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

NUL, SOH, STX, ETX, EOT, ACK, NAK, ESC, CR = 0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x15, 0x1B, 0x0D
MODE_NAMES = {b"a": "rotate", b"b": "hold", b"c": "flash", b"e": "roll_up", b"f": "roll_down", b"g": "roll_left"}


@dataclass
class TextFile:
    label: str
    position: str
    mode: str
    body: bytes

    @property
    def calls(self) -> list[str]:
        """Labels of the DOTS pictures the text calls (0x14 + label)."""
        return [chr(self.body[i + 1]) for i in range(len(self.body) - 1) if self.body[i] == 0x14]

    @property
    def text(self) -> str:
        """The printable characters (control codes and their argument removed)."""
        out, i = [], 0
        while i < len(self.body):
            b = self.body[i]
            if b in (0x14, 0x1C):  # call picture / select colour: one argument byte
                i += 2
                continue
            if 32 <= b < 127:
                out.append(chr(b))
            i += 1
        return "".join(out)

    @property
    def colour(self) -> str | None:
        """The colour code selected in the text (after 0x1C), if any."""
        i = self.body.find(b"\x1c")
        return chr(self.body[i + 1]) if i >= 0 else None


@dataclass
class Picture:
    label: str
    height: int
    width: int
    rows: list[str]


@dataclass
class SignState:
    packets: int = 0
    rejected: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    texts: dict[str, TextFile] = field(default_factory=dict)
    pictures: dict[str, Picture] = field(default_factory=dict)
    memory: list[bytes] = field(default_factory=list)
    cleared: int = 0
    clock: str | None = None
    date: str | None = None
    addresses: list[str] = field(default_factory=list)


class SignEmulator:
    """Runs in a thread until :meth:`stop`; ``state`` holds what the sign was told."""

    def __init__(self, path: str, *, answer: bool = True, address: str = "00") -> None:
        self.port = serial.Serial(path, timeout=0.05)
        self.port.reset_input_buffer()
        self.answer = answer
        self.address = address
        self.nak_next = 0
        self.state = SignState()
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sign-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.port.close()

    def wait_for(self, check: Callable[[SignState], bool], timeout: float = 10) -> bool:
        """Waits until ``check(state)`` holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not check(self.state):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # reading --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.port.read(4096)
            except (serial.SerialException, OSError):
                return
            if data:
                self._buf += data
                self._drain()

    def _drain(self) -> None:
        while True:
            start = self._buf.find(bytes([SOH]))
            if start < 0:
                self._buf.clear()
                return
            end = self._buf.find(bytes([EOT]), start)
            if end < 0:
                del self._buf[:start]
                return
            raw = bytes(self._buf[start + 1:end])
            del self._buf[:end + 1]
            reply = self._packet(raw)
            if reply is not None and self.answer:
                self.port.write(bytes([reply]))
                self.port.flush()
            with self._cond:
                self._cond.notify_all()

    def _packet(self, raw: bytes) -> int | None:
        self.state.packets += 1
        if len(raw) < 3:
            self.state.rejected.append("short header")
            return NAK
        address = raw[1:3].decode("ascii", "replace")
        self.state.addresses.append(address)
        if address not in ("00", self.address):
            return None  # not for this sign: a real sign stays silent
        rest = raw[3:]
        if not rest.startswith(bytes([STX])):
            self.state.rejected.append("no STX")
            return NAK
        etx = rest.rfind(bytes([ETX]))
        if etx < 0 or len(rest) - etx - 1 != 4:
            self.state.rejected.append("no ETX + checksum")
            return NAK
        body, given = rest[:etx + 1], rest[etx + 1:]
        if f"{sum(body) & 0xFFFF:04X}".encode() != given.upper():
            self.state.rejected.append(f"checksum {given!r} != {sum(body) & 0xFFFF:04X}")
            return NAK
        if self.nak_next > 0:
            self.nak_next -= 1
            self.state.rejected.append("nak requested by the test")
            return NAK
        command = body[1:-1]
        ok = self._command(command)
        return ACK if ok else NAK

    def _command(self, command: bytes) -> bool:
        code, data = command[:1], command[1:]
        self.state.commands.append(code.decode("ascii", "replace"))
        if code == b"E":
            return self._special(data)
        if code == b"A" and len(data) >= 1:
            label, text = chr(data[0]), data[1:]
            position, mode = "", ""
            if text[:1] == bytes([ESC]) and len(text) >= 3:
                position, mode_code = chr(text[1]), text[2:3]
                mode = MODE_NAMES.get(mode_code, mode_code.decode("ascii", "replace"))
                text = text[3:]
            self.state.texts[label] = TextFile(label, position, mode, bytes(text))
            return True
        if code == b"I" and len(data) >= 5:
            label = chr(data[0])
            height, width = int(data[1:3], 16), int(data[3:5], 16)
            rows = data[5:].split(bytes([CR]))
            if rows and rows[-1] == b"":
                rows = rows[:-1]
            if len(rows) != height or any(len(r) != width for r in rows):
                self.state.rejected.append(f"picture {label}: {len(rows)} rows, expected {height}×{width}")
                return False
            self.state.pictures[label] = Picture(label, height, width, [r.decode("ascii") for r in rows])
            return True
        self.state.rejected.append(f"unknown command {code!r}")
        return False

    def _special(self, data: bytes) -> bool:
        if data[:1] == b"$":
            entries = data[1:]
            if not entries:
                self.state.cleared += 1
                self.state.texts.clear()
                self.state.pictures.clear()
            self.state.memory = [entries[i:i + 11] for i in range(0, len(entries), 11)]
            return len(entries) % 11 == 0
        if data[:1] == b" " and len(data) == 5 and data[1:].isdigit():
            self.state.clock = data[1:].decode()
            return True
        if data[:1] == b";" and len(data) == 7 and data[1:].isdigit():
            self.state.date = data[1:].decode()
            return True
        self.state.rejected.append(f"unknown special {data[:1]!r}")
        return False
