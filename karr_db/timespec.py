"""Points in time as people type them: ``7d``, ``12h``, ``yesterday``, a date, an ISO instant.

Hand-written rather than a library: the accepted forms are few and must mean
exactly what ``--help`` says (dateparser would also take "next Friday" or
guess day/month order, and would be a large import on every command).
Everything is UTC, as stored timestamps are.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from karr_db.errors import FieldError, ValidationError

__all__ = ["EXAMPLES", "parse_point_in_time"]

#: What ``--since``/``--until`` accept, for help texts and error messages.
EXAMPLES = "7d, 12h, 30m, 2w, today, yesterday, 2026-01-31, 2026-01-31T08:00:00+02:00"

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"(\d+)\s*([smhdw])(?:\s*ago)?", re.IGNORECASE)


def parse_point_in_time(text: str, *, now: datetime | None = None, field: str = "time") -> datetime:
    """An aware UTC datetime for ``text``.

    ``7d`` is seven days before ``now``; ``today``/``yesterday`` are the start
    of that UTC day; a bare date is its UTC midnight; an ISO-8601 instant
    without an offset is taken as UTC. Anything else is a
    :class:`ValidationError` naming ``field`` and the accepted forms.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    value = text.strip()
    lowered = value.lower()
    if lowered == "now":
        return now
    if lowered in ("today", "yesterday"):
        day = now.date() - timedelta(days=1 if lowered == "yesterday" else 0)
        return datetime.combine(day, time(), UTC)
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            pass  # fall through to the error below
    else:
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                return datetime.combine(date.fromisoformat(value), time(), UTC)
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValidationError(
        "time", [FieldError(field, f"{text!r} is not a point in time; use e.g. {EXAMPLES}")]
    )
