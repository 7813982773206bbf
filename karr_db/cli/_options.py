"""Options shared by several command groups, declared once: the run filters
(``--model`` .. ``--until``) and the check of a ``--metric`` name.

A command takes the filters it supports as parameters typed with these
aliases and hands its ``locals()`` to :func:`run_filters`, which is the one
place the option names meet the repository's filter vocabulary.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

import typer

from karr_db.cli._output import warn
from karr_db.errors import ValidationError
from karr_db.timespec import EXAMPLES as TIME_EXAMPLES
from karr_db.timespec import parse_point_in_time

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


def _point_in_time(option: str) -> Callable[[str], datetime]:
    """A parser for a time option: the layer's reading of ``7d`` or a date, and its
    words as a usage error (exit 2) when the value is none of them."""

    def parse(text: str) -> datetime:
        try:
            return parse_point_in_time(text, field=option)
        except ValidationError as exc:
            raise typer.BadParameter(exc.errors[0].message) from None

    return parse


Since = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=_point_in_time("--since"),
        help=f"Runs started at or after WHEN (UTC): {TIME_EXAMPLES}.",
    ),
]
Until = Annotated[
    datetime | None,
    typer.Option(
        "--until",
        parser=_point_in_time("--until"),
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
