"""The library leaves its host's process-wide settings alone: reading pages of
runs, history points and events never turns Python's garbage collector off."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from sqlalchemy.orm import Session

from karr_db.repositories.events import EventsRepository
from karr_db.repositories.results import ResultsRepository
from tests.support.repositories import on


def document(day: int) -> dict[str, Any]:
    return {
        "model": "llama",
        "engine": "vllm",
        "suite_name": f"s{day}",
        "timestamp": f"2026-03-{day:02d}T10:00:00",
        "results": [{"test_name": "t", "metrics": {"avg_tps": float(day)}}],
        "system_info": {"gpu": {"model": "H100", "count": 1}},
    }


def test_reading_pages_leaves_the_collector_alone(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = on(ResultsRepository, session)
    for day in range(1, 6):
        results.save(document(day))
    touched: list[str] = []
    for name in ("disable", "enable", "freeze", "set_threshold"):
        monkeypatch.setattr(gc, name, lambda *_a, _n=name: touched.append(_n))

    assert len(results.list({}, limit=2).items) == 2
    assert len(results.metric_history("avg_tps", limit=2).items) == 2
    assert len(EventsRepository(session).list(0, limit=2).items) == 2
    assert touched == []
