"""Options shared by several command groups, declared once: the run filters
(``--model`` .. ``--until``), the points in time ``--since`` and ``--until``
take, and the check of a ``--metric`` name.

A command takes the filters it supports as parameters typed with these
aliases and hands its ``locals()`` to :func:`run_filters`, which is the one
place the option names meet the repository's filter vocabulary.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import typer

from karr_db.cli._output import warn

__all__ = [
    "RUN_FILTERS",
    "Engine",
    "Environment",
    "Gpu",
    "KittVersion",
    "Model",
    "Passed",
    "Since",
    "Suite",
    "Until",
    "parse_point_in_time",
    "require_metric",
    "resolve_model",
    "run_filters",
]

Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Only runs of this model: its exact name, else every model containing the "
        "text, or a glob such as '*llama*q4*' (case ignored for both).",
    ),
]
Engine = Annotated[str | None, typer.Option("--engine", help="Only runs of this engine.")]
Suite = Annotated[str | None, typer.Option("--suite", help="Only runs of this suite.")]
Passed = Annotated[
    bool | None,
    typer.Option(
        "--passed/--failed", help="Only runs that passed (or failed).", show_default=False
    ),
]
KittVersion = Annotated[str | None, typer.Option("--kitt-version", help="Only this KITT version.")]
Gpu = Annotated[str | None, typer.Option("--gpu", help="Only runs on this GPU model.")]
Environment = Annotated[
    str | None, typer.Option("--environment", help="Only this environment type (e.g. dgx).")
]


#: What ``--since``/``--until`` accept, for help texts and error messages.
TIME_EXAMPLES = "7d, 12h, 30m, 2w, today, yesterday, 2026-01-31, 2026-01-31T08:00:00+02:00"

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"(\d+)\s*([smhdw])(?:\s*ago)?", re.IGNORECASE)


def parse_point_in_time(text: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime for ``text``, as ``--help`` describes it.

    ``7d`` is seven days before ``now``; ``today``/``yesterday`` are the start
    of that UTC day; a bare date is its UTC midnight; an ISO-8601 instant
    without an offset is taken as UTC (stored timestamps are UTC). Anything
    else is a usage error (exit 2) naming the accepted forms. Hand-written
    rather than a library: the forms are few and must mean exactly what the
    help says (dateparser would also take "next Friday" or guess day/month
    order).
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
    raise typer.BadParameter(f"{text!r} is not a point in time; use e.g. {TIME_EXAMPLES}")


Since = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=parse_point_in_time,
        help=f"Runs started at or after WHEN (UTC): {TIME_EXAMPLES}.",
    ),
]
Until = Annotated[
    datetime | None,
    typer.Option(
        "--until",
        parser=parse_point_in_time,
        help="Runs started before WHEN (same forms as --since).",
    ),
]


#: Each run-filter parameter's name in a command -> its name in the
#: repository's filter vocabulary (``ResultsRepository`` filters).
RUN_FILTERS: dict[str, str] = {
    "model": "model",
    "engine": "engine",
    "suite": "suite_name",
    "passed": "passed",
    "kitt_version": "kitt_version",
    "gpu": "gpu_model",
    "environment": "environment_type",
    "since": "since",
    "until": "until",
}


def run_filters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The run filters given on the command line, in the repository's vocabulary.

    ``parameters`` is a command's ``locals()`` (or any mapping of its
    parameters): the filters it does not take are simply absent, and those not
    given (``None``) are left out, so each command lists its filters once, in
    its signature.
    """
    return {
        field: parameters[name]
        for name, field in RUN_FILTERS.items()
        if parameters.get(name) is not None
    }


def resolve_model(results: Any, filters: Mapping[str, Any]) -> dict[str, Any]:
    """``filters`` with ``--model`` read as the user meant it: the stored name it
    equals, else the stored names that contain it or that it matches as a glob
    (``ResultsRepository.match_models``). A note on stderr says when the text
    was not an exact name, so an empty table is never a silent surprise."""
    resolved = dict(filters)
    text = resolved.get("model")
    if text is None:
        return resolved
    match = results.match_models(text)
    if match.how == "exact":
        return resolved
    del resolved["model"]
    resolved["models"] = match.models
    if not match.models:
        warn(
            f"note: --model {text!r} matches no stored model name "
            "(exactly, as a substring or as a glob); `karr-db stats` lists the models"
        )
    elif match.how == "substring":
        names = ", ".join(match.models[:3]) + (", ..." if len(match.models) > 3 else "")
        warn(
            f"note: no model is named {text!r}; showing the {len(match.models)} model(s) "
            f"containing it (case ignored): {names}"
        )
    return resolved


def require_metric(results: Any, metric: str, test: str | None = None) -> None:
    """A usage error (exit 2) naming the closest stored names when ``metric`` is
    not stored at all (in ``test``, when given); nothing when it is."""
    names = results.metric_names(test_name=test, per_test=False)
    known = [n.metric for n in names]
    if metric in known:
        return
    where = f" in test {test!r}" if test else ""
    if not known:
        raise typer.BadParameter(f"no metrics are stored{where}", param_hint="--metric")
    # The stored names closest to a mistyped one (difflib's ratio, as Python's own
    # "did you mean" does), case ignored.
    lowered = {k.lower(): k for k in known}
    close = [lowered[m] for m in difflib.get_close_matches(metric.lower(), list(lowered), 3, 0.6)]
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else "run `karr-db metrics` for the stored names"
    )
    raise typer.BadParameter(
        f"no metric {metric!r} is stored{where}; {hint}", param_hint="--metric"
    )
