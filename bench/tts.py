#!/usr/bin/env python3
"""Speech benchmark: our whole pipeline against the raw espeak-ng CLI on the same text, same run.

Prints, for a 1,000-character real-style ward announcement (and a ~120-character emergency text):

* references, measured in the same run on the same normalised text, voice and rate as our config:
  - raw ``espeak-ng -v vi -s 150`` to WAV (the floor);
  - raw espeak-ng + one ffmpeg Opus encode with libopus's defaults (complexity 10, 32 kb/s; the old row);
  - raw espeak-ng + one ffmpeg Opus encode with *our* encoder settings (48 kHz mono, ``voip``, our bitrate
    and complexity): what any pipeline that ends in our Opus file must pay at least;
* our pipeline on a cold cache (normalise → engine chain → trim, two-pass loudness, Opus, measurement of
  the Opus file), as a ratio to each reference, with the issue-3 target (≤ 2× raw espeak-ng) as PASS/FAIL;
  the espeak-ng worker is started ahead, as in a running controller; a second row has none ready (the
  first render after start);
* the same for the short emergency text, since that is what emergency latency depends on;
* a cache hit, and the normaliser's throughput in characters per second;
* where the cold render's time goes, stage by stage (medians over the runs; rows marked ∥ ran alongside).

Targets (issue 3): pipeline ≤ 2× raw espeak-ng; cache hit ≤ 20 ms; normaliser ≥ 200,000 chars/s.

    .venv/bin/python bench/tts.py [--runs 3] [--no-stages]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audio.cache import SpeechCache
from audio.engines import EspeakEngineConfig, shutdown_workers
from audio.normalize import normalize
from audio.pipeline import RenderedSpeech, SpeechConfig, render
from audio.postprocess import SAMPLE_RATE, opus_encoder_args
from audio.profile import Stage, recording

ANNOUNCEMENT = (
    "Thông báo của Ủy ban nhân dân phường Bến Nghé. Thực hiện Kế hoạch số 125/KH-UBND ngày 08/01/2026 của "
    "UBND Quận 1 về tiêm chủng mở rộng năm 2026, Trạm Y tế phường tổ chức tiêm vắc xin phòng bệnh sởi cho trẻ "
    "từ 9 tháng đến 5 tuổi vào các ngày 15-16/01/2026, từ 7h30 đến 11h và từ 13h30 đến 16h30, tại Nhà văn hóa "
    "khu phố 3, số 123/4 Lê Lợi. Phụ huynh mang theo sổ tiêm chủng, thẻ BHYT và CCCD. Mọi thắc mắc xin liên hệ "
    "số điện thoại 0903 123 456 hoặc 028 3823 4567. Đồng thời, theo Nghị quyết 57-NQ/TW ngày 22-12-2024, phường "
    "đẩy mạnh chuyển đổi số; 75% hồ sơ thủ tục hành chính được nộp trực tuyến. Lệ phí cấp bản sao là 5.000 đồng "
    "một trang, hỗ trợ hộ nghèo 1.500.000 đồng mỗi hộ. Dự báo nhiệt độ ngày mai 25°C đến 32°C, có mưa rào. "
    "Đề nghị bà con khu phố 1, khu phố 2 chủ động phòng chống ngập úng, không xả rác xuống cống. Ban Chỉ huy "
    "PCCC phường nhắc các hộ kinh doanh kiểm tra bình chữa cháy, không để xe chắn lối thoát hiểm; khi có sự cố "
    "gọi 114. Công an phường đề nghị người dân đến làm thủ tục cấp CCCD gắn chip từ thứ Hai đến thứ Sáu, tại "
    "trụ sở số 15 Đinh Tiên Hoàng. Trân trọng thông báo."
)

#: What an emergency sounds like: short, urgent, read at once.
EMERGENCY = ("Khẩn cấp! Cháy lớn tại chợ Bến Thành, khu phố 3. Đề nghị bà con tránh xa khu vực, "
             "nhường đường cho xe cứu hỏa. Gọi 114.")


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall times of ``runs`` calls."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


@dataclass
class Measured:
    """One text's timings (seconds per run) and the render it gave."""

    first: RenderedSpeech
    chars: int
    raw: list[float]
    raw_defaults: list[float]
    raw_ours: list[float]
    cold: list[float]
    cold_no_worker: list[float]
    stages: list[tuple[str, str, bool]]


def stage_table(runs: list[list[Stage]], totals: list[float]) -> list[tuple[str, str, bool]]:
    """Per stage name (in first-seen order): the median over runs of its summed time (or, for rows that only
    count, of how often it happened), and whether it overlapped other stages.

    A row ``(other: ...)`` takes what the sequential rows leave of the total.
    """
    names: list[str] = []
    overlapped: dict[str, bool] = {}
    for stages in runs:
        for s in stages:
            if s.name not in overlapped:
                names.append(s.name)
            overlapped[s.name] = overlapped.get(s.name, False) or s.overlapped
    rows = []
    for name in names:
        if name.endswith(("passes", ")")) and all(s.seconds == 0 for st in runs for s in st if s.name == name):
            count = statistics.median(sum(1 for s in stages if s.name == name) for stages in runs)
            rows.append((name, f"{count:g}×", overlapped[name]))
            continue
        seconds = statistics.median(sum(s.seconds for s in stages if s.name == name) for stages in runs)
        rows.append((name, f"{seconds * 1000:.1f} ms", overlapped[name]))
    counted = [sum(s.seconds for s in stages if not s.overlapped) for stages in runs]
    other = statistics.median(t - c for t, c in zip(totals, counted, strict=True))
    rows.append(("(other: Python glue, temp files, process waits)", f"{other * 1000:.1f} ms", False))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Runs the comparison and prints the tables; exit 0 (a report), 1 if a tool is missing."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-stages", action="store_true", help="leave out the stage tables")
    args = parser.parse_args(argv)
    text = ANNOUNCEMENT[:1000]
    assert len(text) == 1000, len(ANNOUNCEMENT)
    config = SpeechConfig()
    espeak = config.engines[0]
    assert isinstance(espeak, EspeakEngineConfig)
    # The references speak exactly what our engine speaks: same normalised text, voice and rate.
    cli = ["espeak-ng", "-v", espeak.voice or "vi", "-s", str(espeak.rate), "-p", str(espeak.pitch)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        counter = iter(range(10**6))

        def raw_espeak(spoken: str) -> None:
            subprocess.run([*cli, "-w", str(work / "raw.wav"), "--stdin"], input=spoken.encode(), check=True,
                           capture_output=True, timeout=60)

        def raw_espeak_opus(spoken: str, encoder: list[str]) -> None:
            raw_espeak(spoken)
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(work / "raw.wav"),
                            *encoder, str(work / "raw.ogg")], check=True, timeout=60)

        ours = ["-ar", str(SAMPLE_RATE), "-ac", "1", *opus_encoder_args(config)]
        defaults = ["-c:a", "libopus", "-b:a", "32k"]

        def measure(source: str, runs: int) -> Measured:
            spoken = normalize(source)
            stages: list[list[Stage]] = []
            totals: list[float] = []

            def cold() -> None:
                # A fresh cache each time: the whole pipeline runs, nothing is reused.
                with recording() as found:
                    t0 = time.perf_counter()
                    render(source, config, SpeechCache(work / f"cache-{next(counter)}"), normalize=normalize)
                    totals.append(time.perf_counter() - t0)
                stages.append(found)

            def cold_no_worker() -> None:
                shutdown_workers()
                render(source, config, SpeechCache(work / f"cache-{next(counter)}"), normalize=normalize)

            first = render(source, config, SpeechCache(work / "warm-up"), normalize=normalize)
            raw = timed(lambda: raw_espeak(spoken), runs)
            raw_defaults = timed(lambda: raw_espeak_opus(spoken, defaults), runs)
            raw_ours = timed(lambda: raw_espeak_opus(spoken, ours), runs)
            cold_s = timed(cold, runs)
            no_worker = timed(cold_no_worker, runs)
            render(source, config, SpeechCache(work / "warm-up"), normalize=normalize)  # a worker ready again
            return Measured(first, len(source), raw, raw_defaults, raw_ours, cold_s, no_worker,
                            stage_table(stages, totals))

        long = measure(text, args.runs)
        short = measure(EMERGENCY, args.runs)
        warm_cache = SpeechCache(work / "warm")
        render(text, config, warm_cache, normalize=normalize)

        def cache_hit() -> None:
            result = render(text, config, warm_cache, normalize=normalize)
            assert result.cached

        hits = timed(cache_hit, 50)
        big = (ANNOUNCEMENT + "\n") * (50_000 // len(ANNOUNCEMENT) + 1)
        norm = timed(lambda: normalize(big), 5)
        shutdown_workers()

    med = statistics.median
    chars_s = len(big) / med(norm)
    print(f"median of {args.runs} runs; Opus {config.opus_bitrate}, complexity {config.opus_complexity}, voip, "
          f"60 ms packets; MP3 {'with every render' if config.mp3 else 'only when asked'}")
    for label, m in (("announcement", long), ("emergency", short)):
        raw, raw_defaults, raw_ours = med(m.raw), med(m.raw_defaults), med(m.raw_ours)
        cold, cold_no_worker = med(m.cold), med(m.cold_no_worker)
        ratio = cold / raw
        rows = [
            (f"raw {' '.join(cli)} → WAV", f"{raw * 1000:.0f} ms", "", "floor"),
            ("raw espeak-ng + Opus, libopus defaults (c10, 32k)", f"{raw_defaults * 1000:.0f} ms", "", ""),
            ("raw espeak-ng + Opus, our encoder settings", f"{raw_ours * 1000:.0f} ms", "", "achievable floor"),
            ("pipeline, cold cache", f"{cold * 1000:.0f} ms", f"{ratio:.1f}× raw espeak-ng",
             "PASS" if ratio <= 2 else "FAIL (target ≤ 2×)"),
            ("", "", f"{cold / raw_ours:.2f}× raw espeak + same Opus", ""),
            ("", "", f"{cold / raw_defaults:.2f}× raw espeak + default Opus", ""),
            ("pipeline, cold cache, no worker ready", f"{cold_no_worker * 1000:.0f} ms",
             f"{cold_no_worker / raw:.1f}× raw espeak-ng", "first render after start"),
        ]
        if label == "announcement":
            rows += [
                ("pipeline, cache hit", f"{med(hits) * 1000:.2f} ms", "",
                 "PASS" if med(hits) <= 0.020 else "FAIL (≤ 20 ms)"),
                ("normaliser", f"{chars_s:,.0f} chars/s", "", "PASS" if chars_s >= 200_000 else "FAIL (≥ 200,000)"),
            ]
        first = m.first
        print(f"\n{label}: {m.chars} characters → {first.duration_ms / 1000:.1f} s of speech by {first.source}, "
              f"{first.loudness_lufs:.1f} LUFS, {first.true_peak_db:.1f} dBTP (measured on the Opus file), "
              f"{first.size / 1024:.0f} KiB")
        width = max(len(r[0]) for r in rows)
        for name, value, rel, verdict in rows:
            print(f"  {name:<{width}}  {value:>16}  {rel:<34}  {verdict}")
        if not args.no_stages:
            print(f"  where the cold render's {cold * 1000:.0f} ms go (medians; ∥ ran alongside others):")
            swidth = max(len(r[0]) for r in m.stages)
            for name, value, overlapped in m.stages:
                print(f"    {'∥' if overlapped else ' '} {name:<{swidth}}  {value:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
