"""KITT result documents (``metrics.json``): validation, metric flattening and identity.

The document itself is what the layer keeps (``runs.raw_json``); the Pydantic
model here only checks it and reads the fields that are normalised into
columns, so unknown keys survive untouched.

Split by concern: ``model`` (the Pydantic model), ``checks`` (what JSON both
dialects can store), ``flatten`` (metrics to rows) and ``identity`` (canonical
text and run id); :func:`load_document` here runs them in order.

Rules beyond what KITT documents say, decided here:

* **Strings** must be valid Unicode without the NUL character: PostgreSQL
  cannot store ``\\u0000`` in TEXT or JSONB, and a document that SQLite could
  keep but PostgreSQL could not would make the two backends disagree. Such a
  document is rejected on both dialects with a :class:`ValidationError` naming
  the field (keys included).
* **Indexed text** (``model``, ``engine``, ``suite_name`` and the flattened
  metric names) is at most :data:`~karr_db.limits.MAX_INDEXED_BYTES` bytes of
  UTF-8, which PostgreSQL's btree indexes hold on every input; SQLite would
  store more, so the bound is checked before either sees the document.
* **Integers** anywhere in a parsed document must be printable as JSON:
  Python refuses to render an int of more than ~4,300 digits as text.
* **Timestamps** are ISO-8601 text. KITT writes naive local times without
  saying which zone; the normalised columns read a naive value as UTC (the
  layer-wide rule of :func:`karr_db.models.types.parse_timestamp`), while the
  document keeps the original text.
* **Identity**: a run's id is the UUIDv5 of the document's canonical JSON
  (sorted keys, compact, non-finite and JSONB-fragile floats in the layer's
  marker form), so the same content gets the same id in every process and on
  both dialects, and re-importing a file never creates a second run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from karr_db.documents.checks import MAX_DEPTH as MAX_DEPTH
from karr_db.documents.checks import (
    TOO_DEEP,
    json_problems,
    json_value_problems,
    parse_text,
    plain_json,
    too_deep,
)
from karr_db.documents.flatten import flatten_into, flatten_metrics
from karr_db.documents.identity import (
    RUN_ID_NAMESPACE,
    canonical_json,
    clean_text,
    run_id_for,
    run_id_of,
)
from karr_db.documents.model import MAX_YEAR as MAX_YEAR
from karr_db.documents.model import MIN_YEAR as MIN_YEAR
from karr_db.documents.model import (
    WHAT,
    BenchmarkResult,
    CpuInfo,
    FlatMetric,
    GpuInfo,
    ResultDocument,
    SystemInfo,
    ValidatedDocument,
)
from karr_db.documents.model import Indexed as Indexed
from karr_db.documents.model import Int32 as Int32
from karr_db.documents.model import Size as Size
from karr_db.errors import FieldError, ValidationError
from karr_db.models.types import dumps_document

__all__ = [
    "RUN_ID_NAMESPACE",
    "BenchmarkResult",
    "CpuInfo",
    "FlatMetric",
    "GpuInfo",
    "ResultDocument",
    "SystemInfo",
    "ValidatedDocument",
    "canonical_json",
    "flatten_metrics",
    "json_value_problems",
    "load_document",
    "run_id_for",
]


def load_document(data: str | bytes | Mapping[str, Any]) -> ValidatedDocument:
    """Check a result document (JSON text or an already parsed object).

    Raises :class:`ValidationError` naming every bad field; nothing else.
    """
    document = parse_text(data) if isinstance(data, str | bytes) else data
    if not isinstance(document, Mapping):
        raise ValidationError(
            WHAT,
            [FieldError("<document>", f"expected a JSON object, got {type(document).__name__}")],
        )
    # A value built like parsed JSON (as parsed text is, unless too deep or holding
    # an integer of thousands of digits) can have only one problem, a string (NUL,
    # lone surrogate), and it shows in the canonical text: the full walks are
    # needed only when the text shows one, or for anything else.
    plain = type(document) is dict and plain_json(document)
    if not plain and too_deep(document):
        raise ValidationError(WHAT, [FieldError("<document>", TOO_DEEP)])
    document = dict(document)
    canonical: str | None = None
    if plain:
        canonical = dumps_document(document, sort_keys=True)
        errors = [] if clean_text(canonical) else list(json_problems(document, ()))
    else:
        errors = list(json_problems(document, ()))
    if errors:
        raise ValidationError(WHAT, errors)
    try:
        model = ResultDocument.model_validate(document)
    except PydanticValidationError as exc:
        raise ValidationError.from_pydantic(WHAT, exc) from None
    metrics: list[list[FlatMetric]] = []
    for index, result in enumerate(model.results):
        out: dict[str, float] = {}
        errors.extend(flatten_into(result.metrics, "", out, ("results", index, "metrics")))
        metrics.append([FlatMetric(name, value) for name, value in out.items()])
    if errors:
        raise ValidationError(WHAT, errors)
    if canonical is None:  # the checks above ensured string keys
        canonical = dumps_document(document, sort_keys=True)
    return ValidatedDocument(
        document=document, model=model, run_id=run_id_of(canonical), metrics=metrics
    )
