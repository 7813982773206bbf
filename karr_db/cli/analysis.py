"""Analysis commands: ``metrics`` (what is stored) and ``history`` (a metric over time).

``history`` draws with plotext, a small pure-Python terminal plotting library
(braille points, date axes), and gives ``--json``/``--csv`` for scripts.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Annotated, TextIO, cast

import typer

from karr_db.cli._app import DatabaseOption, JsonOption, ReplicaOption, app, open_database
from karr_db.cli._options import (
    Engine,
    Gpu,
    Model,
    Since,
    Suite,
    Until,
    require_metric,
    resolve_model,
    run_filters,
)
from karr_db.cli._output import fmt, number, paged_items, print_json, say, show, state, table
from karr_db.repositories.results.dto import MetricPoint

#: The chart's height in lines (without title and axis labels) at most.
CHART_HEIGHT = 20


@app.command("metrics")
def metrics_command(
    test: Annotated[str | None, typer.Option("--test", help="Only this benchmark test.")] = None,
    by_test: Annotated[
        bool, typer.Option("--by-test/--overall", help="One row per metric and test (default).")
    ] = True,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the stored metric names and how many values each has, per test.

    The names --metric of leaderboard and history take.

    Example: karr-db metrics --test throughput
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        names = uow.results.metric_names(test_name=test, per_test=by_test)
    if as_json:
        print_json(names)
        return
    columns = ["metric", "test", "values"] if by_test else ["metric", "values"]
    rows = table(*columns)
    for name in names:
        cells = [name.metric, fmt(name.test_name)] if by_test else [name.metric]
        rows.add_row(*cells, f"{name.count:,}")
    show(rows)
    distinct = len({n.metric for n in names})
    say(f"{distinct} metric name(s)" + (f" in test {test!r}" if test else ""))


@app.command("history")
def history_command(
    metric: Annotated[str, typer.Option("--metric", "-m", help="Metric name, e.g. avg_tps.")],
    model: Model = None,
    engine: Engine = None,
    test: Annotated[str | None, typer.Option("--test", help="Only this benchmark test.")] = None,
    suite: Suite = None,
    gpu: Gpu = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, max=1000, help="The oldest N values.")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Draw one metric over time in the terminal (a line per model, engine and test).

    The chart has a point per run: the mean of its values of that test (a
    suite may run a test several times). Non-finite values are left out of
    the chart (and counted under it); --json and --csv give every value with
    its run's model and engine, oldest run first. More than 8 lines is refused:
    choose with --model, --engine or --test.

    Example: karr-db history --metric avg_tps --model llama-3-8b --engine vllm --since 30d
    """
    if as_csv and as_json:
        raise typer.BadParameter("choose --json or --csv", param_hint="--csv")
    filters = run_filters(locals())
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        filters = resolve_model(uow.results, filters)
        points = paged_items(
            partial(uow.results.metric_history, metric, test_name=test, filters=filters), limit
        )
        if not points:
            require_metric(uow.results, metric, test)
    if as_json:
        print_json(points)
        return
    if as_csv:
        _write_csv(points, cast(TextIO, state.stdout))
        return
    if not points:
        say(f"no values of {metric!r} match")
        return
    if not any(p.value is not None and math.isfinite(p.value) and p.timestamp for p in points):
        say(f"{len(points)} value(s) of {metric!r}, none finite and dated: nothing to draw")
        return
    drawn = _series(
        [p for p in points if p.value is not None and math.isfinite(p.value) and p.timestamp]
    )
    if len(drawn) > MAX_SERIES:
        models = len({k[0] for k in drawn})
        engines = len({k[1] for k in drawn})
        raise typer.BadParameter(
            f"{len(drawn)} series ({models} model(s), {engines} engine(s), "
            f"{len({k[2] for k in drawn})} test(s)) are too many for one chart (at most "
            f"{MAX_SERIES}): choose with --model, --engine or --test, or use --csv/--json",
            param_hint="--model/--engine/--test",
        )
    chart, left_out = _chart(metric, points, width=state.out.width)
    state.stdout.write(chart + "\n")
    state.stdout.flush()
    summary = f"{len(points)} value(s) from {len({p.run_id for p in points})} run(s)"
    if len(drawn) > 1:
        summary += f" in {len(drawn)} series (model, engine, test)"
    if left_out:
        summary += f"; {left_out} non-finite or undated value(s) not drawn"
    say(summary)


def _write_csv(points: Sequence[MetricPoint], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("run_id", "model", "engine", "timestamp", "test_name", "run_number", "value"))
    for p in points:
        value = "" if p.value is None else fmt(p.value) if not math.isfinite(p.value) else p.value
        writer.writerow(
            (
                p.run_id,
                p.model or "",
                p.engine or "",
                p.timestamp.isoformat() if p.timestamp else "",
                p.test_name,
                p.run_number,
                value,
            )
        )
    out.flush()


#: plotext's date format (its own notation) and the same in strftime's.
_PLOT_DATE = ("Y-m-d H:M", "%Y-%m-%d %H:%M")


#: How many labelled values the chart's y axis has (at most).
Y_TICKS = 5


def _ticks(low: float, high: float) -> list[float]:
    """Evenly spaced y-axis values from ``low`` to ``high`` (one when they are equal)."""
    if high <= low:
        return [low]
    step = (high - low) / (Y_TICKS - 1)
    return [low + step * i for i in range(Y_TICKS - 1)] + [high]


#: The most lines one chart draws; more is unreadable (and plotext has fewer colours).
MAX_SERIES = 8

#: A series of the chart: model, engine and test name.
Series = tuple[str, str, str]


def _series(points: Sequence[MetricPoint]) -> set[Series]:
    return {(p.model or "-", p.engine or "-", p.test_name or "-") for p in points}


def _file_name(model: str) -> str:
    """A model path's last component (KITT's models are full paths); a name as it is."""
    return model.rstrip("/").rsplit("/", 1)[-1] or model


def _label(key: Series, keys: set[Series]) -> str:
    """A series' legend: only the parts that differ between the series, the model
    by its file name."""
    model, engine, test = key
    parts = []
    if len({k[0] for k in keys}) > 1:
        parts.append(_file_name(model))
    if len({k[1] for k in keys}) > 1:
        parts.append(engine)
    if len({k[2] for k in keys}) > 1:
        parts.append(test)
    return " ".join(parts)


def _chart(metric: str, points: Sequence[MetricPoint], *, width: int) -> tuple[str, int]:
    """The chart as text (coloured only on a terminal) and how many points it left out.

    One line per model, engine and test: runs of different models or engines
    are never joined into one line, where a change of model would look like a
    regression.
    """
    import plotext as plt

    # One point per run and series: the mean of the run's values (a suite runs a
    # test several times, whose values would otherwise stack up as spikes).
    per_run: dict[Series, dict[tuple[str, datetime], list[float]]] = {}
    left_out = 0
    for p in points:
        if p.value is None or not math.isfinite(p.value) or p.timestamp is None:
            left_out += 1
            continue
        key = (p.model or "-", p.engine or "-", p.test_name or "-")
        runs = per_run.setdefault(key, {})
        runs.setdefault((p.run_id, p.timestamp), []).append(p.value)
    series: dict[Series, tuple[list[str], list[float]]] = {}
    for key, runs in sorted(per_run.items()):
        ordered = sorted(runs.items(), key=lambda item: (item[0][1], item[0][0]))
        series[key] = (
            [stamp.strftime(_PLOT_DATE[1]) for (_, stamp), _ in ordered],
            [sum(values) / len(values) for _, values in ordered],
        )
    keys = set(series)
    plt.clear_figure()
    plt.date_form(_PLOT_DATE[0])
    for key, (xs, ys) in series.items():
        label = _label(key, keys) if len(series) > 1 else None
        if len(xs) == 1:
            plt.scatter(xs, ys, label=label, marker="dot")
        else:
            plt.plot(xs, ys, label=label, marker="braille")
    values = [y for _, ys in series.values() for y in ys]
    ticks = _ticks(min(values), max(values)) if values else []
    plt.yticks(ticks, [number(t) for t in ticks])  # the tables' numbers, never 1.2e+04
    plt.title(_title(metric, keys))
    plt.plotsize(max(40, min(width, 160)), CHART_HEIGHT)
    plt.theme("clear")
    text: str = plt.build()
    if not state.stdout.isatty():
        text = plt.uncolorize(text)
    return text.rstrip("\n"), left_out


def _title(metric: str, keys: set[Series]) -> str:
    """The metric, the test when every series has the same, and the model
    (last path component) and engine when they are shared."""
    models, engines, tests = ({k[i] for k in keys} for i in range(3))
    title = metric + (f" ({next(iter(tests))})" if len(tests) == 1 else "")
    if len(models) == 1:
        title += f" of {_file_name(next(iter(models)))}"
    if len(engines) == 1:
        title += f" on {next(iter(engines))}"
    return title
