"""Checking stored documents as a save checks them, and what a save derives from them."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from karr_db.documents import (
    BenchmarkResult,
    ValidatedDocument,
    load_document,
)
from karr_db.errors import KarrError
from karr_db.models.types import decode_json
from karr_db.repositories.results.rows import hardware_row

#: One result of a document as its benchmark row needs it: test name, version,
#: run number, passed, timestamp text, and its flattened (name, value) pairs.
_Result = tuple[str, str | None, int | None, bool | None, str | None, list[tuple[str, float]]]


class _Derived(NamedTuple):
    """What derivation needs of one document a save accepts: exactly what
    :func:`load_document` and :func:`hardware_row` give, without the rest."""

    fingerprint: str
    results: list[_Result]
    #: The ``hardware`` row a save writes (its first column the fingerprint), or None.
    hardware: tuple[Any, ...] | None


def _result(result: BenchmarkResult, flat: list[tuple[str, float]]) -> _Result:
    return (
        result.test_name,
        result.test_version,
        result.run_number,
        result.passed,
        result.timestamp,
        flat,
    )


def _document(text: str | None) -> ValidatedDocument:
    """The stored text read as the layer reads ``raw_json`` (markers decoded), then
    checked as a save checks it. Text without a ``$`` holds no marker and takes
    the cheaper text path of :func:`load_document`."""
    if text is None or not text.strip():
        raise ValueError("no document stored")
    if "$" not in text and "\\u0024" not in text:
        return load_document(text)
    return load_document(decode_json(json.loads(text)))


def _derived(text: str | None) -> _Derived:
    """What a save of the stored text derives, by the save path's own checks
    (:func:`load_document`) and hardware row; raises what :func:`_document`
    raises for a document a save would refuse."""
    doc = _document(text)
    return _Derived(
        doc.run_id,
        [
            _result(result, [(f.name, f.value) for f in flat])
            for result, flat in zip(doc.model.results, doc.metrics, strict=True)
        ],
        hardware_row(doc),
    )


def _parse(texts: list[str | None]) -> list[_Derived | str]:
    """:func:`_derived` of each text, or why a save would refuse it."""
    parsed: list[_Derived | str] = []
    for text in texts:
        try:
            parsed.append(_derived(text))
        except (KarrError, ValueError) as exc:
            parsed.append(str(exc))
    return parsed
