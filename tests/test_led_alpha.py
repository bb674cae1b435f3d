"""The Alpha driver through a real serial line (a socat pty pair) to the sign emulator."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devices.led import alpha
from devices.led.content import Panel, SignColour, SignMode, TextPage
from devices.led.drivers.alpha_serial import AlphaSerialDriver
from devices.led.drivers.base import Showing, SignFault
from devices.led.render import Renderer
from devices.led.settings import AlphaDriverSettings
from tests.sign_emulator import SignEmulator

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed (apt install socat)")


@dataclass
class SerialPair:
    """Two linked ptys: the driver opens ``a``, the emulator ``b``."""

    a: Path
    b: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_pair(directory: Path) -> SerialPair:
    """socat with two pty ends linked into ``directory``; waits (≤ 5 s) until both exist."""
    directory.mkdir(parents=True, exist_ok=True)
    a, b = directory / "ttyA", directory / "ttyB"
    proc = subprocess.Popen(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pair = SerialPair(a, b, proc)
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()):
        if time.monotonic() > deadline or proc.poll() is not None:
            pair.stop()
            raise RuntimeError("socat did not create the pty pair")
        time.sleep(0.02)
    return pair


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[SerialPair]:
    p = start_pair(tmp_path / "serial")
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def sign(pair: SerialPair) -> Iterator[SignEmulator]:
    emu = SignEmulator(str(pair.b))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def settings(port: Path | str, **kw: object) -> AlphaDriverSettings:
    base: dict[str, object] = {"kind": "alpha", "port": str(port), "read_ack": True, "ack_timeout_s": 2.0}
    return AlphaDriverSettings.model_validate(base | kw)


def expected_rows(img: alpha.Image.Image, code: str) -> list[str]:
    """What the sign must hold for a one-colour rendering: lit pixels = ``code``, dark = 0."""
    rgb = img.convert("RGB")
    return ["".join(code if max(rgb.getpixel((x, y))) >= 128 else "0"  # type: ignore[arg-type]
                    for x in range(rgb.width)) for y in range(rgb.height)]


def show(driver: AlphaSerialDriver, page: TextPage, renderer: Renderer) -> None:
    rendered = renderer.render_text(page, driver.panel)
    driver.show(Showing(page, rendered, hold_ms=0), threading.Event())


def test_open_configures_memory_and_clock(pair: SerialPair, sign: SignEmulator) -> None:
    driver = AlphaSerialDriver(Panel(width=96, height=16), settings(pair.a))
    driver.open()
    try:
        assert sign.wait_for(lambda s: s.date is not None)
        assert sign.state.rejected == []
        assert sign.state.cleared == 1
        assert sign.state.clock is not None and len(sign.state.clock) == 4
        labels = [entry[:2] for entry in sign.state.memory]
        assert labels[0] == b"AA"  # TEXT file A
        assert all(entry[1:2] == b"D" and entry[3:7] == b"10F0" for entry in sign.state.memory[1:])  # 16×240 dots
    finally:
        driver.close()


def test_vietnamese_page_arrives_as_dots_equal_to_the_renderer(pair: SerialPair, sign: SignEmulator,
                                                               renderer: Renderer) -> None:
    driver = AlphaSerialDriver(Panel(width=96, height=16), settings(pair.a))
    driver.open()
    try:
        page = TextPage(lines=["Ủy ban nhân dân"], colour=SignColour.AMBER)
        show(driver, page, renderer)
        assert sign.wait_for(lambda s: "A" in s.texts)
        assert sign.state.rejected == []
        text = sign.state.texts["A"]
        assert text.mode == "hold" and text.position == "0"
        assert text.calls == ["1"]
        picture = sign.state.pictures["1"]
        want = renderer.render_text(page, Panel(width=96, height=16)).strip
        assert (picture.height, picture.width) == (16, 96)
        assert picture.rows == expected_rows(want, "3")  # amber
        assert any("3" in row for row in picture.rows[:4])  # the diacritic above Ủ is there
    finally:
        driver.close()


def test_scrolling_page_is_the_text_strip_in_rotate_mode(pair: SerialPair, sign: SignEmulator,
                                                         renderer: Renderer) -> None:
    panel = Panel(width=96, height=16)
    driver = AlphaSerialDriver(panel, settings(pair.a))
    driver.open()
    try:
        page = TextPage(lines=["Thông báo tiêm chủng mở rộng đợt 2"], mode=SignMode.SCROLL_LEFT,
                        colour=SignColour.RED)
        show(driver, page, renderer)
        assert sign.wait_for(lambda s: "A" in s.texts)
        text = sign.state.texts["A"]
        assert text.mode == "rotate"
        assert text.calls == [str(i + 1) for i in range(len(text.calls))] and len(text.calls) >= 2
        joined = ["".join(sign.state.pictures[label].rows[y] for label in text.calls) for y in range(16)]
        want = renderer.render_text(page, panel).text_image()
        assert joined == expected_rows(want, "1")  # red
    finally:
        driver.close()


def test_ascii_option_sends_transliterated_text(pair: SerialPair, sign: SignEmulator, renderer: Renderer) -> None:
    driver = AlphaSerialDriver(Panel(width=160, height=32), settings(pair.a, text="ascii"))
    driver.open()
    try:
        show(driver, TextPage(lines=["Thông báo", "tiêm chủng"], mode=SignMode.FLASH, colour=SignColour.GREEN),
             renderer)
        assert sign.wait_for(lambda s: "A" in s.texts)
        text = sign.state.texts["A"]
        assert (text.mode, text.text, text.colour) == ("flash", "Thong bao tiem chung", "2")
        assert sign.state.pictures == {}
    finally:
        driver.close()


def test_nak_is_answered_by_sending_again(pair: SerialPair, sign: SignEmulator, renderer: Renderer) -> None:
    driver = AlphaSerialDriver(Panel(width=96, height=16), settings(pair.a, set_clock=False))
    driver.open()
    try:
        sign.nak_next = 1
        show(driver, TextPage(lines=["Họp tổ"]), renderer)
        assert sign.wait_for(lambda s: "A" in s.texts)
        assert sign.state.rejected == ["nak requested by the test"]
        assert sign.state.packets == 5  # clear, layout, the refused picture, the picture again, the text
        assert sign.state.commands == ["E", "E", "I", "A"]
    finally:
        driver.close()


def test_bad_checksum_is_refused_by_the_emulator(pair: SerialPair, sign: SignEmulator) -> None:
    good = alpha.packet(alpha.set_time(7, 30)).wire
    bad = good[:-5] + b"0000" + good[-1:]
    with open(pair.a, "r+b", buffering=0) as port:
        port.write(bad)
        assert sign.wait_for(lambda s: s.packets == 1)
        assert sign.state.clock is None and sign.state.rejected[0].startswith("checksum")
        port.write(good)
        assert sign.wait_for(lambda s: s.clock == "0730")


def test_sign_that_does_not_answer_is_a_fault(pair: SerialPair, sign: SignEmulator) -> None:
    sign.answer = False
    driver = AlphaSerialDriver(Panel(width=96, height=16), settings(pair.a, ack_timeout_s=0.3))
    with pytest.raises(SignFault) as caught:
        driver.open()
    driver.close()
    assert caught.value.code == "no_answer"


def test_missing_port_is_a_fault(tmp_path: Path) -> None:
    driver = AlphaSerialDriver(Panel(width=96, height=16), settings(tmp_path / "ttyUSB9"))
    with pytest.raises(SignFault) as caught:
        driver.open()
    assert caught.value.code == "port_unavailable"


def test_port_that_vanishes_is_a_fault(pair: SerialPair, sign: SignEmulator, renderer: Renderer) -> None:
    driver = AlphaSerialDriver(Panel(width=96, height=16), settings(pair.a, read_ack=False))
    driver.open()
    try:
        pair.stop()  # the USB adapter is pulled
        with pytest.raises(SignFault) as caught:
            for _ in range(20):
                show(driver, TextPage(lines=["Ủy ban"]), renderer)
                time.sleep(0.05)
        assert caught.value.code == "port_lost"
    finally:
        driver.close()


def test_without_ack_reading_the_packets_still_arrive(pair: SerialPair, sign: SignEmulator,
                                                      renderer: Renderer) -> None:
    driver = AlphaSerialDriver(Panel(width=64, height=16), settings(pair.a, read_ack=False))
    driver.open()
    try:
        show(driver, TextPage(lines=["Đ"], mode=SignMode.FLASH), renderer)
        assert sign.wait_for(lambda s: "A" in s.texts)
        assert sign.state.texts["A"].mode == "flash"
        assert sign.state.pictures["1"].width == 64
        assert driver.bytes_sent > 64 * 16
    finally:
        driver.close()


def test_pages_the_sign_cannot_hold_are_refused_before_sending(renderer: Renderer) -> None:
    panel = Panel(width=96, height=16)
    dots = AlphaSerialDriver(panel, settings("loop://"))
    long_scroll = TextPage(lines=["Thông báo tiêm chủng mở rộng cho trẻ em dưới năm tuổi " * 8],
                           mode=SignMode.SCROLL_LEFT)
    with pytest.raises(alpha.AlphaError, match="DOTS"):
        dots.packets(Showing(long_scroll, renderer.render_text(long_scroll, panel), 0))
    ascii_driver = AlphaSerialDriver(Panel(width=192, height=96), settings("loop://", text="ascii"))
    long_text = TextPage(lines=["Ủy ban nhân dân phường " * 20] * 3, mode=SignMode.SCROLL_UP)
    with pytest.raises(alpha.AlphaError, match="TEXT"):
        anything = renderer.render_text(TextPage(lines=["x"]), Panel(width=192, height=96))
        ascii_driver.packets(Showing(long_text, anything, 0))


def test_the_page_the_sign_holds_is_not_sent_again(pair: SerialPair, sign: SignEmulator,
                                                    renderer: Renderer) -> None:
    driver = AlphaSerialDriver(Panel(width=96, height=16), settings(pair.a, set_clock=False))
    driver.open()
    try:
        page = TextPage(lines=["Ủy ban"])
        show(driver, page, renderer)
        sent = driver.bytes_sent
        show(driver, page, renderer)
        assert driver.bytes_sent == sent  # same page: nothing on the wire (and the sign's effect not restarted)
        show(driver, TextPage(lines=["Họp"]), renderer)
        assert driver.bytes_sent > sent
        assert sign.wait_for(lambda s: s.packets == 6)  # clear, layout, then picture + text twice
    finally:
        driver.close()
