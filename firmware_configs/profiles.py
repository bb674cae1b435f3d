"""Board profiles: what a kind of Raspberry Pi installation has wired to it.

A profile is a YAML file in this folder (``pi4-usb.yaml`` …) validated by :class:`BoardProfile`
(``extra="forbid"``: a misspelt key is an error, not a silently ignored setting). The controller
hands a device's profile to it at enrolment; the agent's config (audio output, LED sign) and the
first-boot bundle are rendered from it. Errors name the field: ``amplifier.relay_gpio: …``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devices.geo import Location
from devices.protocol import ID_PATTERN

PROFILE_DIR = Path(__file__).resolve().parent

#: BCM numbers of the GPIO lines on the 40-pin header of every Pi from the 3 on (0 and 1 are the HAT EEPROM bus).
HEADER_GPIO = frozenset(range(2, 28))
#: BCM lines an I²S DAC / HiFiBerry board takes (PCM clock, frame, data in, data out).
I2S_GPIO = frozenset({18, 19, 20, 21})
#: BCM lines of the primary UART (``/dev/serial0``).
UART_GPIO = frozenset({14, 15})

_DEVICE_PATH = re.compile(r"^/dev/[A-Za-z0-9_./-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioSection(_Strict):
    """Where the agent's speaker output goes."""

    #: usb: a USB sound card; i2s: a DAC on the I²S pins; hat: an amplifier HAT (HiFiBerry AMP…); analog: the jack.
    kind: Literal["usb", "i2s", "hat", "analog"]
    #: The ALSA device the player opens (``aplay -L`` on the Pi lists them).
    alsa_device: str = Field(min_length=1, max_length=200)
    #: The ``dtoverlay=`` line the board needs in config.txt (I²S DACs and HATs), if any.
    dtoverlay: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_,=-]*$")
    #: The ALSA mixer control the agent's volume acts on, if the card has one.
    mixer_control: str | None = None

    @model_validator(mode="after")
    def _overlay_for_i2s(self) -> AudioSection:
        if self.kind in ("i2s", "hat") and self.dtoverlay is None:
            raise ValueError(f"an {self.kind} audio board needs its dtoverlay (e.g. hifiberry-dac)")
        return self


class AmplifierSection(_Strict):
    """A relay that powers the amplifier only while something plays."""

    #: BCM number of the GPIO line driving the relay (2–27 on the 40-pin header).
    relay_gpio: int
    #: True: the relay closes when the line is high.
    active_high: bool = True
    #: How long the amplifier needs after power-on before sound may start.
    warmup_ms: int = Field(default=1500, ge=0, le=30_000)
    #: Power stays on this long after the last play, so back-to-back plays do not click the relay.
    hold_s: int = Field(default=30, ge=0, le=3600)

    @field_validator("relay_gpio")
    @classmethod
    def _header_pin(cls, value: int) -> int:
        if value not in HEADER_GPIO:
            raise ValueError(f"GPIO {value} is not a BCM line on the 40-pin header (use 2–27)")
        return value


class SignPortSection(_Strict):
    """A serial LED sign wired to the Pi (the agent's ``[[signs]]`` entry is rendered from it)."""

    port: str = Field(description="/dev/ttyUSB0 (RS-485 adapter) or /dev/serial0 (GPIO UART)")
    protocol: Literal["alpha"] = "alpha"
    baud: int = Field(default=9600, ge=300, le=921_600)
    width: int = Field(default=96, ge=8, le=255)
    height: int = Field(default=16, ge=7, le=255)

    @field_validator("port")
    @classmethod
    def _device_path(cls, value: str) -> str:
        if not _DEVICE_PATH.match(value):
            raise ValueError(f"{value!r} is not a device path such as /dev/ttyUSB0")
        return value


class NetworkSection(_Strict):
    """How the Pi reaches the controller. Secrets (Wi-Fi passphrase, SIM PIN) never live in a profile."""

    kind: Literal["ethernet", "wifi", "modem"]
    interface: str = Field(pattern=r"^[a-z][a-z0-9]{1,14}$")
    #: 4G modem: the access point name of the SIM's operator.
    apn: str | None = Field(default=None, min_length=1, max_length=100)
    #: Wi-Fi: the regulatory country (VN).
    wifi_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _kind_fields(self) -> NetworkSection:
        if self.kind == "modem" and self.apn is None:
            raise ValueError("a modem network needs its apn")
        if self.kind != "modem" and self.apn is not None:
            raise ValueError(f"apn is only for a modem network, not {self.kind}")
        if self.kind != "wifi" and self.wifi_country is not None:
            raise ValueError(f"wifi_country is only for a wifi network, not {self.kind}")
        return self


class CamerasSection(_Strict):
    """IP cameras on the Pi's LAN."""

    #: The private subnet the cameras are on (scanned and probed by the agent).
    subnet: str

    @field_validator("subnet")
    @classmethod
    def _private_subnet(cls, value: str) -> str:
        net = ipaddress.IPv4Network(value, strict=True)  # ValueError names the bad subnet
        if not net.is_private:
            raise ValueError(f"{value} is not a private subnet")
        if net.prefixlen < 16:
            raise ValueError(f"{value} is too wide to scan (use /16 or narrower)")
        return value


class BoardProfile(_Strict):
    """One kind of installation: the board and what is wired to it."""

    name: Annotated[str, Field(pattern=ID_PATTERN)]
    title: str = Field(min_length=1, max_length=200)
    board: Literal["pi3", "pi4", "pi5", "pi-zero-2w"]
    audio: AudioSection
    amplifier: AmplifierSection | None = None
    sign: SignPortSection | None = None
    network: NetworkSection
    cameras: CamerasSection | None = None
    #: Where the Pis of this installation stand (``{lat: 10.77, lon: 106.70}``, WGS 84 degrees): the controller
    #: places a device of this profile there on the map until it is given a location of its own.
    location: Location | None = None

    @model_validator(mode="after")
    def _pins_free(self) -> BoardProfile:
        # Two functions on one pin is a wiring mistake that fails silently on the pole; refuse it here.
        if self.amplifier is not None:
            pin = self.amplifier.relay_gpio
            if self.audio.kind in ("i2s", "hat") and pin in I2S_GPIO:
                raise ValueError(f"amplifier.relay_gpio {pin} is an I²S pin the {self.audio.kind} audio board uses")
            if self.sign is not None and self.sign.port in ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0") \
                    and pin in UART_GPIO:
                raise ValueError(f"amplifier.relay_gpio {pin} is a UART pin the sign on {self.sign.port} uses")
        return self


class ProfileError(ValueError):
    """A profile is missing, unreadable or invalid; the message names the file and the field."""


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(profile)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_profile(data: Any, source: str = "profile") -> BoardProfile:
    """Validates an already-parsed profile (a dict); raises :class:`ProfileError` naming the field."""
    try:
        return BoardProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{source}: {_describe(exc)}") from None


def load_profile(path: Path) -> BoardProfile:
    """Reads and validates one profile file; its ``name`` must match the file name."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path} is not valid YAML: {exc}") from None
    profile = parse_profile(data, str(path))
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name: {profile.name!r} does not match the file name {path.stem!r}")
    return profile


def profile_paths(directory: Path = PROFILE_DIR) -> list[Path]:
    """Every profile file in ``directory``, sorted."""
    return sorted(directory.glob("*.yaml"))


def list_profiles(directory: Path = PROFILE_DIR) -> list[BoardProfile]:
    """Every profile in ``directory``, validated (the first bad one raises)."""
    return [load_profile(p) for p in profile_paths(directory)]


def get_profile(name: str, directory: Path = PROFILE_DIR) -> BoardProfile:
    """The profile called ``name``; :class:`ProfileError` if there is none."""
    if not re.fullmatch(ID_PATTERN, name):
        raise ProfileError(f"{name!r} is not a profile name")
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in profile_paths(directory)) or "none"
        raise ProfileError(f"no board profile {name!r} (known: {known})")
    return load_profile(path)
