"""``loaphuong tts``: hear what the speakers would say, or see how the text will be read."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from audio.engines import EspeakEngineConfig, shutdown_workers
from audio.normalize import NormalizeError, load_abbreviations, normalize
from audio.pipeline import SpeechConfig, render
from audio.speech import VIETNAMESE_VOICES, SpeechError


def main(argv: list[str]) -> int:
    """Renders text (argument or stdin) to Opus (and MP3); exit 1 on a speech failure, 2 on bad options."""
    parser = argparse.ArgumentParser(prog="loaphuong tts", description="Speak Vietnamese text into an audio file.")
    parser.add_argument("text", nargs="?", help="text to speak (default: read stdin)")
    parser.add_argument("-o", "--output", type=Path, help="output .ogg (Opus) file")
    parser.add_argument("--mp3", type=Path, help="also write an MP3 copy here (the Opus file re-encoded)")
    parser.add_argument("--normalize-only", action="store_true", help="print the text as it will be read; no audio")
    parser.add_argument("--config", type=Path, help="speech settings (TOML): engine chain, loudness, chimes")
    parser.add_argument("--abbreviations", type=Path, help="a site's own abbreviations (TSV)")
    parser.add_argument("--voice", default="vi", choices=VIETNAMESE_VOICES, help="espeak-ng voice (without --config)")
    parser.add_argument("--rate", type=int, default=150, help="words per minute, 80-450 (without --config)")
    parser.add_argument("--cache", type=Path, help="keep renders here and reuse them (default: none kept)")
    args = parser.parse_args(argv)
    text = args.text if args.text is not None else sys.stdin.read()
    try:
        abbreviations = load_abbreviations(args.abbreviations)
    except (NormalizeError, OSError) as exc:
        print(f"loaphuong tts: {exc}", file=sys.stderr)
        return 2
    if args.normalize_only:
        print(normalize(text, abbreviations))
        return 0
    if args.output is None:
        parser.error("-o/--output is required (or use --normalize-only)")
    if not 80 <= args.rate <= 450:
        parser.error("--rate must be between 80 and 450")
    try:
        config = SpeechConfig.from_toml(args.config) if args.config else \
            SpeechConfig(engines=[EspeakEngineConfig(voice=args.voice, rate=args.rate)], mp3=args.mp3 is not None)
    except ValueError as exc:
        print(f"loaphuong tts: {exc}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = render(text, config, args.cache or Path(tmp), normalize=lambda t: normalize(t, abbreviations))
            shutil.copyfile(result.path, args.output)
            if args.mp3 is not None and result.mp3_path is not None:
                shutil.copyfile(result.mp3_path, args.mp3)
    except SpeechError as exc:
        print(f"loaphuong tts: {exc}", file=sys.stderr)
        return 1
    finally:
        shutdown_workers()
    print(f"{args.output}: {result.duration_ms / 1000:.2f} s, {result.loudness_lufs:.1f} LUFS, "
          f"{result.true_peak_db:.1f} dBTP, {result.size} bytes, sha256 {result.sha256}, {result.source}"
          f"{' (cached)' if result.cached else ''}")
    return 0
