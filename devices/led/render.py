"""Lays sign pages out for a panel and draws them with Pillow.

A static or flashing page is wrapped and sized to the largest font that fits (shrinking down to
``MIN_FONT_PX``, then a :class:`LayoutError` says so); a scrolling page becomes one long *strip* that
frames are cut from, so a 1920×1080 scroll never holds hundreds of full frames in memory.
Every character the font lacks is drawn as a visible placeholder and listed in ``unsupported``.
Small panels are drawn without anti-aliasing: an LED dot is on or off, and the preview must be exactly
what the board shows.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from PIL import Image, ImageDraw, ImageOps

from devices.led.content import COLOUR_RGB, Align, ImagePage, Panel, SignMode, TextPage
from devices.led.fonts import SignFont, load_font

#: Frames per second of scrolling pages (LED controllers and screens both manage 25).
FRAME_RATE: Final = 25
FRAME_MS: Final = 1000 // FRAME_RATE
#: Flashing: on for this long, then off for as long.
FLASH_MS: Final = 500
#: Smallest font (pixels) a page may shrink to before it is refused: below it diacritics merge.
MIN_FONT_PX: Final = 8
#: Panels at least this tall are screens (anti-aliased); smaller ones are LED dot matrices.
SMOOTH_FROM_HEIGHT: Final = 100
#: What an unsupported character is drawn as.
PLACEHOLDER: Final = "\u25a1"
#: Largest image (pixels) accepted for an image page; bigger files are refused before decoding.
MAX_IMAGE_PIXELS: Final = 40_000_000
BLACK: Final = (0, 0, 0)


class LayoutError(ValueError):
    """The page cannot be shown on this panel (text too long even at the smallest size, bad image)."""


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A page drawn for one panel; frames are made from ``strip`` on demand.

    Static and flashing pages: ``strip`` is the panel-sized image (flashing alternates it with a dark
    frame). Scrolls: ``strip`` holds only the text — one line as tall as its ink for ``scroll_left``, the
    wrapped block as wide as the panel for ``scroll_up`` — and frame ``i`` places it at
    :meth:`position` (``origin`` moved ``step`` pixels per frame), so a 1920×1080 scroll keeps a few
    megabytes, not hundreds of frames or a strip padded with two empty screens.
    """

    panel: Panel
    mode: SignMode
    strip: Image.Image
    frame_ms: int
    frame_count: int
    step: int = 0
    #: Where the strip's top-left corner is on the panel in frame 0 (scrolls).
    origin: tuple[int, int] = (0, 0)
    font_px: int = 0
    lines: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    colour: tuple[int, int, int] = (255, 255, 255)
    smooth: bool = False
    warnings: tuple[str, ...] = field(default=())

    def position(self, index: int) -> tuple[int, int]:
        """Top-left corner of the strip on the panel in frame ``index``."""
        x, y = self.origin
        if self.mode is SignMode.SCROLL_LEFT:
            return x - index * self.step, y
        if self.mode is SignMode.SCROLL_UP:
            return x, y - index * self.step
        return x, y

    def _placed(self, at: tuple[int, int]) -> Image.Image:
        canvas = Image.new("RGB", (self.panel.width, self.panel.height), BLACK)
        canvas.paste(self.strip, at)
        return canvas

    def frame(self, index: int) -> Image.Image:
        """Frame ``index`` (0-based) exactly as the board shows it."""
        index %= self.frame_count
        if self.mode in (SignMode.SCROLL_LEFT, SignMode.SCROLL_UP):
            return self._placed(self.position(index))
        if self.mode is SignMode.FLASH and index % 2:
            return Image.new("RGB", (self.panel.width, self.panel.height), BLACK)
        return self.strip

    def frames(self) -> Iterator[Image.Image]:
        """Every frame in order, one pass."""
        for i in range(self.frame_count):
            yield self.frame(i)

    def preview(self) -> Image.Image:
        """The still a person checks: the page itself, or for a scroll the moment its start reaches the edge."""
        if self.mode is SignMode.SCROLL_LEFT:
            return self._placed((0, self.origin[1]))
        if self.mode is SignMode.SCROLL_UP:
            return self._placed((self.origin[0], 0))
        return self.strip

    def text_image(self) -> Image.Image:
        """A scroll's whole text at panel height (left) or panel width (up); the page itself otherwise."""
        if self.mode is SignMode.SCROLL_LEFT:
            full = Image.new("RGB", (self.strip.width, self.panel.height), BLACK)
            full.paste(self.strip, (0, self.origin[1]))
            return full
        return self.strip

    @property
    def duration_ms(self) -> int:
        """One pass of every frame."""
        return self.frame_ms * self.frame_count


@dataclass(frozen=True, slots=True)
class _Fit:
    size: int
    lines: list[str]
    top: int  # offset of the ink top from the baseline (negative)
    line_h: int
    gap: int


class Renderer:
    """Draws pages for panels with one font; safe to share between threads (Pillow fonts are read-only)."""

    def __init__(self, font: SignFont | None = None, min_font_px: int = MIN_FONT_PX) -> None:
        self.font = font or load_font()
        self.min_font_px = min_font_px

    # text ---------------------------------------------------------------------------------------------

    def substitute(self, text: str) -> tuple[str, list[str]]:
        """NFC text with every character the font lacks replaced by :data:`PLACEHOLDER`; and those characters."""
        text = unicodedata.normalize("NFC", text)
        out: list[str] = []
        missing: list[str] = []
        for ch in text:
            if ch.isspace():
                out.append(" ")
            elif self.font.covers(ch):
                out.append(ch)
            else:
                if ch not in missing:
                    missing.append(ch)
                out.append(PLACEHOLDER if self.font.covers(PLACEHOLDER) else "?")
        return "".join(out), missing

    def render_text(self, page: TextPage, panel: Panel, smooth: bool | None = None) -> RenderedPage:
        """Draws a text page for ``panel``; raises :class:`LayoutError` when it cannot fit."""
        smooth = panel.height >= SMOOTH_FROM_HEIGHT if smooth is None else smooth
        colour = COLOUR_RGB[page.colour]
        missing: list[str] = []
        lines: list[str] = []
        for raw in page.lines:
            text, miss = self.substitute(raw)
            missing += [m for m in miss if m not in missing]
            lines.append(" ".join(text.split()))
        lines = [line for line in lines if line]
        unsupported = tuple(missing)
        warnings = tuple(f"không có chữ {ch!r} (U+{ord(ch):04X}) trong phông; hiện thành {PLACEHOLDER}"
                         for ch in unsupported)
        common = {"panel": panel, "mode": page.mode, "unsupported": unsupported, "colour": colour,
                  "smooth": smooth, "warnings": warnings}
        if page.mode is SignMode.SCROLL_LEFT:
            return self._scroll_left(" ".join(lines), panel, colour, smooth, common)
        if page.mode is SignMode.SCROLL_UP:
            return self._scroll_up(lines, panel, colour, smooth, common)
        fit = self._fit_block(lines, panel.width, panel.height, smooth)
        if fit is None:
            raise LayoutError(
                f"văn bản quá dài cho bảng {panel}: không vừa kể cả cỡ chữ nhỏ nhất {self.min_font_px} px "
                f"(text too long for a {panel} panel even at {self.min_font_px} px; shorten it, split it "
                "into pages, or use scroll_left)")
        img = Image.new("RGB", (panel.width, panel.height), BLACK)
        block_h = len(fit.lines) * fit.line_h + (len(fit.lines) - 1) * fit.gap
        y = (panel.height - block_h) // 2
        self._draw_lines(img, fit, y, page.align, colour, smooth)
        frames = 2 if page.mode is SignMode.FLASH else 1
        frame_ms = FLASH_MS if page.mode is SignMode.FLASH else page.dwell_ms
        return RenderedPage(strip=img, frame_ms=frame_ms, frame_count=frames, font_px=fit.size,
                            lines=tuple(fit.lines), **common)  # type: ignore[arg-type]

    def _scroll_left(self, text: str, panel: Panel, colour: tuple[int, int, int], smooth: bool,
                     common: dict[str, object]) -> RenderedPage:
        band = scroll_line_height(panel)
        size = self._largest(lambda s: self._measure([text], s, smooth)[1] <= band, self.min_font_px, band)
        if size is None:
            raise LayoutError(f"bảng {panel} thấp hơn cỡ chữ nhỏ nhất {self.min_font_px} px "
                              f"(panel too short for {self.min_font_px} px text)")
        width, line_h, top = self._measure([text], size, smooth)
        w, h = panel.width, panel.height
        strip = Image.new("RGB", (max(1, width), line_h), BLACK)
        fit = _Fit(size, [text], top, line_h, 0)
        self._draw_lines(strip, fit, 0, Align.LEFT, colour, smooth, x0=0, box_w=width)
        step = max(1, band // 16)  # a line height a second and a half
        count = (w + width) // step + 1
        return RenderedPage(strip=strip, frame_ms=FRAME_MS, frame_count=count, step=step,
                            origin=(w, (h - line_h) // 2), font_px=size, lines=(text,),
                            **common)  # type: ignore[arg-type]

    def _scroll_up(self, lines: list[str], panel: Panel, colour: tuple[int, int, int], smooth: bool,
                   common: dict[str, object]) -> RenderedPage:
        w, h = panel.width, panel.height

        band = scroll_line_height(panel)

        def fits(size: int) -> bool:
            wrapped = self._wrap(lines, size, w, smooth)
            return wrapped is not None and self._measure(wrapped, size, smooth)[1] <= band

        size = self._largest(fits, self.min_font_px, band)
        if size is None:
            raise LayoutError(f"có từ quá dài cho bảng {panel} kể cả cỡ {self.min_font_px} px "
                              f"(a word is too wide for a {panel} panel even at {self.min_font_px} px)")
        wrapped = self._wrap(lines, size, w, smooth)
        assert wrapped is not None
        _width, line_h, top = self._measure(wrapped, size, smooth)
        gap = max(1, size // 6)
        block_h = len(wrapped) * line_h + (len(wrapped) - 1) * gap
        strip = Image.new("RGB", (w, block_h), BLACK)
        self._draw_lines(strip, _Fit(size, wrapped, top, line_h, gap), 0, Align.CENTER, colour, smooth)
        step = max(1, band // 16)  # a line height a second and a half
        count = (h + block_h) // step + 1
        return RenderedPage(strip=strip, frame_ms=FRAME_MS, frame_count=count, step=step, origin=(0, h),
                            font_px=size, lines=tuple(wrapped), **common)  # type: ignore[arg-type]

    # layout helpers -------------------------------------------------------------------------------------

    def _draw(self, smooth: bool, img: Image.Image | None = None) -> ImageDraw.ImageDraw:
        draw = ImageDraw.Draw(img if img is not None else Image.new("1", (1, 1)))
        draw.fontmode = "L" if smooth else "1"
        return draw

    def _bbox(self, text: str, size: int, smooth: bool) -> tuple[int, int, int, int]:
        left, top, right, bottom = self._draw(smooth).textbbox((0, 0), text, font=self.font.at(size), anchor="ls")
        return int(left), int(top), int(right), int(bottom)

    def _measure(self, lines: Sequence[str], size: int, smooth: bool) -> tuple[int, int, int]:
        """(widest line, height of one line box, ink top from the baseline) of ``lines`` at ``size``."""
        boxes = [self._bbox(line, size, smooth) for line in lines] or [(0, 0, 0, 0)]
        top = min(b[1] for b in boxes)
        bottom = max(b[3] for b in boxes)
        width = max(max(b[2], 0) - min(b[0], 0) for b in boxes)
        return width, bottom - top, top

    def _wrap(self, lines: Sequence[str], size: int, width: int, smooth: bool) -> list[str] | None:
        """Greedy word wrap of each line to ``width``; None when one word alone is wider."""
        font = self.font.at(size)
        draw = self._draw(smooth)
        out: list[str] = []
        for line in lines:
            current = ""
            for word in line.split(" "):
                trial = f"{current} {word}" if current else word
                if draw.textlength(trial, font=font) <= width and self._fits_ink(trial, size, width, smooth):
                    current = trial
                    continue
                if not self._fits_ink(word, size, width, smooth):
                    return None
                out.append(current)
                current = word
            if current:
                out.append(current)
        return out

    def _fits_ink(self, text: str, size: int, width: int, smooth: bool) -> bool:
        left, _t, right, _b = self._bbox(text, size, smooth)
        return max(right, 0) - min(left, 0) <= width

    def _fit_block(self, lines: list[str], width: int, height: int, smooth: bool) -> _Fit | None:
        def attempt(size: int) -> _Fit | None:
            wrapped = self._wrap(lines, size, width, smooth)
            if wrapped is None:
                return None
            _w, line_h, top = self._measure(wrapped, size, smooth)
            gap = 0 if len(wrapped) == 1 else max(1, size // 6) if height >= 32 else 1
            if len(wrapped) * line_h + (len(wrapped) - 1) * gap > height:
                return None
            return _Fit(size, wrapped, top, line_h, gap)

        size = self._largest(lambda s: attempt(s) is not None, self.min_font_px, height)
        return None if size is None else attempt(size)

    @staticmethod
    def _largest(fits: object, low: int, high: int) -> int | None:
        """Largest size in [low, high] for which ``fits`` holds (fitting shrinks monotonically with size)."""
        assert callable(fits)
        low = min(low, high)
        if not fits(low):
            return None
        good, bad = low, high + 1
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(mid):
                good = mid
            else:
                bad = mid
        return good

    def _draw_lines(self, img: Image.Image, fit: _Fit, y: int, align: Align, colour: tuple[int, int, int],
                    smooth: bool, x0: int = 0, box_w: int | None = None) -> None:
        draw = self._draw(smooth, img)
        font = self.font.at(fit.size)
        box_w = img.width if box_w is None else box_w
        for line in fit.lines:
            left, _t, right, _b = self._bbox(line, fit.size, smooth)
            ink_w = max(right, 0) - min(left, 0)
            if align is Align.LEFT:
                x = x0
            elif align is Align.RIGHT:
                x = x0 + box_w - ink_w
            else:
                x = x0 + (box_w - ink_w) // 2
            draw.text((x - min(left, 0), y - fit.top), line, font=font, fill=colour, anchor="ls")
            y += fit.line_h + fit.gap

    # images ---------------------------------------------------------------------------------------------

    def render_image(self, page: ImagePage, data: bytes, panel: Panel) -> RenderedPage:
        """An image page scaled to fit the panel, centred on black."""
        img = open_image(data)
        fitted = ImageOps.contain(img, (panel.width, panel.height), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (panel.width, panel.height), BLACK)
        canvas.paste(fitted, ((panel.width - fitted.width) // 2, (panel.height - fitted.height) // 2))
        return RenderedPage(panel=panel, mode=SignMode.STATIC, strip=canvas, frame_ms=page.dwell_ms, frame_count=1)


def scroll_line_height(panel: Panel) -> int:
    """Tallest line of a scrolling page: the whole height of a one-line board, less on bigger panels.

    A 16-dot board scrolls one full-height line; a 96-dot board a half-height one; a screen a quarter
    (readable across a room, and the strip a scroll is cut from stays a few megabytes).
    """
    if panel.height < 32:
        return panel.height
    return panel.height // 2 if panel.height < 200 else panel.height // 4


def open_image(data: bytes) -> Image.Image:
    """Decodes a PNG or JPEG into RGB; raises :class:`LayoutError` for anything else or a decompression bomb."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            if fmt not in ("PNG", "JPEG"):
                raise LayoutError(f"ảnh phải là PNG hoặc JPEG, không phải {fmt} (image must be PNG or JPEG)")
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                raise LayoutError(f"ảnh quá lớn: {probe.width}×{probe.height} (image too large)")
            probe.verify()
        with Image.open(io.BytesIO(data)) as img:
            upright = ImageOps.exif_transpose(img)
            return upright.convert("RGB")
    except LayoutError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise LayoutError(f"không đọc được ảnh (unreadable image): {exc}") from None


def image_mime(data: bytes) -> str:
    """``image/png`` or ``image/jpeg`` for a valid image; raises :class:`LayoutError` otherwise."""
    open_image(data)
    return "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"


def png_bytes(img: Image.Image) -> bytes:
    """The image as PNG bytes (previews, the CLI, the virtual driver)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
