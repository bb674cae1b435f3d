"""How an agent's config describes each sign (the ``[[signs]]`` tables), validated strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.led.alpha import MAX_DOTS_SIDE
from devices.led.content import MAX_PANEL, Panel, SignColour, SignMode
from devices.protocol import ID_PATTERN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlphaDriverSettings(_Strict):
    """A serial sign speaking the Alpha protocol (RS-232, or RS-485 through an adapter)."""

    kind: Literal["alpha"]
    port: str = Field(min_length=1, description="/dev/ttyUSB0, or a pyserial URL such as loop://")
    baud: int = Field(default=9600, ge=300, le=921_600)
    bytesize: Literal[7, 8] = 7
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    type_code: str = Field(default="Z", min_length=1, max_length=1)
    address: str = Field(default="00", pattern=r"^[0-9A-Fa-f]{2}$")
    #: dots: Vietnamese drawn by our renderer as DOTS pictures; ascii: transliterated TEXT for text-only signs.
    text: Literal["dots", "ascii"] = "dots"
    #: Read the sign's ACK/NAK after each packet (needs a receive wire; RS-485 one-way links cannot).
    read_ack: bool = False
    ack_timeout_s: float = Field(default=2.0, gt=0, le=30)
    #: Set the sign's clock and date when the port opens.
    set_clock: bool = True


class ScreenDriverSettings(_Strict):
    """An HDMI / framebuffer screen driven through pygame (install the ``screen`` extra)."""

    kind: Literal["screen"]
    fullscreen: bool = True


class VirtualDriverSettings(_Strict):
    """Writes what it would show as PNG files (demo, previews, tests)."""

    kind: Literal["virtual"]
    directory: Path
    #: Frames of one page written at most (a scroll has many); the rest are skipped, the log says how many.
    max_frames: int = Field(default=100, ge=1, le=100_000)


DriverSettings = Annotated[AlphaDriverSettings | ScreenDriverSettings | VirtualDriverSettings,
                           Field(discriminator="kind")]


class SignSettings(_Strict):
    """One sign on this agent."""

    name: str = Field(pattern=ID_PATTERN)
    width: int = Field(ge=8, le=MAX_PANEL[0])
    height: int = Field(ge=7, le=MAX_PANEL[1])
    driver: DriverSettings
    #: While an announcement plays on this agent's speaker, show its text (then go back to the playlist).
    show_announcements: bool = True
    announcement_mode: SignMode = SignMode.SCROLL_LEFT
    announcement_colour: SignColour = SignColour.AMBER
    #: Anti-aliased text; default: only on panels at least 100 px tall (screens).
    smooth: bool | None = None

    @property
    def panel(self) -> Panel:
        """The sign's size."""
        return Panel(width=self.width, height=self.height)

    @model_validator(mode="after")
    def _alpha_size(self) -> SignSettings:
        if isinstance(self.driver, AlphaDriverSettings) and (self.width > MAX_DOTS_SIDE or self.height > MAX_DOTS_SIDE):
            raise ValueError(f"an Alpha sign's DOTS pictures are at most {MAX_DOTS_SIDE}×{MAX_DOTS_SIDE}")
        return self
