"""Figures of the reliability tests: printed after the run, written to a file on request.

``KARR_RELIABILITY_REPORT=path`` appends one JSON line per test (its name and
figures), which is where ``docs/reliability.md`` takes its numbers from.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

REPORT_ENV = "KARR_RELIABILITY_REPORT"
_collected: list[dict[str, Any]] = []


class Figures:
    """What one test did: trials, processes, operations, rows checked, failures."""

    def __init__(self, test: str) -> None:
        self.values: dict[str, Any] = {"test": test}
        self._started = time.monotonic()

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def add(self, key: str, amount: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + amount

    def finish(self) -> dict[str, Any]:
        self.values["seconds"] = round(time.monotonic() - self._started, 1)
        return self.values


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    recorded = Figures(request.node.nodeid.split("::", 1)[-1])
    yield recorded
    values = recorded.finish()
    outcome = getattr(request.node, "rep_call", None)
    if outcome is None or outcome.skipped:
        return  # skipped or broken in set-up: no figures to report
    values["failures"] = 0 if outcome.passed else 1
    _collected.append(values)
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(values, default=str) + "\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _collected:
        return
    terminalreporter.section("reliability figures")
    for values in _collected:
        terminalreporter.write_line(json.dumps(values, default=str))
