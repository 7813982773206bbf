"""DTOs built from row tuples (``row_builder``) are the DTOs validation would build."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from karr_db.repositories._common import row_builder
from karr_db.repositories.events import EventDTO
from karr_db.repositories.results.dto import AggregateRow, MetricPoint, RunSummary


def test_equals_the_validated_dto() -> None:
    row = (7, "run.saved", "r1", {"a": [1, 2.5, None]}, datetime(2024, 5, 1, tzinfo=UTC))
    built = row_builder(EventDTO)(row)
    validated = EventDTO.model_validate(dict(zip(EventDTO.model_fields, row, strict=True)))
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    with pytest.raises(ValueError, match="frozen"):
        built.id = 8  # type: ignore[misc]


def test_omitted_fields_take_their_defaults() -> None:
    names = [n for n in RunSummary.model_fields if n not in ("gpu_model", "gpu_count")]
    values = ["r1", "m", "e", "s", None, True, 1, 1, 0, 1.5, "1.0", None, "docker"]
    built = row_builder(RunSummary, names)(values)
    assert built == RunSummary.model_validate(dict(zip(names, values, strict=True)))
    assert built.gpu_model is None
    assert "gpu_model" not in built.model_fields_set


def test_a_copy_does_not_share_state() -> None:
    build = row_builder(MetricPoint)
    one = build(("r1", None, "t", 1, 2.0, "m", "e"))
    two = build(("r2", None, "t", 1, 3.0, "m", "e"))
    changed = one.model_copy(update={"value": 9.0})
    assert (one.value, two.value, changed.value) == (2.0, 3.0, 9.0)
    assert one.model_fields_set == two.model_fields_set


def test_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="no field"):
        row_builder(MetricPoint, ["run_id", "nope"])
    with pytest.raises(ValueError, match="plain default"):
        row_builder(AggregateRow, ["metric"])  # group, count, ... are required
    with pytest.raises(ValueError, match="shorter"):
        row_builder(MetricPoint)(("too", "short"))
