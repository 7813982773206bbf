"""The entry check every public repository method shares.

A web dashboard hands the repositories whatever a JSON body held: a lone
surrogate, an integer of 70 bits, a float where a count belongs, a datetime at
the edge of the calendar. Left alone, each of those leaves as a Python or
driver exception (``UnicodeEncodeError``, ``OverflowError``, a pydantic error)
from somewhere deep in SQLAlchemy, differently on each dialect.

:func:`checked` wraps every public method of a repository class so that its
arguments are checked against their annotations before the method runs, and
any that cannot be stored or compared on both dialects is refused with one
:class:`~karr_db.errors.ValidationError` naming the parameter (and the item, for
lists). Only plain types are checked here (``str``, ``int``, ``bool``,
``float``, ``datetime``, ``timedelta``, string enums, sequences of strings, and
``X | None`` of those); documents, filters, configurations and tags have their
own validators, and field-specific bounds (32-bit columns, indexed text) are
checked by the methods that write those fields (see :mod:`karr_db.limits`).

Checking from the annotations means a new method is covered the day it is
written; ``tests/integration/test_error_vocabulary.py`` proves it for every method.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from karr_db.errors import FieldError, ValidationError
from karr_db.limits import INT32_MAX, INT32_MIN, integer_problem, moment_problem, text_problem

__all__ = ["checked", "fields", "int32"]

C = TypeVar("C", bound=type)

#: One check: the problems of one argument, as (location, message) pairs.
Check = Callable[[str, Any], list[tuple[str, str]]]

_CHECKED = "__karr_checked__"


def _plain(problem: Callable[[Any], str | None]) -> Check:
    """The check of a plain type, from what is wrong with a value (``None``: nothing)."""

    def check(name: str, value: Any) -> list[tuple[str, str]]:
        found = problem(value)
        return [(name, found)] if found else []

    return check


def _instance(kind: type, wording: str) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        return None if isinstance(value, kind) else f"must be {wording}, not {type(value).__name__}"

    return problem


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, not {type(value).__name__}"
    return None


def _moment(value: Any) -> str | None:
    # Naive datetimes are the method's to refuse (some say why in their own words).
    if isinstance(value, datetime) and value.utcoffset() is None:
        return None
    return moment_problem(value)


_text = _plain(text_problem)


def _enum(kind: type[Enum]) -> Check:
    allowed = [str(member.value) for member in kind]

    def check(name: str, value: Any) -> list[tuple[str, str]]:
        if isinstance(value, str) and value in allowed:
            return []
        return [(name, f"must be one of {', '.join(allowed)}")]

    return check


def _strings(name: str, value: Any) -> list[tuple[str, str]]:
    """A sequence of strings; a lone string counts as one item (``group_by="model"``)."""
    if isinstance(value, str):
        return _text(name, value)
    if not isinstance(value, list | tuple):
        return [(name, f"must be a list of strings, not {type(value).__name__}")]
    return [p for index, item in enumerate(value) for p in _text(f"{name}.{index}", item)]


def _optional(check: Check) -> Check:
    def optional(name: str, value: Any) -> list[tuple[str, str]]:
        return [] if value is None else check(name, value)

    return optional


_PLAIN: dict[Any, Check] = {
    str: _text,
    int: _plain(integer_problem),
    bool: _plain(_instance(bool, "true or false")),
    float: _plain(_number),
    datetime: _plain(_moment),
    timedelta: _plain(_instance(timedelta, "a timedelta")),
}


def _check_for(annotation: Any) -> Check | None:
    """The check of one annotation, or ``None`` for types the method validates itself."""
    if annotation in _PLAIN:
        return _PLAIN[annotation]
    if inspect.isclass(annotation) and issubclass(annotation, Enum):
        return _enum(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1 and len(args) == 2:
            inner = _check_for(members[0])
            return _optional(inner) if inner is not None else None
        return None
    if origin in (list, Sequence) and args == (str,):
        return _strings
    return None


def _checks(function: Callable[..., Any]) -> list[tuple[str, int | None, Check]]:
    """(parameter, position, check) for each checked parameter of ``function``."""
    hints = typing.get_type_hints(function)
    found: list[tuple[str, int | None, Check]] = []
    for position, parameter in enumerate(inspect.signature(function).parameters.values()):
        if parameter.name == "self" or parameter.name not in hints:
            continue
        check = _check_for(hints[parameter.name])
        if check is None:
            continue
        positional = parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
        found.append((parameter.name, position if positional else None, check))
    return found


def _wrap(
    owner: str, name: str, function: Callable[..., Any], checks: list[tuple[str, int | None, Check]]
) -> Callable[..., Any]:
    @functools.wraps(function)
    def entry(*args: Any, **kwargs: Any) -> Any:
        problems: list[tuple[str, str]] = []
        for parameter, position, check in checks:
            if parameter in kwargs:
                value = kwargs[parameter]
            elif position is not None and position < len(args):
                value = args[position]
            else:
                continue  # the default: the method's own
            problems.extend(check(parameter, value))
        if problems:
            raise ValidationError(
                f"arguments of {owner}.{name}", [FieldError(f, m) for f, m in problems]
            )
        return function(*args, **kwargs)

    setattr(entry, _CHECKED, True)
    return entry


def checked(cls: C) -> C:
    """Wrap every public method of ``cls`` (inherited ones included) that has a checked
    parameter in the entry check; the others (documents, filters: their own
    validators) are left as they are.

    The annotations are resolved here, once: every name a public method's signature
    uses must be importable when its class is defined (not only under
    ``TYPE_CHECKING``)."""
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_") or getattr(member, _CHECKED, False):
            continue
        if isinstance(inspect.getattr_static(cls, name), staticmethod | classmethod):
            continue
        checks = _checks(member)
        if checks:
            setattr(cls, name, _wrap(cls.__name__, name, member, checks))
    return cls


def fields(what: str, problems: Iterable[tuple[str, str | None]]) -> None:
    """Raise one :class:`ValidationError` for every ``(field, problem)`` with a problem."""
    errors = [FieldError(field, problem) for field, problem in problems if problem]
    if errors:
        raise ValidationError(what, errors)


def int32(value: object) -> str | None:
    """The problem of a value bound for an INTEGER column (32 bits on PostgreSQL)."""
    return integer_problem(value, low=INT32_MIN, high=INT32_MAX)
