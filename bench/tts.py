#!/usr/bin/env python3
"""Speech benchmark: our whole pipeline against the raw espeak-ng CLI on the same text, same run.

Prints, for a 1,000-character real-style ward announcement:
* raw ``espeak-ng -v vi`` to WAV (the floor), and raw espeak-ng + one ffmpeg Opus encode;
* our pipeline on a cold cache (normalise → engine chain → trim, two-pass loudness, Opus + MP3),
  as a ratio to raw espeak-ng;
* a cache hit (the same text again), and the normaliser's throughput in characters per second.

Targets (issue 3): pipeline ≤ 2× raw espeak-ng; cache hit ≤ 20 ms; normaliser ≥ 200,000 chars/s.

    .venv/bin/python bench/tts.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from audio.cache import SpeechCache
from audio.engines import shutdown_workers
from audio.normalize import normalize
from audio.pipeline import SpeechConfig, render

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


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall times of ``runs`` calls."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    """Runs the comparison and prints a table; exit 0 (a report), 1 if a tool is missing."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    text = ANNOUNCEMENT[:1000]
    assert len(text) == 1000, len(ANNOUNCEMENT)
    spoken = normalize(text)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def raw_espeak() -> None:
            subprocess.run(["espeak-ng", "-v", "vi", "-w", str(work / "raw.wav"), "--stdin"], input=spoken.encode(),
                           check=True, capture_output=True, timeout=60)

        def raw_espeak_opus() -> None:
            raw_espeak()
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(work / "raw.wav"), "-c:a",
                            "libopus", "-b:a", "32k", str(work / "raw.ogg")], check=True, timeout=60)

        config = SpeechConfig()
        counter = iter(range(10**6))

        def cold_pipeline() -> None:
            # A fresh cache each time: the whole pipeline runs, nothing is reused.
            render(text, config, SpeechCache(work / f"cache-{next(counter)}"), normalize=normalize)

        warm_cache = SpeechCache(work / "warm")
        first = render(text, config, warm_cache, normalize=normalize)

        def cache_hit() -> None:
            result = render(text, config, warm_cache, normalize=normalize)
            assert result.cached

        raw = timed(raw_espeak, args.runs)
        raw_opus = timed(raw_espeak_opus, args.runs)
        pipeline = timed(cold_pipeline, args.runs)
        hits = timed(cache_hit, 50)
        big = (ANNOUNCEMENT + "\n") * (50_000 // len(ANNOUNCEMENT) + 1)
        norm = timed(lambda: normalize(big), 5)
        shutdown_workers()

    med = statistics.median
    ratio = med(pipeline) / med(raw)
    chars_s = len(big) / med(norm)
    rows = [
        ("raw espeak-ng -v vi → WAV", f"{med(raw) * 1000:.0f} ms", "1.0×", "floor"),
        ("raw espeak-ng + ffmpeg Opus", f"{med(raw_opus) * 1000:.0f} ms", f"{med(raw_opus) / med(raw):.1f}×", ""),
        ("pipeline, cold cache", f"{med(pipeline) * 1000:.0f} ms", f"{ratio:.1f}×",
         "PASS" if ratio <= 2 else "FAIL (target ≤ 2×)"),
        ("pipeline, cache hit", f"{med(hits) * 1000:.2f} ms", "", "PASS" if med(hits) <= 0.020 else "FAIL (≤ 20 ms)"),
        ("normaliser", f"{chars_s:,.0f} chars/s", "", "PASS" if chars_s >= 200_000 else "FAIL (≥ 200,000)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"text: {len(text)} characters → {first.duration_ms / 1000:.1f} s of speech by {first.source}, "
          f"{first.loudness_lufs:.1f} LUFS, {first.true_peak_db:.1f} dBTP; median of {args.runs} runs")
    for name, value, rel, verdict in rows:
        print(f"{name:<{width}}  {value:>16}  {rel:>6}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
