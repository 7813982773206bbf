"""Every difference between the SQLite and PostgreSQL schemas, in one place.

The reference declares TEXT/INTEGER/REAL columns on SQLite and richer types on
PostgreSQL ("PostgreSQL Differences"). These decorators give each dialect its
declared type while Python code sees one set of values: aware UTC datetimes,
bools, floats and parsed JSON.

SQLAlchemy's PostgreSQL dialect is imported only by the PostgreSQL branches
(:func:`_timestamptz`, :func:`_jsonb`), where that dialect is already loaded: a SQLite user
never pays for importing it. The other types are SQLAlchemy's generic ones,
which the dialect modules merely re-export, so the DDL is the same.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import BOOLEAN, DOUBLE_PRECISION, REAL, TypeDecorator, TypeEngine

__all__ = [
    "Double",
    "IntBool",
    "JSONDocument",
    "UTCDateTime",
    "decode_json",
    "dumps_document",
    "encode_json",
    "format_timestamp",
    "parse_timestamp",
    "utcnow",
]


def _timestamptz() -> TypeEngine[Any]:
    """PostgreSQL's ``TIMESTAMP WITH TIME ZONE``."""
    from sqlalchemy.dialects.postgresql import TIMESTAMP

    return TIMESTAMP(timezone=True)


def _jsonb() -> TypeEngine[Any]:
    """PostgreSQL's ``JSONB``."""
    from sqlalchemy.dialects.postgresql import JSONB

    return JSONB()


# --- timestamps -------------------------------------------------------------

#: Fixed width, UTC, space separated: on SQLite, ordering the text orders the
#: times, and it sorts correctly against the earlier system's
#: ``'YYYY-MM-DD HH:MM:SS'`` UTC values.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f+00:00"


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def format_timestamp(value: datetime) -> str:
    """Render an aware datetime in the one fixed-width UTC text form."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()!r}: pass a timezone-aware datetime")
    # isoformat pads the year to four digits; strftime("%Y") does not below 1000.
    utc = _in_utc(value).replace(tzinfo=None)
    return utc.isoformat(sep=" ", timespec="microseconds") + "+00:00"


def parse_timestamp(value: str | datetime | None) -> datetime | None:
    """Read any timestamp the layer or the earlier system wrote.

    Naive values are taken as UTC (the documented rule); empty text means
    unknown and reads as ``None``.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed: datetime | None = value
    elif value[:1].isdigit():
        # The common case, the canonical text this layer writes, parsed as is
        # (stripping and re-zoning every stored timestamp was a quarter of a page).
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = _parse_text(value)
    else:
        parsed = _parse_text(value)
    if parsed is None:
        return None
    if parsed.tzinfo is UTC:  # what fromisoformat gives for +00:00, and psycopg in UTC
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return _in_utc(parsed)


def _in_utc(value: datetime) -> datetime:
    """``value`` in UTC; a ``ValueError`` (not an ``OverflowError``) when that falls
    outside the years 1-9999, so every reader of stored text refuses it as it
    refuses any other unreadable time."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value.isoformat()!r} falls outside the years 1-9999 once converted to UTC"
        ) from None


def _parse_text(value: str) -> datetime | None:
    text = value.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from None


class UTCDateTime(TypeDecorator[datetime]):
    """TEXT (fixed-width UTC ISO-8601) on SQLite, TIMESTAMPTZ on PostgreSQL.

    ``text_only`` keeps TEXT on PostgreSQL too, for the reference's timestamp
    columns that are neither ``*_at`` nor ``timestamp``.
    """

    impl = Text
    cache_ok = True

    def __init__(self, text_only: bool = False) -> None:
        super().__init__()
        self.text_only = text_only

    def _native(self, dialect: Dialect) -> bool:
        return dialect.name == "postgresql" and not self.text_only

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if self._native(dialect):
            return _timestamptz()
        return Text()

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        text = format_timestamp(value)  # validates awareness on both dialects
        return value.astimezone(UTC) if self._native(dialect) else text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return parse_timestamp(value)


# --- booleans ---------------------------------------------------------------


class IntBool(TypeDecorator[bool]):
    """INTEGER 0/1 on SQLite, BOOLEAN on PostgreSQL."""

    impl = Integer
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return BOOLEAN()
        return Integer()

    def process_bind_param(self, value: bool | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, bool | int):
            raise TypeError(f"expected a bool, got {type(value).__name__}")
        return bool(value) if dialect.name == "postgresql" else int(bool(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> bool | None:
        return None if value is None else bool(value)


# --- floats -----------------------------------------------------------------

#: SQLite turns a NaN REAL into NULL, so NaN is kept as this text instead; a
#: REAL-affinity column leaves non-numeric text untouched.
SQLITE_NAN = "NaN"


class Double(TypeDecorator[float]):
    """REAL on SQLite, DOUBLE PRECISION on PostgreSQL; NaN survives both."""

    impl = REAL
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return DOUBLE_PRECISION()
        return REAL()

    def process_bind_param(self, value: float | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = float(value)
        if dialect.name != "postgresql" and math.isnan(value):
            return SQLITE_NAN
        return value

    def bind_processor(self, dialect: Dialect) -> Any:
        # The SQLite REAL impl would coerce every bound value with float(),
        # turning the 'NaN' text straight back into a NaN that SQLite stores as
        # NULL; floats need no driver-level conversion on either dialect.
        return functools.partial(self.process_bind_param, dialect=dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        return None if value is None else float(value)


# --- JSON -------------------------------------------------------------------

#: JSON has no NaN or infinities (and PostgreSQL's JSONB rejects them), so a
#: non-finite float is stored as ``{"$float": "NaN"}``. JSONB also keeps numbers
#: as ``numeric``, which reads ``1e+16`` back as the int 10000000000000000 and
#: ``-0.0`` as ``0.0``; such floats are stored as ``{"$float": "1e+16"}`` (their
#: ``repr``) so a reader gets the same float back. An object of the caller's
#: that happens to look like a marker is wrapped in ``{"$escaped": ...}`` so that
#: the encoding stays lossless for every input.
FLOAT_MARKER = "$float"
ESCAPE_MARKER = "$escaped"
_MARKERS = frozenset({FLOAT_MARKER, ESCAPE_MARKER})
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float_token(value: float) -> str | None:
    """The marker text of a float JSON (or JSONB) cannot keep as a float, else ``None``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e+" in text or (value == 0.0 and math.copysign(1.0, value) < 0):
        return text
    return None


def _marked_float(token: str) -> float | None:
    if token in _NON_FINITE:
        return _NON_FINITE[token]
    try:
        return float(token)
    except ValueError:
        return None


def encode_json(value: Any) -> Any:
    """Turn a JSON-like value into one that strict JSON (and JSONB) can hold."""
    if isinstance(value, float):
        token = _float_token(value)
        return value if token is None else {FLOAT_MARKER: token}
    if isinstance(value, dict):
        encoded = {str(k): encode_json(v) for k, v in value.items()}
        if len(encoded) == 1 and next(iter(encoded)) in _MARKERS:
            return {ESCAPE_MARKER: encoded}
        return encoded
    if isinstance(value, list | tuple):
        return [encode_json(v) for v in value]
    return value


def decode_json(value: Any) -> Any:
    """Invert :func:`encode_json`."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == FLOAT_MARKER and isinstance(inner, str):
                number = _marked_float(inner)
                if number is not None:
                    return number
            if key == ESCAPE_MARKER and isinstance(inner, dict):
                return {k: decode_json(v) for k, v in inner.items()}
        return {k: decode_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_json(v) for v in value]
    return value


def dumps_json(value: Any) -> str:
    """Serialise to the compact strict JSON text stored on SQLite."""
    return json.dumps(
        encode_json(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )


#: Text that :func:`encode_json` might have changed: an exponent float (``1e+16``),
#: a negative zero, or a marker key; anything else JSON-serialises unchanged.
_MAY_NEED_ENCODING = re.compile(r'e\+|-0\.0(?![0-9])|"\$(?:float|escaped)"')


def dumps_document(value: Any, *, sort_keys: bool = False) -> str:
    """:func:`dumps_json` of a value whose object keys are all strings, usually without
    the :func:`encode_json` walk.

    Serialising a result document directly and checking the text is cheaper
    than re-building it; when the text shows a value that needs a marker
    (non-finite floats make ``json.dumps`` refuse), the full encoding is used.
    (Keys must be strings: ``json.dumps`` writes a ``True`` key as ``"true"``,
    :func:`encode_json` as ``"True"``.)
    """
    options: dict[str, Any] = {
        "ensure_ascii": False,
        "allow_nan": False,
        "separators": (",", ":"),
        "sort_keys": sort_keys,
    }
    try:
        text = json.dumps(value, **options)
    except (ValueError, TypeError):
        pass
    else:
        if not _MAY_NEED_ENCODING.search(text):
            return text
    return json.dumps(encode_json(value), **options)


class JSONDocument(TypeDecorator[Any]):
    """TEXT on SQLite, JSONB on PostgreSQL; NaN and infinities round-trip."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return _jsonb()
        return Text()

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return encode_json(value)
        return dumps_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name != "postgresql":
            return loads_json(value)
        return decode_json(value)


def loads_json(text: str | None) -> Any:
    """The value of stored JSON text (SQLite's column, or JSONB read as ``::text``).

    Reading JSONB as text and decoding it here spares PostgreSQL readers the
    :func:`decode_json` walk over psycopg's parsed value whenever the text has
    no marker, as on SQLite.
    """
    if text is None or not text or (text[0].isspace() and not text.strip()):
        return None
    # json.loads also accepts the bare NaN/Infinity tokens that the earlier
    # system's json.dumps wrote.
    parsed = json.loads(text)
    if "$" not in text and "\\u0024" not in text:
        # No "$" anywhere, so no marker key: the walk of decode_json would
        # change nothing (it was most of reading an event or a document back).
        return parsed
    return decode_json(parsed)
