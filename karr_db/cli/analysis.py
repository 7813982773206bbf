"""Analysis commands: ``metrics`` (what is stored) and ``history`` (a metric over time).

``history`` draws with plotext, a small pure-Python terminal plotting library
(braille points, date axes), and gives ``--json``/``--csv`` for scripts.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import datetime
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
    run_filters,
)
from karr_db.cli._output import fmt, paged, print_json, say, show, state, table
from karr_db.limits import PAGE_LIMIT
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
    """Draw one metric over time in the terminal (a line per benchmark test).

    The chart has a point per run: the mean of its values of that test (a
    suite may run a test several times). Non-finite values are left out of
    the chart (and counted under it); --json and --csv give every value,
    oldest run first.

    Example: karr-db history --metric avg_tps --model llama-3-8b --engine vllm --since 30d
    """
    if as_csv and as_json:
        raise typer.BadParameter("choose --json or --csv", param_hint="--csv")
    # model and engine are arguments of their own in metric_history, not filters.
    filters = run_filters({"suite": suite, "gpu": gpu, "since": since, "until": until})
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        points = list(
            paged(
                lambda **page: uow.results.metric_history(
                    metric, model=model, engine=engine, test_name=test, filters=filters, **page
                ),
                limit,
                page_size=PAGE_LIMIT,
            )
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
    chart, left_out = _chart(metric, points, width=state.out.width)
    state.stdout.write(chart + "\n")
    state.stdout.flush()
    summary = f"{len(points)} value(s) from {len({p.run_id for p in points})} run(s)"
    if left_out:
        summary += f"; {left_out} non-finite or undated value(s) not drawn"
    say(summary)


def _write_csv(points: Sequence[MetricPoint], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("run_id", "timestamp", "test_name", "run_number", "value"))
    for p in points:
        value = "" if p.value is None else fmt(p.value) if not math.isfinite(p.value) else p.value
        writer.writerow(
            (
                p.run_id,
                p.timestamp.isoformat() if p.timestamp else "",
                p.test_name,
                p.run_number,
                value,
            )
        )
    out.flush()


#: plotext's date format (its own notation) and the same in strftime's.
_PLOT_DATE = ("Y-m-d H:M", "%Y-%m-%d %H:%M")


def _chart(metric: str, points: Sequence[MetricPoint], *, width: int) -> tuple[str, int]:
    """The chart as text (coloured only on a terminal) and how many points it left out."""
    import plotext as plt

    # One point per run and test: the mean of the run's values (a suite runs a
    # test several times, whose values would otherwise stack up as spikes).
    per_run: dict[str, dict[tuple[str, datetime], list[float]]] = {}
    left_out = 0
    for p in points:
        if p.value is None or not math.isfinite(p.value) or p.timestamp is None:
            left_out += 1
            continue
        runs = per_run.setdefault(p.test_name or "-", {})
        runs.setdefault((p.run_id, p.timestamp), []).append(p.value)
    series: dict[str, tuple[list[str], list[float]]] = {}
    for name, runs in per_run.items():
        ordered = sorted(runs.items(), key=lambda item: (item[0][1], item[0][0]))
        series[name] = (
            [stamp.strftime(_PLOT_DATE[1]) for (_, stamp), _ in ordered],
            [sum(values) / len(values) for _, values in ordered],
        )
    plt.clear_figure()
    plt.date_form(_PLOT_DATE[0])
    for name, (xs, ys) in series.items():
        label = name if len(series) > 1 else None
        if len(xs) == 1:
            plt.scatter(xs, ys, label=label, marker="dot")
        else:
            plt.plot(xs, ys, label=label, marker="braille")
    plt.title(metric + ("" if len(series) > 1 else f" ({next(iter(series), '-')})"))
    plt.plotsize(max(40, min(width, 160)), CHART_HEIGHT)
    plt.theme("clear")
    text: str = plt.build()
    if not state.stdout.isatty():
        text = plt.uncolorize(text)
    return text.rstrip("\n"), left_out
