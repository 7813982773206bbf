"""Result commands that read runs: list, show, stats, leaderboard, compare.

``import`` and ``export`` live in :mod:`karr_db.cli.transfer`; the run filters
they share with these and with ``history`` in :mod:`karr_db.cli._options`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

import typer

from karr_db.cli._app import DatabaseOption, JsonOption, ReplicaOption, app, open_database
from karr_db.cli._options import (
    Engine,
    Environment,
    Gpu,
    KittVersion,
    Model,
    Passed,
    Since,
    Suite,
    Until,
    require_metric,
    resolve_model,
    run_filters,
)
from karr_db.cli._output import (
    facts,
    fmt,
    jsonable,
    number,
    paged,
    print_json,
    say,
    show,
    state,
    stream_json_pages,
    table,
)
from karr_db.repositories.results.dto import BenchmarkDetail, GroupCounts


@app.command("list")
def list_command(
    model: Model = None,
    engine: Engine = None,
    suite: Suite = None,
    passed: Passed = None,
    kitt_version: KittVersion = None,
    gpu: Gpu = None,
    environment: Environment = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 50,
    cursor: Annotated[
        str | None,
        typer.Option(
            "--cursor", help="Continue after a previous page (its next_cursor in --json)."
        ),
    ] = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    Run ids are shown as their shortest unique prefix (at least 8 characters),
    which every command taking a run id accepts. --json gives full ids, the
    total and the cursor of the next page.

    Example: karr-db list --engine vllm --failed --limit 20
    """
    filters = run_filters(locals())
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        filters = resolve_model(uow.results, filters)
        total = uow.results.count(filters)
        # Streamed page by page (keyset, the repository's largest page): memory stays
        # flat whatever -n says, where building the whole list grows with it.
        pages = paged(
            partial(uow.results.list, filters),
            limit,
            cursor=cursor,
        )
        if as_json:
            stream_json_pages(pages, total=total)
            return
        shown = 0
        for page in pages:
            chunk = page.items
            if not chunk and total:
                break  # nothing after --cursor: no empty table, the count says it
            short = uow.results.short_ids([run.id for run in chunk])
            cells = {
                "run id": [short[run.id] for run in chunk],
                "started": [fmt(run.timestamp) for run in chunk],
                "model": [fmt(run.model) for run in chunk],
                "engine": [fmt(run.engine) for run in chunk],
                "suite": [fmt(run.suite_name) for run in chunk],
                "passed": [fmt(run.passed) for run in chunk],
                "benchmarks": [f"{fmt(r.passed_count)}/{fmt(r.total_benchmarks)}" for r in chunk],
                "gpu": [fmt(run.gpu_model) for run in chunk],
            }
            if state.stdout.isatty():
                cells = _fit(cells, state.out.width)
            rows = table(*cells)
            rows.show_header = shown == 0  # one table to the eye, one page in memory
            for column in rows.columns:
                column.no_wrap = True
            for values in zip(*cells.values(), strict=True):
                rows.add_row(*values)
            show(rows)
            shown += len(chunk)
    say(f"{shown} of {total} run(s)")


#: Columns a narrow terminal drops first, and how narrow the model may get before it does.
_DROPPABLE = ("gpu", "suite")
_MIN_MODEL = 14


def _fit(cells: dict[str, list[str]], width: int) -> dict[str, list[str]]:
    """The list table's columns made to fit ``width`` without wrapping: dates
    lose their seconds, then the GPU and suite columns go, then two headers
    shorten, and the model gets the rest, cut from the left so the file name
    of a path stays visible."""
    cells = dict(cells)

    def spare() -> int:
        # Each column has one space of padding each side plus one separator.
        used = sum(max(len(h), *map(len, v), 0) for h, v in cells.items() if h != "model")
        return width - used - 3 * len(cells) - 1

    if spare() < _MIN_MODEL * 2:
        cells["started"] = [value[:16] for value in cells["started"]]
    for name in _DROPPABLE:
        if spare() >= _MIN_MODEL:
            break
        del cells[name]
    if spare() < _MIN_MODEL:
        brief = {"benchmarks": "tests", "passed": "ok"}
        cells = {brief.get(h, h): v for h, v in cells.items()}
    room = max(_MIN_MODEL, spare())
    cells["model"] = [left_cut(value, room) or "-" for value in cells["model"]]
    return cells


def fit_column(cells: dict[str, list[str]], name: str, width: int) -> bool:
    """Cut the ``name`` column from the left (:func:`left_cut`) so the table fits
    ``width``, unless that would make two different values look the same (KITT's
    model paths often share a long directory): then it is left whole, to wrap.
    Whether it was cut."""
    others = sum(max([len(h), *map(len, v)]) for h, v in cells.items() if h != name)
    room = max(_MIN_MODEL, width - others - 3 * len(cells) - 1)
    values = cells[name]
    cut = [left_cut(value, room) or "-" for value in values]
    if len(set(cut)) < len(set(values)):
        return False
    cells[name] = cut
    return True


def left_cut(text: str | None, width: int) -> str | None:
    """``text`` cut from the left to ``width`` characters, so the end of a long
    model path (the file name) stays visible: ``…/Llama-3.1-8B.gguf``."""
    if text is None or len(text) <= width:
        return text
    return "…" + text[-(width - 1) :]


@app.command("show")
def show_command(
    run_id: Annotated[
        str, typer.Argument(help="The run to show (id or unique prefix).", show_default=False)
    ],
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: its headline, hardware, benchmarks with their metrics, and
    the errors each benchmark reported (why it failed).

    Example: karr-db show 3f2c9a10
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        run = uow.results.get(uow.results.resolve_id(run_id))
        errors = benchmark_errors(uow.results.get_document(run.id), run.benchmarks)
    if as_json:
        detail = jsonable(run)
        for benchmark, reported in zip(detail["benchmarks"], errors, strict=True):
            benchmark["errors"] = reported
        print_json(detail)
        return
    from rich.text import Text

    hardware = run.hardware
    show(
        facts(
            ("run", run.id),
            ("model", run.model),
            ("engine", run.engine),
            ("suite", run.suite_name),
            ("started", run.timestamp),
            ("passed", run.passed),
            ("benchmarks", f"{fmt(run.passed_count)} passed, {fmt(run.failed_count)} failed"),
            ("errors", sum(map(len, errors))),
            ("duration (s)", run.total_time_seconds),
            ("kitt version", run.kitt_version),
            ("gpu", f"{fmt(hardware.gpu_count)} x {fmt(hardware.gpu_model)}" if hardware else None),
            ("cpu", hardware.cpu_model if hardware else None),
            ("environment", run.environment_type),
        )
    )
    for benchmark, reported in zip(run.benchmarks, errors, strict=True):
        title = (
            f"{benchmark.test_name} #{fmt(benchmark.run_number)} "
            f"({'passed' if benchmark.passed else 'failed'})"
        )
        metrics = table("metric", "value", title=title)
        for name, value in benchmark.metrics.items():
            metrics.add_row(name, fmt(value))
        for message in reported:  # Text: a message is never read as Rich markup
            metrics.add_row(Text("error"), Text(message), style="red")
        show(metrics)


def benchmark_errors(document: Any, benchmarks: Sequence[BenchmarkDetail]) -> list[list[str]]:
    """The ``errors`` each benchmark's result reported in the stored document, in
    the order of ``benchmarks``.

    Errors are kept in the document alone (no table has them). A result is
    matched to a benchmark row by test name and run number, in document order,
    as derivation matches them; an error that is not text is shown as its JSON.
    """
    results = document.get("results") if isinstance(document, dict) else None
    pending: dict[tuple[Any, Any], list[list[str]]] = {}
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, dict):
            continue
        raw = result.get("errors")
        messages = [
            e if isinstance(e, str) else json.dumps(e, ensure_ascii=False, default=str)
            for e in (raw if isinstance(raw, list) else [] if raw is None else [raw])
        ]
        key = (result.get("test_name"), result.get("run_number"))
        pending.setdefault(key, []).append(messages)
    found = []
    for benchmark in benchmarks:
        queue = pending.get((benchmark.test_name, benchmark.run_number))
        found.append(queue.pop(0) if queue else [])
    return found


@app.command("stats")
def stats_command(
    model: Model = None,
    engine: Engine = None,
    suite: Suite = None,
    since: Since = None,
    until: Until = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Totals: runs passed and failed, by engine and by model.

    Example: karr-db stats --since 2026-01-01
    """
    filters = run_filters(locals())
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        stats = uow.results.stats(resolve_model(uow.results, filters))
    totals = stats.totals
    if as_json:
        print_json(
            {
                **totals.model_dump(),
                "by_engine": [_group_json("engine", g) for g in stats.by_engine],
                "by_model": [_group_json("model", g) for g in stats.by_model],
            }
        )
        return
    say(
        f"{totals.runs} run(s): {totals.passed} passed, {totals.failed} failed"
        + (f", {totals.unknown} unknown" if totals.unknown else "")
    )
    for key, groups in (("engine", stats.by_engine), ("model", stats.by_model)):
        rows = table(key, "runs", "passed", "failed", title=f"by {key}")
        for group in groups:
            rows.add_row(group.name or "-", str(group.runs), str(group.passed), str(group.failed))
        show(rows)


def _group_json(key: str, group: GroupCounts) -> dict[str, Any]:
    return {key: group.name or "-", **group.model_dump(exclude={"name"})}


@app.command("leaderboard")
def leaderboard_command(
    metric: Annotated[str, typer.Option("--metric", "-m", help="Metric name, e.g. avg_tps.")],
    by: Annotated[
        str,
        typer.Option("--by", help="Comma-separated group fields (model, engine, gpu_model, ...)."),
    ] = "model",
    test: Annotated[str | None, typer.Option("--test", help="Only this benchmark.")] = None,
    per_test: Annotated[
        bool, typer.Option("--per-test", help="One row per benchmark name as well.")
    ] = False,
    order: Annotated[
        str, typer.Option("--order", help="avg, median, min, max, count or a group field.")
    ] = "avg",
    ascending: Annotated[
        bool, typer.Option("--ascending", help="Smallest first (for latencies).")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Top N groups.")] = None,
    model: Model = None,
    engine: Engine = None,
    suite: Suite = None,
    gpu: Gpu = None,
    since: Since = None,
    until: Until = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rank groups of runs by one metric (NaN and infinities are counted apart).

    Example: karr-db leaderboard --metric avg_tps --by model,engine --test throughput
    """
    group_by = [g.strip() for g in by.split(",") if g.strip()]
    filters = run_filters(locals())
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        rows = uow.results.leaderboard(
            metric,
            group_by=group_by,
            per_test=per_test,
            test_name=test,
            filters=resolve_model(uow.results, filters),
            order_by=order,
            descending=not ascending,
            limit=limit,
        )
        if not rows:
            require_metric(uow.results, metric, test)
    if as_json:
        print_json(rows)
        return
    non_finite = any(r.non_finite for r in rows)
    cells: dict[str, list[str]] = {"#": [str(rank) for rank in range(1, len(rows) + 1)]}
    for g in group_by:
        cells[g] = [fmt(row.group.get(g)) for row in rows]
    if per_test:
        cells["test"] = [fmt(row.test_name) for row in rows]
    cells["n"] = [str(row.count) for row in rows]
    for stat in ("avg", "median", "min", "max"):
        cells[stat] = [fmt(getattr(row, stat)) for row in rows]
    if non_finite:
        cells["non-finite"] = [str(row.non_finite) for row in rows]
    if state.stdout.isatty() and "model" in cells:
        fit_column(cells, "model", state.out.width)
    board = table(*cells, title=f"{metric}" + (f" ({test})" if test else ""))
    for column in board.columns:
        # Numbers never break; a model that could not be cut apart wraps instead.
        column.no_wrap = column.header not in group_by
        column.overflow = "fold"
    for values in zip(*cells.values(), strict=True):
        board.add_row(*values)
    show(board)
    if not rows:
        say(f"no values of {metric!r} match")


def _difference(value: float | None, base: float | None, diff: float | None) -> str:
    if value is None or diff is None:
        return fmt(value)
    percent = f", {diff / base:+.1%}" if base else ""
    return f"{fmt(value)} ({number(diff, sign=True)}{percent})"


@app.command("compare")
def compare_command(
    run_ids: Annotated[
        list[str],
        typer.Argument(
            help="Two or more runs (ids or unique prefixes); the first is the baseline.",
            metavar="RUN_ID",
            show_default=False,
        ),
    ],
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the metrics of runs side by side, against the first.

    Example: karr-db compare RUN_A RUN_B RUN_C
    """
    if len(set(run_ids)) < 2:
        raise typer.BadParameter("give at least two different run ids", param_hint="RUN_IDS")
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        resolved = [uow.results.resolve_id(run_id) for run_id in run_ids]
        if len(set(resolved)) < 2:
            raise typer.BadParameter(
                "the ids name the same run; give at least two different runs",
                param_hint="RUN_IDS",
            )
        comparison = uow.results.compare(resolved)
        short = uow.results.short_ids(comparison.run_ids)
    if as_json:
        print_json(comparison)
        return
    headers = [short[run_id] for run_id in comparison.run_ids]
    # One table per benchmark and run number (titled like show's): the metric
    # name, which tells rows apart, gets the room the two key columns took.
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in comparison.rows:
        groups.setdefault((fmt(row.test_name), fmt(row.run_number)), []).append(row)
    for (test_name, run_number), rows in groups.items():
        grid = table("metric", *headers, title=f"{test_name} #{run_number}")
        for column in grid.columns:
            column.overflow = "fold"  # wrap, never "…": rows must stay apart
        for row in rows:
            base = row.values[0]
            cells = [fmt(base)] + [
                _difference(v, base, d)
                for v, d in zip(row.values[1:], row.differences[1:], strict=True)
            ]
            grid.add_row(row.metric, *cells)
        show(grid)
