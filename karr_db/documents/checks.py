"""What makes a JSON value storable on both dialects: parsing, nesting depth,
strings (no NUL, no lone surrogates) and printable integers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from karr_db.documents.model import WHAT
from karr_db.errors import FieldError, ValidationError


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


#: Deepest nesting of arrays and objects a document may have. KITT writes a
#: handful of levels; the bound keeps the recursive checks and encoders here
#: (and PostgreSQL's JSON parser) far from their stack limits, so a hostile
#: document is refused by name instead of crashing the caller.
MAX_DEPTH = 64
TOO_DEEP = f"arrays and objects nested deeper than {MAX_DEPTH} levels"


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


def plain_json(value: dict[str, Any]) -> bool:
    """Whether ``value`` is built like parsed JSON: only ``dict`` objects with ``str``
    keys, ``list`` arrays and plain scalars, no deeper than :data:`MAX_DEPTH`, no
    integer too long to write.

    Such a value can have only one problem :func:`json_problems` finds, a string
    both dialects cannot store, and that shows in its canonical text (see
    :func:`~karr_db.documents.identity.clean_text`); so one walk of exact type
    tests replaces the depth walk and the generator walk of every value, a large
    part of a bulk save. ``False`` means "not sure": the full
    checks then decide and name the field.
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
            elif kind not in plain or (kind is int and child.bit_length() >= 10_000):
                return False
    return True


def location(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "<document>"


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains the NUL character, which PostgreSQL cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    return None


def _unprintable(value: int) -> bool:
    """Whether Python refuses to write ``value`` as decimal text (its digit limit)."""
    if value.bit_length() < 10_000:  # ~3,000 digits: below any limit Python allows
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
        problem = _string_problem(value)
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
            problem = _string_problem(key)
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
