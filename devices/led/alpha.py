"""Alpha Sign Communications Protocol: the packets, written from the published protocol description.

A packet is ``NUL×5 SOH type-code address STX command … ETX checksum EOT``; the checksum is the 16-bit
sum of the bytes from STX through ETX, sent as four upper-case ASCII hex digits. We send one command
per packet so each one is acknowledged on its own. Commands used:

- ``E$``   memory configuration (with no entries: clear memory);
- ``E `` / ``E;``  set the time of day (HHMM) / the date (MMDDYY);
- ``A``    write a TEXT file: ``ESC position mode`` then the text, which may colour itself (``0x1C``
  colour) or call DOTS pictures (``0x14`` label);
- ``I``    write a SMALL DOTS PICTURE: label, height and width as two hex digits each, then one row per
  line of pixel codes (``0`` off, ``1`` red, ``2`` green, ``3`` amber…), each row ending in CR. Signs
  want a pause of about 100 ms after the size, so a packet is a list of chunks with pauses between.

Vietnamese goes as DOTS pictures drawn by our renderer; :func:`transliterate` gives the ASCII text for
signs that only take text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from devices.led.content import SignColour, SignMode

if TYPE_CHECKING:  # the agent's config reads this module's limits without loading Pillow
    from PIL import Image

NUL: Final = 0x00
SOH: Final = 0x01
STX: Final = 0x02
ETX: Final = 0x03
EOT: Final = 0x04
ACK: Final = 0x06
NAK: Final = 0x15
ESC: Final = 0x1B
CR: Final = 0x0D
CALL_DOTS: Final = 0x14
SELECT_COLOUR: Final = 0x1C

#: Every sign listens to type ``Z`` and address ``00``.
ALL_SIGNS: Final = "Z"
BROADCAST: Final = "00"
#: Pause the protocol asks for after the size of a DOTS picture.
DOTS_PAUSE_S: Final = 0.1
#: Position ``fill``: use the whole display.
POSITION_FILL: Final = b"0"
TEXT_LABEL: Final = b"A"
#: DOTS pictures used for one page (labels ``1``..``8``); the widest one picture may be.
DOTS_LABELS: Final = tuple(str(i).encode() for i in range(1, 9))
MAX_DOTS_SIDE: Final = 255
DOTS_PIECE_WIDTH: Final = 240
TEXT_FILE_BYTES: Final = 1024

MODE_CODES: Final[dict[SignMode, bytes]] = {
    SignMode.STATIC: b"b",  # hold
    SignMode.SCROLL_LEFT: b"a",  # rotate: travels right to left
    SignMode.SCROLL_UP: b"e",  # roll up
    SignMode.FLASH: b"c",  # flash
}

#: Text colours (after 0x1C); signs have no white or blue, so those fall back to what reads best.
TEXT_COLOUR_CODES: Final[dict[SignColour, bytes]] = {
    SignColour.RED: b"1",
    SignColour.GREEN: b"2",
    SignColour.AMBER: b"3",
    SignColour.YELLOW: b"8",
    SignColour.WHITE: b"3",
    SignColour.BLUE: b"2",
}

#: DOTS pixel codes and the LED colour each stands for (tri-colour signs: red, green, amber).
DOTS_CODES: Final[dict[bytes, tuple[int, int, int]]] = {
    b"1": (255, 0, 0),
    b"2": (0, 255, 0),
    b"3": (255, 176, 0),
}
DOTS_OFF: Final = b"0"


class AlphaError(ValueError):
    """Something that cannot be put into an Alpha packet (a picture too big, an address out of range)."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One transmission: ``chunks`` are written in order with ``pause_s`` between them."""

    chunks: tuple[bytes, ...]
    pause_s: float = 0.0
    what: str = ""

    @property
    def wire(self) -> bytes:
        """Every byte of the packet."""
        return b"".join(self.chunks)


def checksum(body: bytes) -> bytes:
    """Four ASCII hex digits of the 16-bit sum of ``body`` (STX through ETX inclusive)."""
    return f"{sum(body) & 0xFFFF:04X}".encode()


def packet(command: bytes, *, type_code: str = ALL_SIGNS, address: str = BROADCAST, split_at: int | None = None,
           pause_s: float = 0.0, what: str = "") -> Packet:
    """Wraps one command (command code and data) in a checksummed packet.

    ``split_at`` cuts the wire bytes after that many bytes of ``command`` so the driver can pause there.
    """
    if len(type_code) != 1 or not type_code.isprintable():
        raise AlphaError(f"type code must be one printable character, not {type_code!r}")
    if len(address) != 2 or any(c not in "0123456789ABCDEFabcdef?" for c in address):
        raise AlphaError(f"address must be two hex digits, not {address!r}")
    head = bytes([NUL] * 5 + [SOH]) + type_code.encode() + address.upper().encode()
    body = bytes([STX]) + command + bytes([ETX])
    tail = checksum(body) + bytes([EOT])
    if split_at is None:
        return Packet((head + body + tail,), what=what)
    cut = 1 + split_at
    return Packet((head + body[:cut], body[cut:] + tail), pause_s=pause_s, what=what)


# commands -----------------------------------------------------------------------------------------------


def clear_memory() -> bytes:
    """``E$`` with no entries: the sign forgets every file."""
    return b"E$"


def memory_config(panel_height: int, dots_width: int, text_bytes: int = TEXT_FILE_BYTES) -> bytes:
    """``E$``: one TEXT file ``A`` and the DOTS pictures ``1``..``8`` sized for the panel (3-colour)."""
    if not 1 <= panel_height <= MAX_DOTS_SIDE or not 1 <= dots_width <= MAX_DOTS_SIDE:
        raise AlphaError(f"DOTS pictures are at most {MAX_DOTS_SIDE}×{MAX_DOTS_SIDE} dots")
    entries = [TEXT_LABEL + b"AU" + f"{text_bytes:04X}".encode() + b"FF00"]
    entries += [label + b"DU" + f"{panel_height:02X}{dots_width:02X}".encode() + b"2000" for label in DOTS_LABELS]
    return b"E$" + b"".join(entries)


def set_time(hour: int, minute: int) -> bytes:
    """``E`` + space: the sign's clock (24 h)."""
    return b"E " + f"{hour:02d}{minute:02d}".encode()


def set_date(month: int, day: int, year: int) -> bytes:
    """``E;``: the sign's date as MMDDYY."""
    return b"E;" + f"{month:02d}{day:02d}{year % 100:02d}".encode()


def write_text(body: bytes, mode: SignMode, label: bytes = TEXT_LABEL, position: bytes = POSITION_FILL) -> bytes:
    """``A``: a TEXT file shown in ``mode``; ``body`` is printable ASCII plus control codes we put in."""
    return b"A" + label + bytes([ESC]) + position + MODE_CODES[mode] + body


def coloured_text(text: str, colour: SignColour) -> bytes:
    """ASCII text (see :func:`transliterate`) in a colour, ready for :func:`write_text`."""
    return bytes([SELECT_COLOUR]) + TEXT_COLOUR_CODES[colour] + transliterate(text).encode("ascii")


def call_pictures(labels: list[bytes]) -> bytes:
    """TEXT file body that shows DOTS pictures one after another."""
    return b"".join(bytes([CALL_DOTS]) + label for label in labels)


def dots_rows(img: Image.Image) -> list[bytes]:
    """The picture as rows of pixel codes: dark stays off, anything lit takes the nearest LED colour."""
    rgb = img.convert("RGB")
    width, height = rgb.size
    pixels = rgb.load()
    assert pixels is not None
    cache: dict[tuple[int, int, int], bytes] = {}
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            px = pixels[x, y]
            assert isinstance(px, tuple)
            key = (int(px[0]), int(px[1]), int(px[2]))
            code = cache.get(key)
            if code is None:
                code = cache[key] = pixel_code(key)
            row += code
        rows.append(bytes(row))
    return rows


def pixel_code(rgb: tuple[int, int, int]) -> bytes:
    """The DOTS code for one pixel: off below half brightness, else the nearest of red / green / amber."""
    if max(rgb) < 128:
        return DOTS_OFF
    return min(DOTS_CODES, key=lambda c: sum((a - b) ** 2 for a, b in zip(DOTS_CODES[c], rgb, strict=True)))


def write_small_dots(label: bytes, img: Image.Image) -> tuple[bytes, int]:
    """``I``: a SMALL DOTS PICTURE; also where the size ends (the driver pauses there)."""
    width, height = img.size
    if width > MAX_DOTS_SIDE or height > MAX_DOTS_SIDE:
        raise AlphaError(f"a DOTS picture is at most {MAX_DOTS_SIDE}×{MAX_DOTS_SIDE}, not {width}×{height}")
    head = b"I" + label + f"{height:02X}{width:02X}".encode()
    return head + b"".join(row + bytes([CR]) for row in dots_rows(img)), len(head)


# text for text-only signs -----------------------------------------------------------------------------

_ASCII_EXTRA: Final = {"đ": "d", "Đ": "D", "‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."}


def transliterate(text: str) -> str:
    """Vietnamese (or any Latin text) without diacritics, printable ASCII only: "Ủy ban" → "Uy ban".

    Characters with no ASCII form become ``?`` so the gap is visible, never silently dropped.
    """
    out = []
    for ch in unicodedata.normalize("NFC", text):
        ch = _ASCII_EXTRA.get(ch, ch)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        for c in base:
            if c.isspace():
                out.append(" ")
            elif 32 <= ord(c) < 127:
                out.append(c)
            else:
                out.append("?")
    return "".join(out)
