"""What a sign shows: pages of text or an image, with mode, colour, alignment and dwell time.

Shared by the controller (it validates what officers compose and signs it into playlists) and the agent
(it renders and shows it), so both read one model. Text is kept as typed; the renderer normalises it.
Priority and the validity window (``start_at``/``end_at``) belong to the playlist entry that carries the
pages (``devices.protocol.SignPlaylistEntry``); the protocol imports this module, never the reverse.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Largest panel the renderer lays out for (a full-HD screen).
MAX_PANEL: Final = (1920, 1080)
MAX_LINES: Final = 20
MAX_LINE_CHARS: Final = 500
MAX_PAGES: Final = 50
#: Longest a page may stay (one hour): a sign that must hold something longer gets a longer item.
MAX_DWELL_MS: Final = 3_600_000

_STRICT = ConfigDict(extra="forbid", frozen=True)
#: Same pattern as ``devices.protocol.Sha256Hex`` (kept here so this module needs no protocol import).
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class SignMode(StrEnum):
    """How a page appears: held still, scrolled in from the right or from below, or flashing."""

    STATIC = "static"
    SCROLL_LEFT = "scroll_left"
    SCROLL_UP = "scroll_up"
    FLASH = "flash"


class Align(StrEnum):
    """Horizontal alignment of each line of a static or flashing page."""

    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


class SignColour(StrEnum):
    """Colours every LED sign family has; full-colour screens take any of them too."""

    RED = "red"
    GREEN = "green"
    AMBER = "amber"
    YELLOW = "yellow"
    WHITE = "white"
    BLUE = "blue"


#: What each colour looks like on a screen and in previews.
COLOUR_RGB: Final[dict[SignColour, tuple[int, int, int]]] = {
    SignColour.RED: (255, 0, 0),
    SignColour.GREEN: (0, 255, 0),
    SignColour.AMBER: (255, 176, 0),
    SignColour.YELLOW: (255, 255, 0),
    SignColour.WHITE: (255, 255, 255),
    SignColour.BLUE: (0, 96, 255),
}

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def clean_line(text: str) -> str:
    """One line as it will be drawn: NFC (decomposed Vietnamese input composes), no control characters."""
    return _CONTROL_RE.sub("", unicodedata.normalize("NFC", text)).strip()


#: A character :func:`clean_line` keeps and does not strip: a line holding one has something to show.
_SHOWN_PATTERN: Final = r"[^\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]"


def _kind_required(schema: dict[str, Any]) -> None:
    # A page in a list is told apart by ``kind`` (the discriminator), so the JSON schema requires it even
    # though a lone page defaults it.
    schema["required"] = ["kind", *schema.get("required", [])]


#: A page's model: strict, and ``kind`` required in its JSON schema.
_PAGE = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_kind_required)


class TextPage(BaseModel):
    """A page of one or more lines of text."""

    model_config = _PAGE

    kind: Literal["text"] = "text"
    lines: list[Annotated[str, Field(max_length=MAX_LINE_CHARS)]] = Field(
        min_length=1, max_length=MAX_LINES, json_schema_extra={"contains": {"pattern": _SHOWN_PATTERN}})
    mode: SignMode = SignMode.STATIC
    colour: SignColour = SignColour.AMBER
    align: Align = Align.CENTER
    dwell_ms: int = Field(default=8000, ge=500, le=MAX_DWELL_MS)

    @field_validator("lines")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        cleaned = [clean_line(line) for line in value]
        if not any(cleaned):
            raise ValueError("a text page needs at least one line with something to show")
        return cleaned

    @property
    def text(self) -> str:
        """The page's lines joined by spaces (what a one-line board or a transliteration shows)."""
        return " ".join(line for line in self.lines if line)


class ImagePage(BaseModel):
    """A PNG or JPEG stored on the controller (``/media/{sha256}``), scaled to fit the panel."""

    model_config = _PAGE

    kind: Literal["image"] = "image"
    sha256: Sha256Hex
    size: int = Field(gt=0, le=20 * 1024 * 1024)
    mime: Literal["image/png", "image/jpeg"]
    dwell_ms: int = Field(default=8000, ge=500, le=MAX_DWELL_MS)


SignPage = Annotated[TextPage | ImagePage, Field(discriminator="kind")]


class Panel(BaseModel):
    """A sign's size in pixels (LED dots or screen pixels)."""

    model_config = _STRICT

    width: int = Field(ge=8, le=MAX_PANEL[0])
    height: int = Field(ge=7, le=MAX_PANEL[1])

    @classmethod
    def parse(cls, text: str) -> Panel:
        """``"96x16"`` → Panel(96, 16); raises ValueError with a readable message otherwise."""
        match = re.fullmatch(r"\s*(\d{1,4})\s*[xX×]\s*(\d{1,4})\s*", text)
        if not match:
            raise ValueError(f"panel size must look like 96x16, not {text!r}")
        return cls(width=int(match.group(1)), height=int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"
