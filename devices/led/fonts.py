"""Finding the sign font and knowing which characters it can draw.

The font is never part of this repository: it comes from a Debian package (``fonts-dejavu-core``, the
default; ``fonts-noto-core`` as a second choice) or from a path the site names in
``LOAPHUONG_SIGN_FONT``. The character map (``cmap`` table) is read directly, so an unsupported
character is known before drawing and reported instead of silently becoming a box.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from PIL import ImageFont

#: Looked for in order; the first that exists is used. Bold reads better on coarse LED dots.
FONT_CANDIDATES: Final = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),  # Debian fonts-dejavu-core
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),  # Debian fonts-noto-core
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
)
FONT_ENV: Final = "LOAPHUONG_SIGN_FONT"


class FontError(RuntimeError):
    """No usable font: the message says which package to install or which path failed."""


@dataclass(frozen=True, slots=True)
class SignFont:
    """A font file and the code points it maps to a glyph."""

    path: Path
    covered: frozenset[int]

    def covers(self, char: str) -> bool:
        """True when the font has a glyph for ``char`` (one code point)."""
        return ord(char) in self.covered

    @lru_cache(maxsize=256)  # noqa: B019 - one font object lives for the process; sizes are few
    def at(self, size: int) -> ImageFont.FreeTypeFont:
        """The font at ``size`` pixels."""
        return ImageFont.truetype(str(self.path), size)


def find_font_path() -> Path:
    """The font file to use: ``$LOAPHUONG_SIGN_FONT`` or the first installed candidate."""
    named = os.environ.get(FONT_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FontError(f"{FONT_ENV}={named} is not a file")
        return path
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    raise FontError("no sign font found: install the Debian package fonts-dejavu-core (or fonts-noto-core), "
                    f"or set {FONT_ENV} to a TrueType file that covers Vietnamese")


@lru_cache(maxsize=4)
def load_font(path: Path | None = None) -> SignFont:
    """The sign font with its coverage (cached per path)."""
    path = path or find_font_path()
    try:
        data = path.read_bytes()
        covered = read_cmap(data)
    except (OSError, ValueError, struct.error) as exc:
        raise FontError(f"cannot read font {path}: {exc}") from None
    return SignFont(path, covered)


def read_cmap(data: bytes) -> frozenset[int]:
    """Code points with a glyph, from a TrueType/OpenType ``cmap`` (formats 4 and 12)."""
    num_tables = struct.unpack_from(">H", data, 4)[0]
    cmap_at = None
    for i in range(num_tables):
        tag, _check, offset, _length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if tag == b"cmap":
            cmap_at = offset
    if cmap_at is None:
        raise ValueError("font has no cmap table")
    count = struct.unpack_from(">H", data, cmap_at + 2)[0]
    subtables: dict[tuple[int, int], int] = {}
    for i in range(count):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap_at + 4 + 8 * i)
        subtables[(platform, encoding)] = cmap_at + offset
    for key in ((3, 10), (0, 4), (3, 1), (0, 3)):
        if key in subtables:
            at = subtables[key]
            fmt = struct.unpack_from(">H", data, at)[0]
            if fmt == 12:
                return _format12(data, at)
            if fmt == 4:
                return _format4(data, at)
    raise ValueError("font has no Unicode cmap of format 4 or 12")


def _format4(data: bytes, at: int) -> frozenset[int]:
    seg_count = struct.unpack_from(">H", data, at + 6)[0] // 2
    ends_at = at + 14
    starts_at = ends_at + 2 * seg_count + 2
    deltas_at = starts_at + 2 * seg_count
    ranges_at = deltas_at + 2 * seg_count
    covered: set[int] = set()
    for seg in range(seg_count):
        end = struct.unpack_from(">H", data, ends_at + 2 * seg)[0]
        start = struct.unpack_from(">H", data, starts_at + 2 * seg)[0]
        delta = struct.unpack_from(">h", data, deltas_at + 2 * seg)[0]
        range_offset = struct.unpack_from(">H", data, ranges_at + 2 * seg)[0]
        for code in range(start, min(end, 0xFFFE) + 1):
            if range_offset == 0:
                glyph = (code + delta) & 0xFFFF
            else:
                # The offset is relative to this idRangeOffset entry itself (the format's own trick).
                glyph_at = ranges_at + 2 * seg + range_offset + 2 * (code - start)
                glyph = struct.unpack_from(">H", data, glyph_at)[0]
                if glyph:
                    glyph = (glyph + delta) & 0xFFFF
            if glyph:
                covered.add(code)
    return frozenset(covered)


def _format12(data: bytes, at: int) -> frozenset[int]:
    groups = struct.unpack_from(">I", data, at + 12)[0]
    covered: set[int] = set()
    for i in range(groups):
        start, end, glyph = struct.unpack_from(">III", data, at + 16 + 12 * i)
        covered.update(c for c in range(start, end + 1) if glyph or c != start)
    return frozenset(covered)
