"""Result commands: import, export, list, show, stats, leaderboard, compare."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from karr_db.cli._app import (
    DatabaseOption,
    JsonOption,
    app,
    fmt,
    open_database,
    paged,
    print_json,
    say,
    show,
    state,
    table,
    warn,
)
from karr_db.importing import (
    IMPORT_BATCH_SIZE,
    collect_files,
    export_run,
    export_runs,
    import_files,
)
from karr_db.repositories.results import MAX_LIMIT
from karr_db.repositories.results_dto import GroupCounts, ImportOutcome, ImportReport

# --- run filters shared by several commands -------------------------------------

Model = Annotated[str | None, typer.Option("--model", help="Only runs of this model.")]
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
Since = Annotated[
    str | None, typer.Option("--since", help="Runs started at or after (ISO-8601, UTC if naive).")
]
Until = Annotated[str | None, typer.Option("--until", help="Runs started before (ISO-8601).")]


def _filters(**values: Any) -> dict[str, Any]:
    """The filters given on the command line, in the repository's vocabulary."""
    return {key: value for key, value in values.items() if value is not None}


# --- import ------------------------------------------------------------------------


def _outcome_line(outcome: ImportOutcome) -> str:
    detail = outcome.run_id if outcome.status != "rejected" else outcome.reason
    return f"{outcome.status:<15} {outcome.path}  {detail}"


def _import_all(
    engine: Any, files: list[Path], *, quiet: bool, batch_size: int
) -> Iterator[ImportOutcome]:
    outcomes = import_files(engine, files, batch_size=batch_size)
    if quiet:
        yield from outcomes
        return
    if not state.stdout.isatty():
        for outcome in outcomes:
            say(_outcome_line(outcome))
            yield outcome
        return
    columns = (
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
    )
    progress = Progress(
        *columns,
        console=state.out,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with progress:
        task = progress.add_task("", total=len(files))
        for outcome in outcomes:
            progress.update(task, description=Path(outcome.path).name)
            yield outcome
            progress.advance(task)


@app.command("import")
def import_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Result files and directories to import.", show_default=False),
    ],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            help="Files stored per transaction (1: each file in its own transaction).",
        ),
    ] = IMPORT_BATCH_SIZE,
) -> None:
    """Import KITT result documents (files, or every metrics.json below a directory).

    Files are validated one by one and stored in batches; a bad file is
    rejected on its own and never leaves a partial run, and documents already
    stored are recognised by content. Exit 1 if any file was rejected.

    Example: karr-db import ~/kitt-results run.json
    """
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    files = collect_files(paths)
    with open_database(database, write=True) as db:
        outcomes = _import_all(db.engine, files, quiet=as_json, batch_size=batch_size)
        report = ImportReport(outcomes=list(outcomes))
    if as_json:
        print_json(report)
    else:
        summary = table("outcome", "files")
        summary.add_row("imported", str(len(report.imported)))
        summary.add_row("already present", str(len(report.already_present)))
        summary.add_row("rejected", str(len(report.rejected)))
        show(summary)
        if report.rejected:
            rejected = table("rejected file", "reason")
            for outcome in report.rejected:
                rejected.add_row(outcome.path, outcome.reason or "")
            show(rejected)
        if not files:
            say("no result files found (looked for metrics.json, then *.json)")
    if report.rejected:
        warn(
            f"error: {len(report.rejected)} file(s) rejected; fix them and import again "
            "(files already imported are recognised and skipped)"
        )
        raise typer.Exit(1)


# --- export ------------------------------------------------------------------------


@app.command("export")
def export_command(
    run_id: Annotated[
        str | None, typer.Argument(help="The run to export (else every matching run).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File for one run; directory for many (required).",
            show_default=False,
        ),
    ] = None,
    model: Model = None,
    engine: Engine = None,
    suite: Suite = None,
    passed: Passed = None,
    kitt_version: KittVersion = None,
    gpu: Gpu = None,
    environment: Environment = None,
    since: Since = None,
    until: Until = None,
    database: DatabaseOption = None,
) -> None:
    """Write stored runs back to KITT result documents (streamed, importable again).

    One run goes to FILE; with filters (or none) every matching run goes to
    DIR/<run id>/metrics.json.

    Example: karr-db export --model llama-3-8b --engine vllm -o exported/
    """
    filters = _filters(
        model=model,
        engine=engine,
        suite_name=suite,
        passed=passed,
        kitt_version=kitt_version,
        gpu_model=gpu,
        environment_type=environment,
        since=since,
        until=until,
    )
    if output is None:
        raise typer.BadParameter("say where to write with -o FILE or -o DIR", param_hint="--output")
    if run_id is not None and filters:
        raise typer.BadParameter("give either RUN_ID or filters, not both", param_hint="RUN_ID")
    with open_database(database) as db, db.unit_of_work() as uow:
        if run_id is not None:
            target = output / f"{run_id}.json" if output.is_dir() else output
            export_run(uow.session, run_id, target)
            say(f"wrote {target}")
            return
        count = export_runs(uow.session, output, filters)
    say(f"exported {count} run(s) to {output}")


# --- reading -----------------------------------------------------------------------


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
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    Example: karr-db list --engine vllm --failed --limit 20
    """
    filters = _filters(
        model=model,
        engine=engine,
        suite_name=suite,
        passed=passed,
        kitt_version=kitt_version,
        gpu_model=gpu,
        environment_type=environment,
        since=since,
        until=until,
    )
    with open_database(database) as db, db.unit_of_work() as uow:
        runs = list(
            paged(
                lambda **page: uow.results.list_runs(filters, **page),
                limit,
                page_size=MAX_LIMIT,
            )
        )
        total = uow.results.count(filters)
    if as_json:
        print_json(runs)
        return
    rows = table("run id", "started", "model", "engine", "suite", "passed", "benchmarks", "gpu")
    for run in runs:
        rows.add_row(
            run.id,
            fmt(run.timestamp),
            fmt(run.model),
            fmt(run.engine),
            fmt(run.suite_name),
            fmt(run.passed),
            f"{fmt(run.passed_count)}/{fmt(run.total_benchmarks)}",
            fmt(run.gpu_model),
        )
    show(rows)
    say(f"{len(runs)} of {total} run(s)")


@app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="The run to show.", show_default=False)],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: its headline, hardware, benchmarks and metrics.

    Example: karr-db show 3f2c9a10-5d0e-5b7e-9a51-0c6f1e2d4b88
    """
    with open_database(database) as db, db.unit_of_work() as uow:
        run = uow.results.get(run_id)
    if as_json:
        print_json(run)
        return
    head = table("", "")
    head.show_header = False
    head.box = None
    hardware = run.hardware
    for key, value in (
        ("run", run.id),
        ("model", run.model),
        ("engine", run.engine),
        ("suite", run.suite_name),
        ("started", run.timestamp),
        ("passed", run.passed),
        ("benchmarks", f"{fmt(run.passed_count)} passed, {fmt(run.failed_count)} failed"),
        ("duration (s)", run.total_time_seconds),
        ("kitt version", run.kitt_version),
        ("gpu", f"{fmt(hardware.gpu_count)} x {fmt(hardware.gpu_model)}" if hardware else None),
        ("cpu", hardware.cpu_model if hardware else None),
        ("environment", run.environment_type),
    ):
        head.add_row(key, fmt(value))
    show(head)
    for benchmark in run.benchmarks:
        title = (
            f"{benchmark.test_name} #{fmt(benchmark.run_number)} "
            f"({'passed' if benchmark.passed else 'failed'})"
        )
        metrics = table("metric", "value", title=title)
        for name, value in benchmark.metrics.items():
            metrics.add_row(name, fmt(value))
        show(metrics)


@app.command("stats")
def stats_command(
    model: Model = None,
    engine: Engine = None,
    suite: Suite = None,
    since: Since = None,
    until: Until = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Totals: runs passed and failed, by engine and by model.

    Example: karr-db stats --since 2026-01-01
    """
    filters = _filters(model=model, engine=engine, suite_name=suite, since=since, until=until)
    with open_database(database) as db, db.unit_of_work() as uow:
        stats = uow.results.stats(filters)
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
    as_json: JsonOption = False,
) -> None:
    """Rank groups of runs by one metric (NaN and infinities are counted apart).

    Example: karr-db leaderboard --metric avg_tps --by model,engine --test throughput
    """
    group_by = [g.strip() for g in by.split(",") if g.strip()]
    filters = _filters(
        model=model, engine=engine, suite_name=suite, gpu_model=gpu, since=since, until=until
    )
    with open_database(database) as db, db.unit_of_work() as uow:
        rows = uow.results.leaderboard(
            metric,
            group_by=group_by,
            per_test=per_test,
            test_name=test,
            filters=filters,
            order_by=order,
            descending=not ascending,
            limit=limit,
        )
    if as_json:
        print_json(rows)
        return
    columns = [*group_by, *(["test"] if per_test else []), "n", "avg", "median", "min", "max"]
    non_finite = any(r.non_finite for r in rows)
    if non_finite:
        columns.append("non-finite")
    board = table("#", *columns, title=f"{metric}" + (f" ({test})" if test else ""))
    for rank, row in enumerate(rows, 1):
        cells = [str(rank), *(fmt(row.group.get(g)) for g in group_by)]
        if per_test:
            cells.append(fmt(row.test_name))
        cells += [str(row.count), fmt(row.avg), fmt(row.median), fmt(row.min), fmt(row.max)]
        if non_finite:
            cells.append(str(row.non_finite))
        board.add_row(*cells)
    show(board)
    if not rows:
        say(f"no values of {metric!r} match")


def _difference(value: float | None, base: float | None, diff: float | None) -> str:
    if value is None or diff is None:
        return fmt(value)
    percent = f", {diff / base:+.1%}" if base else ""
    return f"{fmt(value)} ({diff:+.4g}{percent})"


@app.command("compare")
def compare_command(
    run_ids: Annotated[
        list[str],
        typer.Argument(help="Two or more runs; the first is the baseline.", show_default=False),
    ],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the metrics of runs side by side, against the first.

    Example: karr-db compare RUN_A RUN_B RUN_C
    """
    if len(set(run_ids)) < 2:
        raise typer.BadParameter("give at least two different run ids", param_hint="RUN_IDS")
    with open_database(database) as db, db.unit_of_work() as uow:
        comparison = uow.results.compare(run_ids)
    if as_json:
        print_json(comparison)
        return
    headers = [run_id[:8] for run_id in comparison.run_ids]
    grid = table("benchmark", "#", "metric", *headers)
    for row in comparison.rows:
        base = row.values[0]
        cells = [fmt(base)] + [
            _difference(v, base, d)
            for v, d in zip(row.values[1:], row.differences[1:], strict=True)
        ]
        grid.add_row(fmt(row.test_name), fmt(row.run_number), row.metric, *cells)
    show(grid)
