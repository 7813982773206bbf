"""The contract every repository keeps, written once.

* ``get(key)`` returns the DTO or raises :class:`~karr_db.errors.NotFoundError`
  naming the key; ``find(key)`` returns it or ``None``. ``get`` is ``find``
  plus :func:`found`, so the two cannot disagree.
* ``list(..., limit=, cursor=)`` returns a :class:`Page`; ``limit`` is checked
  by :func:`check_limit` against the one :data:`~karr_db.limits.PAGE_LIMIT`,
  and ``next_cursor`` is made and read by the one codec here
  (:func:`encode_cursor`, :func:`decode_cursor`).
* DTOs are frozen Pydantic models built from rows in one step by a
  :func:`row_builder` made once per shape of row (a :class:`RowShape` declares
  a DTO's columns and builds with one), which sets the fields directly, without
  validation: every value comes from a typed column (the TypeDecorators already
  parsed timestamps, JSON and booleans) and validating each row again costs
  more than the query on pages of events and runs. Everything else (a page of
  DTOs, a saved run's summary) is built by Pydantic's validating constructor.
  This module is the one place that skips validation, and it checks at import
  that a shape's columns are exactly its DTO's fields.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from karr_db.errors import (
    FieldError,
    InvalidQueryError,
    NotFoundError,
    PageLimitError,
    ValidationError,
)
from karr_db.limits import INT32_MAX, PAGE_LIMIT, integer_problem

if TYPE_CHECKING:
    from sqlalchemy import Result

__all__ = [
    "DTO",
    "PAGE_LIMIT",
    "Page",
    "RowShape",
    "check_limit",
    "decode_cursor",
    "encode_cursor",
    "found",
]

T = TypeVar("T")
D = TypeVar("D", bound=BaseModel)


class DTO(BaseModel):
    """Base of every DTO: immutable, built from rows before the session closes."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class Page(DTO, Generic[T]):
    """One page of ``items`` and the opaque cursor of the next (``None`` at the end).

    A numbered page (``page=``) also gives ``total``, how many rows match in all.
    Listings in id order (events, log lines) also resume after an id: a tail
    passes its last item's id as ``after_id``.
    """

    items: list[T]
    next_cursor: str | None = None
    total: int | None = None

    @property
    def has_more(self) -> bool:
        """Whether a next page follows (its cursor is ``next_cursor``)."""
        return self.next_cursor is not None

    __hash__ = None  # type: ignore[assignment]  # a page holds lists: never hashable


def found(entity: str, key: object, value: T | None) -> T:
    """``value``, or :class:`NotFoundError` naming ``entity`` and ``key``: ``get`` from ``find``."""
    if value is None:
        raise NotFoundError(entity, key)
    return value


def check_limit(limit: int, *, name: str = "limit") -> None:
    """Refuse a page size outside ``1..PAGE_LIMIT``, naming the parameter."""
    if not 1 <= limit <= PAGE_LIMIT:
        raise PageLimitError(name, f"must be between 1 and {PAGE_LIMIT}, got {limit}")


# --- the cursor codec ------------------------------------------------------------
#
# A cursor is base64url (unpadded) of compact JSON: whatever the listing needs to
# resume strictly after its last row (a keyset, never an offset). Opaque to
# callers, so its payload may change; a cursor that does not decode, or decodes
# to the wrong shape, is an InvalidQueryError and never a Python exception.


def encode_cursor(payload: Any) -> str:
    """The opaque cursor of a JSON-able ``payload``."""
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, read: Callable[[Any], T]) -> T:
    """``read`` applied to the payload of ``cursor``.

    ``read`` checks the payload's shape and converts it; any ``ValueError``,
    ``TypeError``, ``KeyError`` or ``IndexError`` it raises (a forged or foreign
    cursor, or one whose text holds a lone surrogate) becomes
    ``InvalidQueryError("malformed cursor")``, as do overflow
    (a forged timestamp at the calendar's edge) and recursion (forged nesting).
    An :class:`InvalidQueryError` of its own passes through.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        # JSON may escape a lone surrogate, which no database text can hold.
        json.dumps(payload, ensure_ascii=False).encode()
        return read(payload)
    except InvalidQueryError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        binascii.Error,
        OverflowError,
        RecursionError,
    ):
        raise InvalidQueryError("malformed cursor") from None


def resume_after(what: str, after_id: int, cursor: str | None) -> int:
    """The row id a page of events or log lines starts after: ``after_id``, or the one
    a ``[id]`` cursor carries; not both. Either is a non-negative 32-bit integer, as
    the id columns hold on PostgreSQL: a bad ``after_id`` is a :class:`ValidationError`
    of ``what`` naming it, a bad cursor a malformed one."""
    if cursor is None:
        problem = integer_problem(after_id, low=0, high=INT32_MAX)
        if problem:
            raise ValidationError(what, [FieldError("after_id", problem)])
        return after_id
    if after_id:
        raise InvalidQueryError("pass after_id or cursor, not both")
    return decode_cursor(cursor, _cursor_id)


def _cursor_id(payload: Any) -> int:
    if not isinstance(payload, list) or len(payload) != 1:
        raise ValueError("bad cursor fields")
    value: int = payload[0]
    if integer_problem(value, low=0, high=INT32_MAX):
        raise ValueError("bad cursor id")
    return value


# --- building DTOs -------------------------------------------------------------


def page_rows(
    result: Result[Any], limit: int, build: Callable[[Sequence[Any]], D]
) -> tuple[Sequence[Any], list[D]]:
    """The rows of an executed page statement (``limit`` plus one, to tell whether
    more follow) and the first ``limit`` built into DTOs.

    ``all()``, not iteration: it fetches every row with one driver call, where
    iterating a result fetches them one call a row."""
    rows = result.all()
    return rows, [build(row) for row in rows[:limit]]


@cache
def _field_names(dto: type[BaseModel]) -> tuple[str, ...]:
    return tuple(dto.model_fields)


_new = object.__new__
_set = object.__setattr__


def row_builder(dto: type[D], names: Iterable[str] | None = None) -> Callable[[Sequence[Any]], D]:
    """A function building ``dto`` from a row tuple whose values come in ``names``'
    order (default: every field, in declaration order), without validation.

    What :meth:`~pydantic.BaseModel.model_construct` does for a DTO whose every field
    is given, minus its per-call work (defaults, aliases, extra keys), which a page
    of 1,000 events or history points shows. The values must already be
    what the fields hold (the database typed them); ``tests/unit/test_row_builder.py``
    checks the result equals a validated DTO.
    """
    fields = tuple(names) if names is not None else _field_names(dto)
    unknown = set(fields) - set(dto.model_fields)
    if unknown or len(set(fields)) != len(fields):
        raise ValueError(f"{dto.__name__} has no field(s) {sorted(unknown)} or names repeat")
    omitted = {name: info for name, info in dto.model_fields.items() if name not in fields}
    if dto.__private_attributes__ or any(
        info.is_required() or info.default_factory is not None for info in omitted.values()
    ):
        # Shared defaults must be immutable, and private attributes need their own set-up.
        raise ValueError(f"{dto.__name__}: every field without a plain default needs a column")
    defaults = {name: info.default for name, info in omitted.items()}
    given = frozenset(fields)

    def built(row: Sequence[Any]) -> D:
        values = dict(zip(fields, row, strict=True))
        if defaults:
            values.update(defaults)
        instance = _new(dto)
        _set(instance, "__dict__", values)
        _set(instance, "__pydantic_fields_set__", set(given))
        _set(instance, "__pydantic_extra__", None)
        _set(instance, "__pydantic_private__", None)
        return instance

    return built


class RowShape(Generic[D]):
    """A DTO's columns declared once: ``select(*shape.columns)`` reads them, and
    :meth:`one`/:meth:`many` build the DTOs.

    ``columns`` maps every field of ``dto`` to a column or SQL expression;
    ``convert`` maps a field to a function applied to its value in Python (tags
    parsed from their stored forms, counters that read ``NULL`` as 0). A field
    left out, or a name that is not a field, is a ``TypeError`` at import time.
    """

    __slots__ = ("_build", "_convert", "columns", "dto")

    def __init__(
        self,
        dto: type[D],
        columns: Mapping[str, Any],
        *,
        convert: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        names = _field_names(dto)
        convert = dict(convert or {})
        missing = [n for n in names if n not in columns]
        extra = [n for n in (*columns, *convert) if n not in names]
        if missing or extra:
            raise TypeError(f"{dto.__name__} shape: missing {missing}, not fields {extra}")
        self.dto = dto
        self.columns: tuple[Any, ...] = tuple(columns[n] for n in names)
        self._convert = tuple((names.index(n), f) for n, f in convert.items())
        self._build = row_builder(dto, names)

    def one(self, row: Sequence[Any]) -> D:
        if not self._convert:
            return self._build(row)
        values = list(row)
        for index, function in self._convert:
            values[index] = function(values[index])
        return self._build(values)

    def many(self, rows: Sequence[Sequence[Any]]) -> list[D]:
        return [self.one(row) for row in rows]
