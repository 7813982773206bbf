"""The filters runs are selected by: :class:`RunFilter`, its SQL conditions, the
whitelisted order and group fields, the page limit and the keyset cursors.

Every value a caller can pass ends up here as a bound parameter or a
whitelisted column, never as SQL text. The reads are lambda statements
(:func:`filtered`): SQLAlchemy builds each shape's statement once and binds
each call's values; the hardware headline is joined the one way
(:func:`with_hardware`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import (
    ColumnElement,
    Select,
    StatementLambdaElement,
    and_,
    bindparam,
    func,
    select,
)

from karr_db.errors import InvalidQueryError
from karr_db.limits import text_problem
from karr_db.models import Hardware, Run
from karr_db.models.types import parse_timestamp
from karr_db.repositories._common import decode_cursor, encode_cursor


class RunFilter(BaseModel):
    """The filters runs can be selected by; any other key is an error.

    ``since`` is inclusive and ``until`` exclusive; naive datetimes are UTC.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    #: Runs of any of these models (exact names; what :meth:`match_models` finds).
    models: tuple[str, ...] | None = None
    engine: str | None = None
    suite_name: str | None = Field(
        default=None, validation_alias=AliasChoices("suite_name", "suite")
    )
    passed: bool | None = None
    kitt_version: str | None = None
    gpu_model: str | None = None
    environment_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("models")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            cls._text(name)
        return value

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        try:
            return parse_timestamp(value)
        except OverflowError:
            raise ValueError("falls outside the years 1-9999 once converted to UTC") from None

    @field_validator(
        "model", "engine", "suite_name", "kitt_version", "gpu_model", "environment_type"
    )
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        # Compared with stored text: a value no dialect can store matches nothing,
        # but PostgreSQL would refuse the statement and SQLite's driver the encoding.
        problem = None if value is None else text_problem(value)
        if problem:
            raise ValueError(problem)
        return value


#: Characters that make a model filter a glob pattern (``fnmatch``'s).
GLOB_CHARACTERS = frozenset("*?[")


class ModelMatch(BaseModel):
    """The stored model names a model filter stands for, and how they were found.

    ``how`` is ``"exact"`` (a stored name equals the text), ``"glob"`` (the text
    has ``*``, ``?`` or ``[...]`` and matches whole names) or ``"substring"``
    (no name equals the text; these contain it). Both glob and substring
    ignore case: KITT's models are paths such as
    ``/home/kitt/.kitt/models/Llama-3.1-8B-Instruct-Q4_K_M.gguf``, which
    ``llama`` and ``*llama*q4*`` both find.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    how: str
    models: tuple[str, ...]


def match_models(text: str, stored: Iterable[str]) -> ModelMatch:
    """Which of the ``stored`` model names ``text`` selects (see :class:`ModelMatch`).

    Matched in Python over the distinct stored names, so both dialects give the
    same answer whatever their collation or ``LIKE`` rules.
    """
    names = sorted(set(stored))
    if GLOB_CHARACTERS.isdisjoint(text):
        if text in names:
            return ModelMatch(text=text, how="exact", models=(text,))
        folded = text.casefold()
        found = tuple(n for n in names if folded in n.casefold())
        return ModelMatch(text=text, how="substring", models=found)
    pattern = text.casefold()
    found = tuple(n for n in names if fnmatch.fnmatchcase(n.casefold(), pattern))
    return ModelMatch(text=text, how="glob", models=found)


#: Order fields of :meth:`ResultsRepository.list`.
ORDER_FIELDS: dict[str, Any] = {
    "timestamp": Run.timestamp,
    "created_at": Run.created_at,
    "model": Run.model,
    "engine": Run.engine,
    "suite_name": Run.suite_name,
    "kitt_version": Run.kitt_version,
    "total_time_seconds": Run.total_time_seconds,
}
_DATETIME_ORDER = frozenset({"timestamp", "created_at"})

#: What a leaderboard can group by.
GROUP_FIELDS: dict[str, Any] = {
    "model": Run.model,
    "engine": Run.engine,
    "suite_name": Run.suite_name,
    "kitt_version": Run.kitt_version,
    "gpu_model": Hardware.gpu_model,
    "environment_type": Hardware.environment_type,
}
#: What a leaderboard can be ordered by (besides its group fields).
LEADERBOARD_ORDER_FIELDS = ("avg", "min", "max", "median", "count")


def parse_filter(filters: RunFilter | Mapping[str, Any] | None) -> RunFilter:
    if filters is None:
        return RunFilter()
    if isinstance(filters, RunFilter):
        return filters
    if not isinstance(filters, Mapping):
        raise InvalidQueryError(
            f"invalid run filter: expected a mapping of filters, got {type(filters).__name__}"
        )
    try:
        return RunFilter.model_validate(dict(filters))
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: "
            + ("unknown filter" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidQueryError(f"invalid run filter: {problems}") from None


#: Equality filters of a :class:`RunFilter` and the columns they compare.
_EQUAL: dict[str, Any] = {
    "model": Run.model,
    "engine": Run.engine,
    "suite_name": Run.suite_name,
    "passed": Run.passed,
    "kitt_version": Run.kitt_version,
    "gpu_model": Hardware.gpu_model,
    "environment_type": Hardware.environment_type,
}


#: Each filter's condition, its value a named placeholder (``f_<name>``), built once.
_CONDITIONS: dict[str, ColumnElement[bool]] = {
    **{
        name: column == bindparam(f"f_{name}", type_=column.type) for name, column in _EQUAL.items()
    },
    "models": Run.model.in_(bindparam("f_models", expanding=True)),
    "since": Run.timestamp >= bindparam("f_since", type_=Run.timestamp.type),
    "until": Run.timestamp < bindparam("f_until", type_=Run.timestamp.type),
}


def run_conditions(f: RunFilter) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
    """The conditions of the filters ``f`` sets (built once, their values named
    placeholders) and the values to execute them with."""
    names = [name for name in _CONDITIONS if getattr(f, name) is not None]
    params = {f"f_{name}": getattr(f, name) for name in names}
    if f.models is not None:
        params["f_models"] = list(f.models)
    return [_CONDITIONS[name] for name in names], params


def filtered(
    stmt: StatementLambdaElement, f: RunFilter, params: dict[str, Any]
) -> StatementLambdaElement:
    """``stmt`` restricted to the runs ``f`` selects (the hardware headline joined
    when a filter needs it), the filters' values added to ``params``.

    The reads are lambda statements whose lambdas hold SQL elements and named
    placeholders, never values: ``track_on`` names what decides the SQL (here,
    which filters are set), so SQLAlchemy builds and compiles each shape once and
    the values come with the execution. (A value in a lambda's closure would make
    SQLAlchemy copy the whole statement on every execution.)
    """
    conditions, values = run_conditions(f)
    params.update(values)
    shape = " ".join(values)
    if filters_hardware(f):
        return stmt.add_criteria(lambda s: with_hardware(s).where(*conditions), track_on=[shape])
    return stmt.add_criteria(lambda s: s.where(*conditions), track_on=[shape])


def filters_hardware(f: RunFilter) -> bool:
    """Whether ``f`` filters on a hardware column (it needs the headline joined)."""
    return f.gpu_model is not None or f.environment_type is not None


def first_hardware_id(run_id: Any = Run.id, outer: Any = Run) -> Any:
    """The run's first hardware row id (a run shows one hardware headline, never
    duplicates), correlated to ``outer`` only (not to ``hardware``)."""
    return (
        select(func.min(Hardware.id))
        .where(Hardware.run_id == run_id)
        .correlate(outer)
        .scalar_subquery()
    )


_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


def with_hardware(stmt: _S, needed: bool = True) -> _S:
    """Join each run's first hardware row, when ``needed``.

    The join costs a correlated ``min(id)`` lookup per run: on 20,000 runs it
    was most of a ``count`` and of a metric history, so statements that show
    no hardware column and filter on none leave it out.
    """
    if not needed:
        return stmt
    return stmt.outerjoin(
        Hardware, and_(Hardware.run_id == Run.id, Hardware.id == first_hardware_id())
    )


# --- keyset cursors -----------------------------------------------------------
#
# A cursor (the common codec's) holds a small JSON object: the order field and direction
# it was made for, the last row's order value (as text, ``None`` for NULL) and
# its id. Rows are ordered by (value, id) with NULLs last in both directions,
# so the page after a cursor is "rows strictly after that pair", which stays
# right however many runs are inserted meanwhile.


def encode_run_cursor(order_by: str, descending: bool, value: Any, run_id: str) -> str:
    if isinstance(value, datetime):
        text: str | None = value.isoformat()
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = None if value is None else str(value)
    return encode_cursor({"o": order_by, "d": descending, "v": text, "id": run_id})


def decode_run_cursor(cursor: str, order_by: str, descending: bool) -> tuple[Any, str]:
    def read(payload: Any) -> tuple[Any, str]:
        text, run_id = payload["v"], payload["id"]
        if not isinstance(run_id, str) or not (text is None or isinstance(text, str)):
            raise ValueError("bad cursor fields")
        if payload["o"] != order_by or payload["d"] is not descending:
            raise InvalidQueryError(
                f"cursor was made for order {payload['o']!r} "
                f"({'descending' if payload['d'] else 'ascending'}); "
                "pass the same order_by and descending as the first page"
            )
        if text is None:
            value: Any = None
        elif order_by in _DATETIME_ORDER:
            value = parse_timestamp(text)
        elif order_by == "total_time_seconds":
            value = float(text)
        else:
            value = text
        return value, run_id

    return decode_cursor(cursor, read)


# A metric history's cursor: the last point's run time, run id, benchmark id and
# metric id, the four keys of its order.


def encode_point(timestamp: datetime | None, run_id: str, benchmark_id: int, metric_id: int) -> str:
    return encode_cursor(
        [timestamp.isoformat() if timestamp else None, run_id, benchmark_id, metric_id]
    )


def decode_point(cursor: str) -> tuple[datetime | None, str, int, int]:
    def read(payload: Any) -> tuple[datetime | None, str, int, int]:
        text, run_id, benchmark_id, metric_id = payload
        ids = (benchmark_id, metric_id)
        if (
            not isinstance(run_id, str)
            or not (text is None or isinstance(text, str))
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2**63 for i in ids)
        ):
            raise ValueError("bad cursor fields")
        return parse_timestamp(text), run_id, benchmark_id, metric_id

    return decode_cursor(cursor, read)
