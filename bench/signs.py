"""LED sign figures: render time per page, and serial bytes / time per page on an Alpha sign.

Render: a two-line Vietnamese page (static) and a scrolling page at 192×96 and 1920×1080 through our
renderer (layout search + drawing), against the raw tool in the same run — one Pillow ``ImageDraw.text``
call with the same font at the size our layout chose, onto an image of the same size (no layout, no
coverage check). Best and median of ``--repeat`` runs; also the size of what a scroll keeps in memory.

Serial: the packets our Alpha driver sends for one 96×16 page as a DOTS picture (what makes Vietnamese
diacritics show) and, for comparison, as transliterated ASCII text; the time each takes at 9,600 baud
with the Alpha default framing 7E1 (10 bits per byte) plus the 100 ms pauses the protocol asks for after
a DOTS picture's size. Then the same packets really go through a socat pty pair to the sign emulator
(which checks every checksum) to prove the byte counts; a pty ignores the baud rate, so that wall time is
not a 9,600-baud figure.

Run from the repo: ``.venv/bin/python bench/signs.py`` (``--repeat 20``). Exit code 0 when the report
was printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.led.content import Panel, SignMode, TextPage
from devices.led.drivers.alpha_serial import AlphaSerialDriver
from devices.led.drivers.base import Showing
from devices.led.render import Renderer
from devices.led.settings import AlphaDriverSettings

LINES = ["Ủy ban nhân dân phường Bến Nghé", "Thông báo tiêm chủng mở rộng"]
BITS_PER_BYTE_7E1 = 10


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall time in ms."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return min(runs), statistics.median(runs)


def bench_render(renderer: Renderer, repeat: int) -> None:
    print(f"Render time per page (ms, best / median of {repeat})")
    print(f"  {'panel':>10}  {'mode':<12} {'ours':>16}  {'raw Pillow text':>16}  font px")
    for size in ("192x96", "1920x1080"):
        panel = Panel.parse(size)
        for mode in (SignMode.STATIC, SignMode.SCROLL_LEFT):
            page = TextPage(lines=LINES, mode=mode)
            rendered = renderer.render_text(page, panel)
            ours = timed(lambda p=page, q=panel: renderer.render_text(p, q), repeat)  # type: ignore[misc]
            font = renderer.font.at(rendered.font_px)
            text = "\n".join(rendered.lines)

            # The raw tool draws onto an image the size of ours: the panel, or the text strip of a scroll.
            canvas = rendered.strip.size

            def raw(text: str = text, size: tuple[int, int] = canvas, font: object = font) -> None:
                img = Image.new("RGB", size)
                ImageDraw.Draw(img).text((0, 0), text, font=font, fill=(255, 176, 0))  # type: ignore[arg-type]

            base = timed(raw, repeat)
            line = (f"  {size:>10}  {mode.value:<12} {ours[0]:7.1f} / {ours[1]:6.1f}  {base[0]:7.1f} / {base[1]:6.1f}"
                    f"  {rendered.font_px:>4}")
            if mode is SignMode.SCROLL_LEFT:
                sw, sh = rendered.strip.size
                line += (f"  ({rendered.frame_count} frames at {1000 // rendered.frame_ms} fps; strip {sw}x{sh}"
                         f" = {sw * sh * 3 / 1e6:.1f} MB)")
            print(line)


def bench_serial(renderer: Renderer) -> None:
    panel = Panel(width=96, height=16)
    print("\nSerial cost of one 96x16 page on an Alpha sign (9,600 baud, 7E1 = 10 bits/byte)")
    print(f"  {'page':<40} {'packets':>7} {'bytes':>7} {'pauses':>7} {'seconds':>8}")
    cases = [
        ("DOTS, static 'Ủy ban nhân dân'", TextPage(lines=["Ủy ban nhân dân"]), "dots"),
        ("DOTS, scroll 'Thông báo tiêm chủng'", TextPage(lines=["Thông báo tiêm chủng"], mode=SignMode.SCROLL_LEFT),
         "dots"),
        ("ASCII text, static 'Uy ban nhan dan'", TextPage(lines=["Ủy ban nhân dân"]), "ascii"),
        ("ASCII text, scroll 'Thong bao tiem chung'",
         TextPage(lines=["Thông báo tiêm chủng"], mode=SignMode.SCROLL_LEFT), "ascii"),
    ]
    measured: list[tuple[str, TextPage, str, int]] = []
    for label, page, text in cases:
        driver = AlphaSerialDriver(panel, AlphaDriverSettings(kind="alpha", port="loop://", text=text))
        rendered = renderer.render_text(page, panel)
        packets = driver.packets(Showing(page, rendered, 0))
        size = sum(len(p.wire) for p in packets)
        pauses = sum(p.pause_s * (len(p.chunks) - 1) for p in packets)
        seconds = size * BITS_PER_BYTE_7E1 / 9600 + pauses
        print(f"  {label:<40} {len(packets):>7} {size:>7} {pauses:>6.1f}s {seconds:>7.2f}s")
        measured.append((label, page, text, size))
    _through_pty(measured, panel, renderer)


def _through_pty(measured: list[tuple[str, TextPage, str, int]], panel: Panel, renderer: Renderer) -> None:
    import shutil

    if shutil.which("socat") is None:
        print("  (socat not installed: the pty check is skipped)")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from sign_emulator import SignEmulator  # type: ignore[import-not-found]

    from tests.test_led_alpha import start_pair

    with tempfile.TemporaryDirectory() as tmp:
        pair = start_pair(Path(tmp))
        emulator = SignEmulator(str(pair.b))
        try:
            print("  through a socat pty pair to the sign emulator (checksums checked, ACK read):")
            # 8N1 here: a pty refuses to be set to 7E1 a second time (a real sign takes either; both are
            # 10 bits per byte, so the 9,600-baud figures above hold for both).
            drivers = {text: AlphaSerialDriver(panel, AlphaDriverSettings(kind="alpha", port=str(pair.a), text=text,
                                                                          read_ack=True, set_clock=False,
                                                                          bytesize=8, parity="N"))
                       for text in ("dots", "ascii")}
            for driver in drivers.values():
                driver.open()
            for label, page, text, size in measured:
                driver = drivers[text]
                before = driver.bytes_sent
                t0 = time.perf_counter()
                driver.show(Showing(page, renderer.render_text(page, panel), 0), threading.Event())
                wall = time.perf_counter() - t0
                sent = driver.bytes_sent - before
                ok = "ok" if sent == size and not emulator.state.rejected else f"MISMATCH ({emulator.state.rejected})"
                print(f"    {label:<38} {sent:>7} bytes, {wall * 1000:6.0f} ms wall (pty), emulator: {ok}")
            for driver in drivers.values():
                driver.close()
        finally:
            emulator.stop()
            pair.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    renderer = Renderer()
    print(f"font: {renderer.font.path}\n")
    bench_render(renderer, args.repeat)
    bench_serial(renderer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
