"""The sign renderer: Vietnamese coverage, layout rules, frames, golden images, the CLI."""

from __future__ import annotations

import io
import os
import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from devices.led.cli import main as sign_cli
from devices.led.content import ImagePage, Panel, SignMode, TextPage
from devices.led.fonts import load_font
from devices.led.render import FRAME_MS, MIN_FONT_PX, PLACEHOLDER, LayoutError, Renderer, png_bytes

GOLDEN = Path(__file__).parent / "golden" / "led"
#: Set to 1 to rewrite the golden images after a deliberate renderer change (then look at them!).
REGEN = os.environ.get("LOAPHUONG_REGEN_GOLDEN") == "1"

VOWELS = "aăâeêioôơuưy"
TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
#: Every precomposed Vietnamese letter, lower and upper case (134 with đ/Đ).
VIETNAMESE_LETTERS = sorted(({unicodedata.normalize("NFC", v + t) for v in VOWELS + VOWELS.upper() for t in TONES}
                             | {"đ", "Đ"}) - set("aeiouyAEIOUY"))
GOLDEN_CASES = [
    ("thong-bao", ["Thông báo tiêm chủng"], "192x96", SignMode.STATIC),
    ("uy-ban", ["Ủy ban nhân dân"], "96x16", SignMode.STATIC),
    ("uy-ban-64", ["Ủy ban nhân dân"], "64x32", SignMode.STATIC),
    ("hop-to", ["Họp tổ dân phố", "19 giờ thứ Bảy"], "128x64", SignMode.STATIC),
    ("canh-bao", ["CẢNH BÁO: NƯỚC LŨ DÂNG CAO", "Không qua ngầm, tràn"], "192x96", SignMode.STATIC),
    ("tiem-scroll", ["Thông báo tiêm chủng mở rộng"], "96x16", SignMode.SCROLL_LEFT),
    ("fullhd", ["Ủy ban nhân dân phường Bến Nghé", "Lịch tiếp công dân: thứ Năm hằng tuần"], "1920x1080",
     SignMode.STATIC),
]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


def test_font_covers_every_vietnamese_letter() -> None:
    font = load_font()
    assert len(VIETNAMESE_LETTERS) == 134
    assert [ch for ch in VIETNAMESE_LETTERS if not font.covers(ch)] == []


def test_every_letter_draws_differently_from_its_base(renderer: Renderer) -> None:
    panel = Panel(width=64, height=48)
    base_images: dict[str, Image.Image] = {}
    for ch in VIETNAMESE_LETTERS:
        base = unicodedata.normalize("NFD", ch)[0].replace("đ", "d").replace("Đ", "D")
        if ch in ("đ", "Đ"):
            base = {"đ": "d", "Đ": "D"}[ch]
        img = renderer.render_text(TextPage(lines=[ch]), panel).strip
        assert img.getbbox() is not None, ch
        if base != ch:
            if base not in base_images:
                base_images[base] = renderer.render_text(TextPage(lines=[base]), panel).strip
            assert not _same(img, base_images[base]), f"{ch!r} looks like {base!r}"


@pytest.mark.parametrize("text", ["Thông báo tiêm chủng", "Ủy ban nhân dân", "Nguyễn Thị Hường"])
def test_decomposed_input_renders_like_composed(renderer: Renderer, text: str) -> None:
    panel = Panel(width=192, height=32)
    nfc = renderer.render_text(TextPage(lines=[unicodedata.normalize("NFC", text)]), panel)
    nfd = renderer.render_text(TextPage(lines=[unicodedata.normalize("NFD", text)]), panel)
    assert nfd.lines == nfc.lines
    assert _same(nfc.strip, nfd.strip)


@pytest.mark.parametrize(("name", "lines", "size", "mode"), GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_golden_images(renderer: Renderer, name: str, lines: list[str], size: str, mode: SignMode) -> None:
    rendered = renderer.render_text(TextPage(lines=lines, mode=mode), Panel.parse(size))
    got = rendered.preview()
    path = GOLDEN / f"{name}-{size}.png"
    if REGEN or not path.exists():
        if not REGEN:
            pytest.fail(f"missing golden image {path}; run with LOAPHUONG_REGEN_GOLDEN=1 and inspect it")
        path.write_bytes(png_bytes(got))
    with Image.open(path) as want:
        assert _same(got, want), f"{name} at {size} differs from {path}"


def test_long_text_wraps_then_shrinks_then_fails(renderer: Renderer) -> None:
    panel = Panel(width=128, height=64)
    one = renderer.render_text(TextPage(lines=["Họp tổ dân phố"]), panel)
    longer = renderer.render_text(TextPage(lines=["Họp tổ dân phố số 7 lúc 19 giờ tối thứ Bảy tại nhà văn hóa"]),
                                  panel)
    assert len(longer.lines) > 1  # wrapped
    assert longer.font_px < one.font_px  # and shrunk
    assert longer.font_px >= MIN_FONT_PX
    with pytest.raises(LayoutError, match="too long"):
        renderer.render_text(TextPage(lines=["Họp tổ dân phố số 7 lúc 19 giờ tối thứ Bảy tại nhà văn hóa " * 6]),
                             panel)


def test_a_word_wider_than_the_panel_fails_clearly(renderer: Renderer) -> None:
    with pytest.raises(LayoutError, match="96x16"):
        renderer.render_text(TextPage(lines=["Thông báo tiêm chủng mở rộng toàn phường"]), Panel.parse("96x16"))


def test_unsupported_character_is_a_visible_placeholder_and_reported(renderer: Renderer) -> None:
    panel = Panel(width=128, height=32)
    rendered = renderer.render_text(TextPage(lines=["Xin 中 chào"]), panel)
    assert rendered.unsupported == ("中",)
    assert PLACEHOLDER in rendered.lines[0]
    assert rendered.warnings and "U+4E2D" in rendered.warnings[0]
    blank = renderer.render_text(TextPage(lines=["Xin   chào"]), panel)
    assert not _same(rendered.strip, blank.strip)  # something is drawn where the character was


def test_scroll_left_frames(renderer: Renderer) -> None:
    panel = Panel(width=96, height=16)
    rendered = renderer.render_text(TextPage(lines=["Thông báo"], mode=SignMode.SCROLL_LEFT), panel)
    assert rendered.frame_ms == FRAME_MS == 40
    frames = list(rendered.frames())
    assert len(frames) == rendered.frame_count
    assert all(f.size == (96, 16) for f in frames)
    assert frames[0].getbbox() is None  # starts off the right edge
    assert frames[-1].getbbox() is None  # and leaves by the left edge
    # the text moves one dot per frame
    shifted = ImageChops.offset(frames[50], -1, 0).crop((0, 0, 95, 16))
    assert _same(shifted, frames[51].crop((0, 0, 95, 16)))
    assert _same(rendered.preview(), rendered.frame(96))


def test_flash_alternates_page_and_dark(renderer: Renderer) -> None:
    rendered = renderer.render_text(TextPage(lines=["KHẨN"], mode=SignMode.FLASH), Panel(width=64, height=32))
    assert rendered.frame_count == 2
    assert rendered.frame(0).getbbox() is not None
    assert rendered.frame(1).getbbox() is None


def test_scroll_up_moves_upwards(renderer: Renderer) -> None:
    rendered = renderer.render_text(TextPage(lines=["Họp tổ dân phố lúc 19 giờ"], mode=SignMode.SCROLL_UP),
                                    Panel(width=64, height=32))
    assert rendered.frame(0).getbbox() is None
    assert rendered.frame(rendered.frame_count - 1).getbbox() is None
    assert any(f.getbbox() for f in rendered.frames())


def test_image_page_fits_the_panel(renderer: Renderer) -> None:
    src = Image.new("RGB", (200, 100), (255, 0, 0))
    buf = io.BytesIO()
    src.save(buf, format="PNG")
    data = buf.getvalue()
    page = ImagePage(sha256="0" * 64, size=len(data), mime="image/png")
    rendered = renderer.render_image(page, data, Panel(width=96, height=16))
    assert rendered.strip.size == (96, 16)
    assert rendered.strip.getpixel((48, 8)) == (255, 0, 0)
    assert rendered.strip.getpixel((0, 8)) == (0, 0, 0)  # 32x16 centred: the sides stay dark
    with pytest.raises(LayoutError, match="PNG hoặc JPEG"):
        gif = io.BytesIO()
        src.save(gif, format="GIF")
        renderer.render_image(page, gif.getvalue(), Panel(width=96, height=16))
    with pytest.raises(LayoutError, match="unreadable"):
        renderer.render_image(page, data[:40], Panel(width=96, height=16))


def test_cli_writes_the_exact_board_image(tmp_path: Path, renderer: Renderer, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    out = tmp_path / "page.png"
    assert sign_cli(["render", "Ủy ban nhân dân", "--size", "96x16", "-o", str(out)]) == 0
    want = renderer.render_text(TextPage(lines=["Ủy ban nhân dân"]), Panel.parse("96x16")).preview()
    with Image.open(out) as got:
        assert got.size == (96, 16)
        assert _same(got, want)
    assert sign_cli(["render", "Thông báo tiêm chủng mở rộng toàn phường", "--size", "96x16", "-o",
                     str(tmp_path / "x.png")]) == 1
    assert "too long" in capsys.readouterr().err
    assert sign_cli(["render", "x", "--size", "96by16", "-o", str(tmp_path / "y.png")]) == 2
    frames = tmp_path / "frames"
    assert sign_cli(["render", "Thông báo", "--size", "64x16", "--mode", "scroll_left", "-o",
                     str(tmp_path / "s.png"), "--frames", str(frames)]) == 0
    assert len(list(frames.glob("*.png"))) > 60


def test_sign_command_imports_only_the_sign_package(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from loaphuong.cli import main; "
            f"rc = main(['sign', 'render', 'Ủy ban', '--size', '64x16', '-o', {str(tmp_path / 'p.png')!r}]); "
            "bad = [m for m in ('controller', 'edge_agent', 'audio', 'schedules', 'fastapi', 'sqlalchemy', 'serial', "
            "'pygame') if m in sys.modules]; print(bad); sys.exit(rc or (1 if bad else 0))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "p.png").exists()
