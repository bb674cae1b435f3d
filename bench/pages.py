"""Timing a console page beside the same work on the raw database, as bench/console_pages.py and bench/city.py
do: each page and its raw counterpart run once untimed, then ``count`` times, and make one :class:`PageRow`.

Both benches had their own copy of these lines; a fix to how a run is timed or a page is fetched now lands
in both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.stats import percentile


@dataclass
class PageRow:
    """One page and its raw counterpart."""

    name: str
    path: str
    requests: int
    p50_ms: float
    p95_ms: float
    bytes: int
    raw_p50_ms: float
    raw_p95_ms: float
    raw_what: str

    def over_raw(self, pct: int) -> float:
        """The page's 50th or 95th percentile (``pct``) over the raw side's; NaN when the raw side took 0."""
        page, raw = (self.p50_ms, self.raw_p50_ms) if pct == 50 else (self.p95_ms, self.raw_p95_ms)
        return page / raw if raw > 0 else float("nan")


def timed(fn: Callable[[], int], count: int) -> tuple[list[float], int]:
    """Runs ``fn`` once untimed (warm-up), then ``count`` times: (ms per run, the last size it returned)."""
    size = fn()
    runs = []
    for _ in range(count):
        t0 = time.perf_counter()
        size = fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return runs, size


def fetcher(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> Callable[[], int]:
    """A GET of ``path`` that must answer 200; returns the body's size."""
    def get() -> int:
        resp = client.get(path, params=params)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path} answered {resp.status_code}: {resp.text[:300]}")
        return len(resp.content)
    return get


def measure(name: str, path: str, page: Callable[[], int], raw: Callable[[], int], raw_what: str,
            count: int) -> PageRow:
    """The page and then its raw side, each timed ``count`` times after a warm-up."""
    page_runs, size = timed(page, count)
    raw_runs, _ = timed(raw, count)
    return PageRow(name, path, count, percentile(page_runs, 50), percentile(page_runs, 95), size,
                   percentile(raw_runs, 50), percentile(raw_runs, 95), raw_what)


def run_in_temp_dir(args: argparse.Namespace, prefix: str, run: Callable[[argparse.Namespace, Path], dict[str, Any]],
                    print_table: Callable[[dict[str, Any]], None], log: Callable[[str], None]) -> int:
    """``run(args, root)`` in a new temp dir (removed after, unless ``args.keep_dir``), its report printed
    and, with ``args.json``, written there; 0 once the table is printed."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        report = run(args, root)
    finally:
        if args.keep_dir:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 0
