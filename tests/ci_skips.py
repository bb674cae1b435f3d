"""On CI a skipped test is a failure, unless the test says why it may skip there.

`make test` installs every tool and package the suite uses, so on CI (``CI=true``) a test that skips for a
missing tool hides a broken set-up behind a green run. Tests that may legitimately skip on CI (one that needs an
offline machine, say) carry ``@pytest.mark.may_skip_on_ci("why")``. Everywhere else a skip stays a skip, and
``-rs`` (pyproject.toml) prints its reason.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

MARKER = "may_skip_on_ci"


def on_ci() -> bool:
    """True when the CI system says so (GitHub, GitLab and .ci/run all set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail(report: pytest.TestReport | pytest.CollectReport, where: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{where} skipped on CI: {_reason(report)}\n"
                       f"CI installs everything the suite needs (scripts/setup.sh --test), so nothing should skip "
                       f"for a missing tool; fix the set-up, or mark the test @pytest.mark.{MARKER}(\"why\").")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Turns a test's skip into a failure on CI unless the test is marked as allowed to skip there."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and on_ci() and not hasattr(report, "wasxfail") and item.get_closest_marker(MARKER) is None:
        _fail(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """The same for a whole module skipped while it is collected (``pytest.importorskip`` at the top)."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.skipped and on_ci():
        _fail(report, collector.nodeid)
