"""``loaphuong tts "text" -o out.ogg``: hear what the controller would broadcast."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from audio.speech import VIETNAMESE_VOICES, SpeechError, SpeechSettings, render_speech


def main(argv: list[str]) -> int:
    """Renders text (argument or stdin) to an Opus file; exit 1 on failure."""
    parser = argparse.ArgumentParser(prog="loaphuong tts", description="Speak Vietnamese text into an Opus file.")
    parser.add_argument("text", nargs="?", help="text to speak (default: read stdin)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .ogg file")
    parser.add_argument("--voice", default="vi", choices=VIETNAMESE_VOICES)
    parser.add_argument("--rate", type=int, default=150, help="words per minute (80-450)")
    args = parser.parse_args(argv)
    text = args.text if args.text is not None else sys.stdin.read()
    if not 80 <= args.rate <= 450:
        parser.error("--rate must be between 80 and 450")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = render_speech(text, Path(tmp), SpeechSettings(voice=args.voice, rate_wpm=args.rate))
            shutil.move(result.path, args.output)
    except SpeechError as exc:
        print(f"loaphuong tts: {exc}", file=sys.stderr)
        return 1
    print(f"{args.output}: {result.duration_ms / 1000:.2f} s, {result.size} bytes, sha256 {result.sha256}, "
          f"{result.engine}")
    return 0
