"""``loaphuong sign``: draw what a board of a given size would show.

    loaphuong sign render "Thông báo tiêm chủng" --size 96x16 -o page.png
    loaphuong sign render "Ủy ban nhân dân" --size 192x96 --mode scroll_left --frames frames/

Imports only ``devices.led`` (and Pillow): it runs on an agent as well as on a laptop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from devices.led.content import Align, Panel, SignColour, SignMode, TextPage
from devices.led.fonts import FontError
from devices.led.render import FRAME_RATE, LayoutError, Renderer


def main(argv: list[str]) -> int:
    """Runs a ``sign`` subcommand; exit 1 when the text cannot be shown, 2 on bad options."""
    parser = argparse.ArgumentParser(prog="loaphuong sign", description="LED sign tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="write the exact image a board of this size shows")
    render.add_argument("text", nargs="+", help="text; several arguments are several lines")
    render.add_argument("--size", required=True, help="panel size in dots/pixels, e.g. 96x16, 192x96, 1920x1080")
    render.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    render.add_argument("--mode", default="static", choices=[m.value for m in SignMode])
    render.add_argument("--colour", "--color", default="amber", choices=[c.value for c in SignColour])
    render.add_argument("--align", default="center", choices=[a.value for a in Align])
    render.add_argument("--frames", type=Path, help="also write every frame of the page into this folder")
    render.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None,
                        help="anti-aliased text (default: only for panels at least 100 px tall)")
    args = parser.parse_args(argv)
    try:
        panel = Panel.parse(args.size)
        page = TextPage(lines=args.text, mode=args.mode, colour=args.colour, align=args.align)
    except (ValueError, ValidationError) as exc:
        print(f"loaphuong sign: {exc}", file=sys.stderr)
        return 2
    try:
        rendered = Renderer().render_text(page, panel, smooth=args.smooth)
    except (LayoutError, FontError) as exc:
        print(f"loaphuong sign: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    rendered.preview().save(args.output, format="PNG")
    for ch in rendered.unsupported:
        print(f"loaphuong sign: warning: U+{ord(ch):04X} {ch!r} is not in the font; shown as a placeholder",
              file=sys.stderr)
    note = f"{panel}, {rendered.font_px} px, lines: {' | '.join(rendered.lines)}"
    if args.frames is not None:
        args.frames.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(rendered.frames()):
            frame.save(args.frames / f"frame-{i:05d}.png", format="PNG")
        note += f"; {rendered.frame_count} frames at {FRAME_RATE} fps" if rendered.frame_count > 2 else ""
    print(f"{args.output}: {note}")
    return 0
