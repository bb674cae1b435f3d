"""Where a render's time goes: named stage timings, recorded only when someone asks (``bench/tts.py``).

Code on the speech path wraps each stage in ``with stage("name"):`` (or reports a duration measured
elsewhere, e.g. inside an engine worker, with :func:`note`). Nothing is kept unless the caller runs the
render inside ``with recording() as stages:``; the recorder lives in a context variable, so concurrent
renders in other threads are not mixed in, and the cost when nobody records is one ``ContextVar.get``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Stage", "note", "recording", "stage"]


@dataclass(frozen=True, slots=True)
class Stage:
    """One timed stage: wall seconds, and whether it ran alongside others (then it does not add up)."""

    name: str
    seconds: float
    overlapped: bool = False


_recorder: ContextVar[list[Stage] | None] = ContextVar("loaphuong_stage_recorder", default=None)


@contextmanager
def recording() -> Iterator[list[Stage]]:
    """Collects the stages of everything run inside the block (in this thread / context), in order."""
    stages: list[Stage] = []
    token = _recorder.set(stages)
    try:
        yield stages
    finally:
        _recorder.reset(token)


def note(name: str, seconds: float, overlapped: bool = False) -> None:
    """Records a duration measured by other means (no-op when nobody records)."""
    stages = _recorder.get()
    if stages is not None:
        stages.append(Stage(name, seconds, overlapped))


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Times the block as one stage (also when it raises)."""
    if _recorder.get() is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        note(name, time.perf_counter() - started)
