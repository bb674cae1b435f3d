"""The amplifier's power relay on a GPIO pin: on (and warmed up) before sound, off after an idle delay.

Two drivers write the pin: the Linux GPIO character device through libgpiod's Python binding (``gpiod``,
Debian ``python3-libgpiod``/PyPI ``gpiod`` 2.x) when it is importable, else the sysfs interface
(``/sys/class/gpio``: ``export``, ``gpioN/direction``, ``gpioN/value``). The sysfs root is configurable
so tests point it at a temp dir laid out the same way. Pin writes block (a file write, an ioctl), so
they run in the agent's executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

InThread = Callable[[Callable[[], None]], Awaitable[None]]


class AmplifierSection(BaseModel):
    """``[amplifier]`` in agent.toml: the relay that powers the amplifier."""

    model_config = ConfigDict(extra="forbid")

    #: GPIO line number (BCM numbering on a Raspberry Pi).
    gpio_pin: int = Field(ge=0, le=511)
    #: The relay closes on a low level (many relay boards).
    active_low: bool = False
    #: How long the amplifier needs after power-on before sound (no pop, no clipped first word).
    warm_up_ms: int = Field(default=1500, ge=0, le=30_000)
    #: Switch off after this long without sound (saves power, stops hum at night).
    idle_off_s: float = Field(default=60, ge=0.1, le=24 * 3600)
    driver: Literal["auto", "gpiod", "sysfs"] = "auto"
    #: sysfs GPIO root; tests point this at a temp dir that behaves like sysfs.
    gpio_root: Path = Path("/sys/class/gpio")
    #: Character device for the gpiod driver.
    gpio_chip: Path = Path("/dev/gpiochip0")


def section_from_profile(relay_gpio: int, active_high: bool, warmup_ms: int, hold_s: float) -> AmplifierSection:
    """The agent's ``[amplifier]`` for a board profile's ``amplifier`` (firmware_configs/profiles.py names differ)."""
    return AmplifierSection(gpio_pin=relay_gpio, active_low=not active_high, warm_up_ms=warmup_ms,
                            idle_off_s=max(hold_s, 0.1))


class GpioError(RuntimeError):
    """The pin could not be set up or written."""


class AmplifierBusy(RuntimeError):
    """Switching off was refused: a play is sounding."""


class RelayDriver(ABC):
    """Drives one output line."""

    @abstractmethod
    def write(self, level: bool) -> None:
        """Sets the line high (True) or low (False). Blocks."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases the line."""


class SysfsRelay(RelayDriver):
    """``/sys/class/gpio``: export the pin once, make it an output, then write ``0``/``1`` to ``value``."""

    def __init__(self, root: Path, pin: int) -> None:
        self._root = root
        self._pin = pin
        self._ready = False

    @property
    def pin_dir(self) -> Path:
        """``{root}/gpio{pin}``."""
        return self._root / f"gpio{self._pin}"

    def _setup(self) -> None:
        try:
            if not self.pin_dir.exists():
                (self._root / "export").write_text(f"{self._pin}\n")
                # udev changes the new files' group a moment after export; wait for them.
                deadline = time.monotonic() + 2
                while not (self.pin_dir / "value").exists():
                    if time.monotonic() > deadline:
                        raise GpioError(f"{self.pin_dir} did not appear after export")
                    time.sleep(0.05)
            (self.pin_dir / "direction").write_text("out\n")
        except OSError as exc:
            raise GpioError(f"cannot set up GPIO {self._pin} under {self._root}: {exc}") from exc
        self._ready = True

    def write(self, level: bool) -> None:
        if not self._ready:
            self._setup()
        try:
            (self.pin_dir / "value").write_text("1\n" if level else "0\n")
        except OSError as exc:
            raise GpioError(f"cannot write GPIO {self._pin}: {exc}") from exc


class GpiodRelay(RelayDriver):
    """libgpiod 2.x: request the line as an output on the chip's character device."""

    def __init__(self, gpiod: Any, chip: Path, pin: int) -> None:
        self._gpiod = gpiod
        self._pin = pin
        try:
            settings = gpiod.LineSettings(direction=gpiod.line.Direction.OUTPUT,
                                          output_value=gpiod.line.Value.INACTIVE)
            self._request = gpiod.request_lines(str(chip), consumer="loaphuong-amp", config={pin: settings})
        except (OSError, ValueError) as exc:
            raise GpioError(f"cannot request GPIO line {pin} on {chip}: {exc}") from exc

    def write(self, level: bool) -> None:
        value = self._gpiod.line.Value.ACTIVE if level else self._gpiod.line.Value.INACTIVE
        try:
            self._request.set_value(self._pin, value)
        except OSError as exc:
            raise GpioError(f"cannot write GPIO line {self._pin}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._request.release()


def make_driver(cfg: AmplifierSection) -> RelayDriver:
    """The driver the section asks for; ``auto`` prefers gpiod when the module and the chip exist."""
    if cfg.driver in ("auto", "gpiod"):
        try:
            gpiod = importlib.import_module("gpiod")
        except ImportError:
            if cfg.driver == "gpiod":
                raise GpioError("driver = \"gpiod\" but the gpiod module is not installed") from None
        else:
            if cfg.driver == "gpiod" or (cfg.gpio_chip.exists() and hasattr(gpiod, "request_lines")):
                return GpiodRelay(gpiod, cfg.gpio_chip, cfg.gpio_pin)
    return SysfsRelay(cfg.gpio_root, cfg.gpio_pin)


class Amplifier:
    """Switches the relay around plays; every pin write runs through ``in_thread``.

    ``acquire`` (a play is about to sound) switches on and waits out what is left of the warm-up;
    ``release`` (it ended) starts the idle timer; ``prewarm`` switches on early so a scheduled play
    starts on time. ``hold`` (a technician's ``ops.amp``) keeps it on until released by hand.
    """

    def __init__(self, cfg: AmplifierSection, in_thread: InThread, driver: RelayDriver | None = None) -> None:
        self.cfg = cfg
        self._driver = driver or make_driver(cfg)
        self._in_thread = in_thread
        self._on = False
        self._on_since = 0.0
        self._users = 0
        self._held = False
        self._idle: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def is_on(self) -> bool:
        """Whether the relay is closed (as last written)."""
        return self._on

    @property
    def sounding(self) -> bool:
        """Whether a play holds the amplifier."""
        return self._users > 0

    def update(self, cfg: AmplifierSection) -> None:
        """Takes new timings from a reloaded config (the pin and driver need a restart)."""
        self.cfg = self.cfg.model_copy(update={"warm_up_ms": cfg.warm_up_ms, "idle_off_s": cfg.idle_off_s})

    async def _switch(self, on: bool) -> None:
        async with self._lock:
            if self._on == on:
                return
            level = on != self.cfg.active_low
            await self._in_thread(lambda: self._driver.write(level))
            self._on = on
            self._on_since = time.monotonic()
            log.info("amplifier %s (GPIO %d)", "on" if on else "off", self.cfg.gpio_pin)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _arm_idle(self, extra_s: float = 0.0) -> None:
        self._cancel_idle()
        if self._users == 0 and not self._held:
            self._idle = asyncio.create_task(self._off_when_idle(self.cfg.idle_off_s + extra_s), name="amp-idle")

    async def _off_when_idle(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if self._users == 0 and not self._held:
            try:
                await self._switch(False)
            except GpioError as exc:
                log.error("amplifier: %s", exc)

    async def prewarm(self) -> None:
        """Switches on ahead of a scheduled start; off again after the idle delay if nothing plays."""
        await self._switch(True)
        if self._users == 0:
            # The play takes the amplifier one warm-up from now; count the idle delay from then, or a
            # short idle delay would switch it off before the start and the warm-up would begin again.
            self._arm_idle(self.cfg.warm_up_ms / 1000 + 1.0)

    async def acquire(self) -> None:
        """A play is about to sound: on, and warmed up, before returning. Raises GpioError."""
        self._users += 1
        self._cancel_idle()
        try:
            await self._switch(True)
        except GpioError:
            self._users -= 1
            raise
        remaining = self.cfg.warm_up_ms / 1000 - (time.monotonic() - self._on_since)
        if remaining > 0:
            await asyncio.sleep(remaining)

    def release(self) -> None:
        """A play ended; the idle timer starts when the last one has."""
        self._users = max(0, self._users - 1)
        self._arm_idle()

    async def hold(self, on: bool) -> None:
        """A technician switches the relay: on stays on until switched off; off is refused while sounding."""
        if on:
            self._held = True
            self._cancel_idle()
            await self._switch(True)
            return
        if self._users:
            raise AmplifierBusy("a play is sounding; stop it first")
        self._held = False
        self._cancel_idle()
        await self._switch(False)

    async def close(self) -> None:
        """Switches off and releases the line (the agent is stopping)."""
        self._cancel_idle()
        with contextlib.suppress(GpioError):
            await self._switch(False)
        self._driver.close()
