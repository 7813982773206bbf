"""Metrics flattened to (dotted name, float) pairs, the rows of ``metrics``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from karr_db.documents.checks import (
    location,
)
from karr_db.documents.model import WHAT, FlatMetric
from karr_db.errors import FieldError, ValidationError
from karr_db.limits import MAX_INDEXED_BYTES


def flatten_into(
    value: Mapping[str, Any], prefix: str, out: dict[str, float], path: tuple[str | int, ...]
) -> Iterator[FieldError]:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            yield from flatten_into(item, f"{name}.", out, (*path, key))
            continue
        if isinstance(item, bool):
            number = 1.0 if item else 0.0
        elif isinstance(item, int | float):
            try:
                number = float(item)
            except OverflowError:
                yield FieldError(location((*path, key)), "integer too large for a metric value")
                continue
        else:
            continue  # strings, lists and nulls live only in raw_json
        if len(name.encode("utf-8")) > MAX_INDEXED_BYTES:
            yield FieldError(
                location((*path, key)),
                f"metric name is longer than the {MAX_INDEXED_BYTES} bytes of UTF-8 "
                "an indexed field holds once flattened",
            )
            continue
        if name in out:
            yield FieldError(
                location((*path, key)), f"metric name {name!r} is used twice once flattened"
            )
            continue
        out[name] = number


def flatten_metrics(metrics: Mapping[str, Any]) -> list[FlatMetric]:
    """Every numeric value of a ``metrics`` object, nested objects under dotted names.

    Booleans count as 1.0/0.0; strings, lists and nulls are skipped (they stay
    in the document). NaN and infinities are kept as they are.
    """
    out: dict[str, float] = {}
    errors = list(flatten_into(metrics, "", out, ("metrics",)))
    if errors:
        raise ValidationError(WHAT, errors)
    return [FlatMetric(name, value) for name, value in out.items()]
