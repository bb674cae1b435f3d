"""Sign drivers: one interface (:class:`devices.led.drivers.base.SignDriver`), chosen per sign by config."""

from __future__ import annotations

from devices.led.drivers.base import Showing, SignDriver, SignFault
from devices.led.settings import AlphaDriverSettings, ScreenDriverSettings, SignSettings, VirtualDriverSettings

__all__ = ["Showing", "SignDriver", "SignFault", "build_driver"]


def build_driver(settings: SignSettings) -> SignDriver:
    """The driver a sign's settings name (nothing is opened yet)."""
    drv = settings.driver
    if isinstance(drv, AlphaDriverSettings):
        from devices.led.drivers.alpha_serial import AlphaSerialDriver

        return AlphaSerialDriver(settings.panel, drv)
    if isinstance(drv, ScreenDriverSettings):
        from devices.led.drivers.screen import ScreenDriver

        return ScreenDriver(settings.panel, drv)
    assert isinstance(drv, VirtualDriverSettings)
    from devices.led.drivers.virtual import VirtualDriver

    return VirtualDriver(settings.panel, drv)
