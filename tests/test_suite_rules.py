"""Rules the test suite keeps about itself.

Speed is measured in bench/, never asserted in a test: on a 2-core CI machine running brokers, agents and browsers
beside the suite, an assert on how long our code took fails at random and keeps good work from landing. A test may
wait *up to* a deadline for an event (``assert time.monotonic() < deadline`` is such a wait), but no ``assert`` may
hold a duration: a difference of clock readings, or a name that holds one. The rare assert that only checks our code
is never *ahead* of the clock (a busy machine can only make it later) says so with ``# clock-ok: why`` on its line.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
#: Clock readings: an assert that holds one compares a duration of our own code.
CLOCKS = {("time", "monotonic"), ("time", "perf_counter"), ("time", "time"), ("time", "monotonic_ns"),
          ("time", "perf_counter_ns"), ("time", "time_ns")}
#: Names that, by this suite's habits, hold a measured duration.
DURATION_NAMES = {"elapsed", "elapsed_s", "took", "took_s", "hit_s", "again_s"}


def _is_clock(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in CLOCKS


def _clock_reads(node: ast.AST) -> list[str]:
    """The durations an assert's expression holds: clock readings inside a subtraction, and duration names."""
    found: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Sub):
            found += [f"{c.func.value.id}.{c.func.attr}() - …" for c in ast.walk(sub)  # type: ignore[union-attr]
                      if _is_clock(c)]
        elif isinstance(sub, ast.Name) and sub.id in DURATION_NAMES:
            found.append(sub.id)
    return sorted(set(found))


def test_no_assert_reads_the_clock() -> None:
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and "# clock-ok:" not in lines[node.lineno - 1] \
                    and (reads := _clock_reads(node.test)):
                offenders.append(f"{path.name}:{node.lineno}: {', '.join(reads)}")
    assert not offenders, "asserts on durations (measure in bench/, wait up to a deadline in tests):\n" + \
        "\n".join(offenders)


def test_the_rule_catches_a_timed_assert() -> None:
    timed = ast.parse("started = time.monotonic()\nassert time.monotonic() - started < 0.05\nassert elapsed < 1")
    asserts = [n for n in ast.walk(timed) if isinstance(n, ast.Assert)]
    assert [_clock_reads(a.test) for a in asserts] == [["time.monotonic() - …"], ["elapsed"]]
    waited = ast.parse("deadline = time.monotonic() + 10\nwhile time.monotonic() < deadline: pass\nassert done")
    assert not [r for n in ast.walk(waited) if isinstance(n, ast.Assert) for r in _clock_reads(n.test)]
