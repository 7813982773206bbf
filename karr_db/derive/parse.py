"""Checking stored documents as a save checks them, and what a save derives from them."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pydantic import ValidationError as PydanticValidationError

from karr_db.documents import (
    BenchmarkResult,
    ResultDocument,
    ValidatedDocument,
    load_document,
)
from karr_db.documents.checks import plain_json
from karr_db.documents.identity import clean_text, run_id_of
from karr_db.errors import KarrError
from karr_db.limits import MAX_INDEXED_BYTES
from karr_db.models.types import decode_json, dumps_document
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
    """What a save of the stored text derives; raises what :func:`_document` raises
    for a document a save would refuse.

    Stored documents are nearly all ones a save accepts, and the save path's
    checks, run on every adopted run, would take about as long as the rest of
    adoption. :func:`_quick` runs the same checks more cheaply and accepts only
    what they accept; whatever it is not sure of goes through :func:`_document`,
    which then decides (and names the reason for a refusal).
    """
    quick = _quick(text)
    if quick is not None:
        return quick
    doc = _document(text)
    return _Derived(
        doc.run_id,
        [
            _result(result, [(f.name, f.value) for f in flat])
            for result, flat in zip(doc.model.results, doc.metrics, strict=True)
        ],
        hardware_row(doc),
    )


def _quick(text: str | None) -> _Derived | None:
    """:func:`load_document`'s checks and results for stored text, or ``None`` where
    it might refuse the document (or where in doubt).

    Each step is the save path's, or one that accepts a subset of what it accepts:

    * the same parse (``json.loads``, markers decoded as :func:`_document` does);
    * the depth bound by :func:`~karr_db.documents.checks.plain_json`, the walk
      of exact type tests the save path takes for values built like parsed JSON;
    * the same canonical text (the fingerprint) and its string check;
    * the same Pydantic model;
    * the same flattening (:func:`_flat`), with a name too long or used twice
      left to the save path.
    """
    if text is None or not text.strip():
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if "$" in text or "\\u0024" in text:
        document = decode_json(document)
    if type(document) is not dict or not plain_json(document):
        return None
    canonical = dumps_document(document, sort_keys=True)
    if not clean_text(canonical):
        return None
    try:
        model = ResultDocument.model_validate(document)
    except PydanticValidationError:
        return None
    results: list[_Result] = []
    for result in model.results:
        flat: list[tuple[str, float]] = []
        if not _flat(result.metrics, "", flat):
            return None
        names = {name for name, _ in flat}
        if len(names) != len(flat) or any(
            len(name) > _SURELY_SHORT and len(name.encode("utf-8")) > MAX_INDEXED_BYTES
            for name in names
        ):
            return None
        results.append(_result(result, flat))
    run_id = run_id_of(canonical)
    hardware = None
    if model.system_info is not None:
        hardware = hardware_row(ValidatedDocument(document, model, run_id, []))
    return _Derived(run_id, results, hardware)


#: A name of at most this many characters fits the indexed bound in any encoding
#: (UTF-8 takes at most 4 bytes a character).
_SURELY_SHORT = MAX_INDEXED_BYTES // 4


def _flat(metrics: dict[str, Any], prefix: str, out: list[tuple[str, float]]) -> bool:
    """:func:`~karr_db.documents.flatten_metrics` into ``out``, in its order; ``False``
    where it would fail on a number (an int too large for a float). Names are
    checked by the caller."""
    for key, item in metrics.items():
        kind = type(item)
        if kind is float:
            out.append((prefix + key, item))
        elif kind is dict:
            if not _flat(item, f"{prefix}{key}.", out):
                return False
        elif kind is int:
            try:
                out.append((prefix + key, float(item)))
            except OverflowError:
                return False
        elif kind is bool:
            out.append((prefix + key, 1.0 if item else 0.0))
    return True


def _parse(texts: list[str | None]) -> list[_Derived | str]:
    """:func:`_derived` of each text, or why a save would refuse it."""
    parsed: list[_Derived | str] = []
    for text in texts:
        try:
            parsed.append(_derived(text))
        except (KarrError, ValueError) as exc:
            parsed.append(str(exc))
    return parsed
