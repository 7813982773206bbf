"""KITT result documents (``metrics.json``): validation, metric flattening and identity.

The document itself is what the layer keeps (``runs.raw_json``); the Pydantic
model here only checks it and reads the fields that are normalised into
columns, so unknown keys survive untouched.

:func:`load_document` checks a document in this order: what JSON both dialects
can store, the Pydantic model, the flattened metrics (rows of ``metrics``), then
the run id of its canonical text.

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

import json
import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from karr_db.errors import FieldError, ValidationError
from karr_db.limits import INT32_MAX, INT32_MIN, MAX_INDEXED_BYTES, text_problem
from karr_db.models.types import dumps_document, dumps_json, encode_json, parse_timestamp

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
    "json_object_problems",
    "json_value_problems",
    "load_document",
    "run_id_for",
]

#: What the documents are called in error messages.
WHAT = "result document"


# --- the model -----------------------------------------------------------------

#: INTEGER columns are 32-bit on PostgreSQL; a larger count is a bad document.
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]


def _check_size(value: int | float) -> int | float:
    if not math.isfinite(value) or not INT32_MIN <= round(value) <= INT32_MAX:
        raise ValueError("must be a finite number that fits a 32-bit integer column")
    return value


#: A size in GB: KITT may write a float; the INTEGER column keeps it rounded.
Size = Annotated[int | float, AfterValidator(_check_size)]


#: Years the normalised timestamp columns can hold on both dialects (SQLite
#: keeps fixed-width text, which needs four-digit years).
MIN_YEAR, MAX_YEAR = 1000, 9999


def _check_timestamp(value: str) -> str:
    if not value.strip():
        raise ValueError("timestamp is empty: give an ISO-8601 date and time")
    try:
        parsed = parse_timestamp(value)  # raises ValueError naming the text
    except OverflowError:
        parsed = None
    if parsed is None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"timestamp must fall in the years {MIN_YEAR}-{MAX_YEAR} (UTC)")
    return value


#: ISO-8601 text whose UTC reading fits the timestamp columns.
Timestamp = Annotated[str, AfterValidator(_check_timestamp)]


def _check_indexed(value: str) -> str:
    problem = text_problem(value, indexed=True)
    if problem:
        raise ValueError(problem)
    return value


#: Text of an indexed column (see :mod:`karr_db.limits`).
Indexed = Annotated[str, AfterValidator(_check_indexed)]


class _Part(BaseModel):
    """Strict (no "5" for 5) and open: unknown keys are allowed and ignored here."""

    model_config = ConfigDict(strict=True, extra="allow")


class GpuInfo(_Part):
    model: str | None = None
    vram_gb: Size | None = None
    count: Int32 | None = None


class CpuInfo(_Part):
    model: str | None = None
    cores: Int32 | None = None


class SystemInfo(_Part):
    gpu: GpuInfo | None = None
    cpu: CpuInfo | str | None = None
    ram_gb: Size | None = None
    environment_type: str | None = None
    fingerprint: str | None = None


class BenchmarkResult(_Part):
    test_name: Indexed
    test_version: str | None = None
    run_number: Int32 | None = None
    passed: bool | None = None
    timestamp: Timestamp | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)


class ResultDocument(_Part):
    """The fields of a KITT result document that the layer normalises."""

    model: Indexed
    engine: Indexed
    timestamp: Timestamp
    suite_name: Indexed | None = None
    passed: bool | None = None
    total_benchmarks: Int32 | None = None
    passed_count: Int32 | None = None
    failed_count: Int32 | None = None
    total_time_seconds: float | None = None
    kitt_version: str | None = None
    results: list[BenchmarkResult] = Field(default_factory=list)
    system_info: SystemInfo | None = None


class FlatMetric(NamedTuple):
    """One numeric metric value under its dotted name.

    A named tuple, not a frozen dataclass: a document has ~200 of them, and
    building frozen dataclasses was a third of validating one (re-deriving
    20,000 adopted runs builds four million).
    """

    name: str
    value: float


@dataclass(frozen=True)
class ValidatedDocument:
    """A document that passed every check, with what saving it needs."""

    document: dict[str, Any]
    model: ResultDocument
    run_id: str
    #: One list of flattened metrics per item of ``results``.
    metrics: list[list[FlatMetric]]


# --- JSON both dialects can store ------------------------------------------------


#: Deepest nesting of arrays and objects a document may have. KITT writes a
#: handful of levels; the bound keeps the recursive checks and encoders here
#: (and PostgreSQL's JSON parser) far from their stack limits, so a hostile
#: document is refused by name instead of crashing the caller.
MAX_DEPTH = 64
TOO_DEEP = f"arrays and objects nested deeper than {MAX_DEPTH} levels"


def parse_text(data: str | bytes) -> Any:
    try:
        # Python's json accepts the bare NaN/Infinity tokens KITT writes.
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise ValidationError(WHAT, [FieldError("<document>", f"not UTF-8 text: {exc}")]) from None
    except ValueError as exc:
        raise ValidationError(WHAT, [FieldError("<document>", f"not JSON: {exc}")]) from None
    except RecursionError:
        raise ValidationError(WHAT, [FieldError("<document>", TOO_DEEP)]) from None


def too_deep(value: Any) -> bool:
    """Whether ``value`` nests deeper than :data:`MAX_DEPTH` (iterative: no recursion limit)."""
    if not isinstance(value, Mapping | list | tuple):
        return False
    # Only containers go on the stack (scalars, most of a document, are skipped
    # where they are found): this walk ran on every value of every document.
    scalars = (str, int, float)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children: Any = item.values() if isinstance(item, Mapping) else item
        for child in children:
            if child is None or isinstance(child, scalars):
                continue
            if isinstance(child, Mapping | list | tuple):
                stack.append((child, depth + 1))
    return False


#: Exactly the types ``json.loads`` produces for scalars (no subclasses: an
#: ``IntEnum`` or a ``str`` subclass goes through the full checks).
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


#: Integers shorter than this many bits (about 3,000 digits) are below any digit
#: limit Python allows, so always printable; longer ones are tried.
PRINTABLE_BITS = 10_000


def plain_json(value: dict[str, Any]) -> bool:
    """Whether ``value`` is built like parsed JSON: only ``dict`` objects with ``str``
    keys, ``list`` arrays and plain scalars, no deeper than :data:`MAX_DEPTH`, no
    integer too long to write.

    Such a value can have only one problem :func:`json_problems` finds, a string
    both dialects cannot store, and that shows in its canonical text (see
    :func:`load_document`); so one walk of exact type tests replaces the depth
    walk and the generator walk of every value, a large part of a bulk save.
    ``False`` means "not sure": the full checks then decide and name the field.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    plain = _PLAIN_SCALARS
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if type(item) is dict:
            for key in item:
                if type(key) is not str:
                    return False
            children: Any = item.values()
        else:
            children = item
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind not in plain or (kind is int and child.bit_length() >= PRINTABLE_BITS):
                return False
    return True


def location(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "<document>"


def _unprintable(value: int) -> bool:
    """Whether Python refuses to write ``value`` as decimal text (its digit limit)."""
    if value.bit_length() < PRINTABLE_BITS:
        return False
    try:
        str(value)
    except ValueError:
        return True
    return False


def json_problems(
    value: Any, path: tuple[str | int, ...], *, tuples: bool = False
) -> Iterator[FieldError]:
    """Every place where ``value`` is not a JSON value both dialects can store."""
    if value is None or isinstance(value, bool | float):
        return
    if isinstance(value, int):
        if _unprintable(value):
            yield FieldError(location(path), "integer has too many digits to be written as JSON")
        return
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            yield FieldError(location(path), f"string {problem}")
        return
    if isinstance(value, list) or (tuples and isinstance(value, tuple)):
        for index, item in enumerate(value):
            yield from json_problems(item, (*path, index), tuples=tuples)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield FieldError(location((*path, str(key))), "object keys must be strings")
                continue
            problem = text_problem(key)
            if problem:
                yield FieldError(location((*path, repr(key))), f"key {problem}")
                continue
            yield from json_problems(item, (*path, key), tuples=tuples)
        return
    yield FieldError(location(path), f"{type(value).__name__} is not a JSON value")


def json_value_problems(value: Any, field: str) -> list[FieldError]:
    """Why ``value`` (a campaign's configuration, an event's data) cannot be stored as
    JSON on both dialects: the document rules, applied to any JSON value."""
    if too_deep(value):
        return [FieldError(field, TOO_DEEP)]
    return list(json_problems(value, (field,), tuples=True))


def json_object_problems(
    value: Any, field: str, *, max_bytes: int | None = None
) -> list[FieldError]:
    """Why ``value`` cannot be stored in ``field`` as a JSON object on both dialects
    (a campaign's configuration, an engine profile's, an agent's hardware report):
    :func:`json_value_problems`, an object, and at most ``max_bytes`` of JSON text."""
    if not isinstance(value, Mapping):
        return [FieldError(field, "must be a JSON object")]
    obj = dict(value)
    problems = json_value_problems(obj, field)
    if problems:
        return problems
    try:
        size = len(dumps_json(obj).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        return [FieldError(field, f"not JSON-serialisable: {exc}")]
    if max_bytes is not None and size > max_bytes:
        return [FieldError(field, f"is {size} bytes of JSON, more than {max_bytes}")]
    return []


# --- metrics ---------------------------------------------------------------------


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


# --- identity --------------------------------------------------------------------

#: Namespace of content-derived run ids. Never change it: every stored id
#: depends on it.
RUN_ID_NAMESPACE = uuid.UUID("6f1f3a52-58c1-4d8e-9a57-2b0c7d1e4a90")


def canonical_json(document: Any) -> str:
    """The one text of a document that its id is derived from (key order ignored)."""
    if _string_keys_only(document):
        return dumps_document(document, sort_keys=True)
    return json.dumps(
        encode_json(document),
        sort_keys=True,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )


def _string_keys_only(value: Any) -> bool:
    """Whether every object key is a string (always true of parsed JSON)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _string_keys_only(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_string_keys_only(v) for v in value)
    return True


def run_id_for(document: Any) -> str:
    """The content-derived run id: UUIDv5 of the canonical JSON, as a full UUID string."""
    return run_id_of(canonical_json(document))


def run_id_of(canonical: str) -> str:
    return str(uuid.uuid5(RUN_ID_NAMESPACE, canonical))


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
        # json.dumps escapes NUL as \u0000 and writes lone surrogates raw, which
        # text_problem finds (UTF-8 refuses them).
        clean = "\\u0000" not in canonical and text_problem(canonical) is None
        errors = [] if clean else list(json_problems(document, ()))
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
