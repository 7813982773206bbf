"""Result commands: import, export, list, show, stats, leaderboard, compare."""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TextIO, cast

import typer

from karr_db import tidy
from karr_db.cli._app import (
    DatabaseOption,
    JsonOption,
    app,
    fmt,
    open_database,
    paged,
    plain_table,
    print_json,
    say,
    show,
    state,
    stream_json_object,
    table,
    warn,
)
from karr_db.errors import ValidationError
from karr_db.importing import (
    IMPORT_BATCH_SIZE,
    collect_files,
    export_run,
    export_runs,
    import_files,
)
from karr_db.repositories.base import Page
from karr_db.repositories.results import MAX_LIMIT
from karr_db.repositories.results.dto import GroupCounts, ImportOutcome, ImportReport, RunSummary
from karr_db.repositories.results.lookup import nearest_metrics
from karr_db.timespec import EXAMPLES as TIME_EXAMPLES
from karr_db.timespec import parse_point_in_time

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


def _filters(**values: Any) -> dict[str, Any]:
    """The filters given on the command line, in the repository's vocabulary."""
    return {key: value for key, value in values.items() if value is not None}


# --- import ------------------------------------------------------------------------


def _outcome_line(outcome: ImportOutcome) -> str:
    detail = outcome.run_id if outcome.status != "rejected" else outcome.reason
    return f"{outcome.status:<15} {outcome.path}  {detail}"


class _Interrupt:
    """Turns the first Ctrl-C into a request to stop after the batch in progress,
    so what is reported is exactly what is stored; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C keeps its default meaning
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def __call__(self) -> bool:
        return self.requested


def _import_all(
    engine: Any, files: list[Path], *, quiet: bool, batch_size: int, stop: _Interrupt
) -> Iterator[ImportOutcome]:
    outcomes = import_files(engine, files, batch_size=batch_size, should_stop=stop)
    if quiet:
        yield from outcomes
        return
    if not state.stdout.isatty():
        for outcome in outcomes:
            say(_outcome_line(outcome))
            yield outcome
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

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
        typer.Argument(
            help="Result files and directories to import.", metavar="PATH", show_default=False
        ),
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
    done: list[ImportOutcome] = []
    with open_database(database, write=True) as db, _Interrupt() as stop:
        try:
            done.extend(
                _import_all(db.engine, files, quiet=as_json, batch_size=batch_size, stop=stop)
            )
        except KeyboardInterrupt:  # a second Ctrl-C: the batch in flight was rolled back
            _interrupted(done, len(files), exact=False)
        if stop.requested:
            _interrupted(done, len(files), exact=True)
        report = ImportReport(outcomes=done)
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


def _interrupted(done: list[ImportOutcome], total: int, *, exact: bool) -> None:
    """Report a Ctrl-C. After the first, the import stopped between batches, so
    ``done`` is exactly what was handled; after a second, the batch in flight was
    rolled back (or, if it had just committed, is stored but not counted here)."""
    imported = sum(o.status == "imported" for o in done)
    present = sum(o.status == "already_present" for o in done)
    rejected = sum(o.status == "rejected" for o in done)
    how = (
        "stopped after the batch in progress"
        if exact
        else "interrupted again: the batch in progress was abandoned"
    )
    warn(
        f"interrupted after {len(done)} of {total} file(s) ({how}): {imported} imported, "
        f"{present} already present, {rejected} rejected. Run the same command again to "
        "resume: stored files are recognised and skipped."
    )
    sys.stderr.flush()
    raise typer.Exit(128 + signal.SIGINT)


# --- export ------------------------------------------------------------------------


@app.command("export")
def export_command(
    run_id: Annotated[
        str | None,
        typer.Argument(help="The run to export, id or unique prefix (else every matching run)."),
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
    export_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="json: KITT documents; csv or parquet: one row per metric value "
            "(tidy data; parquet needs karr-db[analysis]).",
        ),
    ] = "json",
) -> None:
    """Write stored runs back to KITT result documents (streamed, importable again),
    or their metric values as tidy CSV/Parquet.

    One run goes to FILE; with filters (or none) every matching run goes to
    DIR/<run id>/metrics.json. With --format csv|parquet, -o names the file
    (csv: "-" for standard output) and gets one row per metric value: run id,
    model, engine, suite, timestamp, GPU, test, run number, metric, value.

    Example: karr-db export --model llama-3-8b --engine vllm -o exported/

    Example: karr-db export --format parquet --since 30d -o values.parquet
    """
    if export_format not in ("json", *tidy.FORMATS):
        raise typer.BadParameter(
            f"unknown format {export_format!r}; use json, csv or parquet", param_hint="--format"
        )
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
    if export_format != "json":
        _export_tidy(database, run_id, output, export_format, filters)
        return
    with open_database(database) as db, db.unit_of_work(readonly=True) as uow:
        if run_id is not None:
            run_id = uow.results.resolve_id(run_id)
            target = output / f"{run_id}.json" if output.is_dir() else output
            export_run(uow.session, run_id, target)
            say(f"wrote {target}")
            return
        count = export_runs(uow.session, output, filters)
    say(f"exported {count} run(s) to {output}")


def _export_tidy(
    database: str | None,
    run_id: str | None,
    output: Path,
    export_format: str,
    filters: dict[str, Any],
) -> None:
    to_stdout = str(output) == "-"
    if to_stdout and export_format != "csv":
        raise typer.BadParameter("only csv can go to standard output", param_hint="--output")
    if output.is_dir():
        raise typer.BadParameter(
            f"{output} is a directory; name the {export_format} file", param_hint="--output"
        )
    with open_database(database) as db, db.unit_of_work(readonly=True) as uow:
        run_ids = None if run_id is None else [uow.results.resolve_id(run_id)]
        count = tidy.export_metric_values(
            uow.session,
            cast(TextIO, state.stdout) if to_stdout else output,
            format="parquet" if export_format == "parquet" else "csv",
            filters=filters,
            run_ids=run_ids,
        )
    if not to_stdout:
        say(f"wrote {count} metric value(s) to {output}")


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
    cursor: Annotated[
        str | None,
        typer.Option(
            "--cursor", help="Continue after a previous page (its next_cursor in --json)."
        ),
    ] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    Run ids are shown as their shortest unique prefix (at least 8 characters),
    which every command taking a run id accepts. --json gives full ids, the
    total and the cursor of the next page.

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
    with open_database(database) as db, db.unit_of_work(readonly=True) as uow:
        # Streamed page by page (keyset, the repository's largest page): memory stays
        # flat whatever -n says, where building the whole list took ~4 kB a run.
        pages = _Pages(lambda **page: uow.results.list_runs(filters, **page), cursor)
        runs = paged(pages, limit, page_size=MAX_LIMIT)
        total = uow.results.count(filters)
        if as_json:
            stream_json_object(
                "items", runs, lambda: {"total": total, "next_cursor": pages.next_cursor}
            )
            return
        shown = 0
        chunks = _chunks(runs, MAX_LIMIT)
        for chunk in chunks if total else iter([[]]):
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
            elif plain_table(cells, header=shown == 0):  # a pipe: the same bytes, no Rich
                shown += len(chunk)
                continue
            rows = table(*cells)
            rows.show_header = shown == 0  # one table to the eye, one page in memory
            for column in rows.columns:
                column.no_wrap = True
            for values in zip(*cells.values(), strict=True):
                rows.add_row(*values)
            show(rows)
            shown += len(chunk)
    say(f"{shown} of {total} run(s)")


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Pages:
    """Pages of ``list_runs`` starting at ``cursor``; remembers where the last one
    stopped, for ``--json``'s ``next_cursor``."""

    def __init__(self, fetch: Callable[..., Page[RunSummary]], cursor: str | None) -> None:
        self._fetch = fetch
        self._first = cursor
        self.next_cursor: str | None = None

    def __call__(self, *, limit: int, cursor: str | None) -> Page[RunSummary]:
        page = self._fetch(limit=limit, cursor=cursor if cursor is not None else self._first)
        self.next_cursor = page.next_cursor
        return page


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
    as_json: JsonOption = False,
) -> None:
    """Show one run: its headline, hardware, benchmarks and metrics.

    Example: karr-db show 3f2c9a10
    """
    with open_database(database) as db, db.unit_of_work(readonly=True) as uow:
        run = uow.results.get(uow.results.resolve_id(run_id))
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
    with open_database(database) as db, db.unit_of_work(readonly=True) as uow:
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
    with open_database(database) as db, db.unit_of_work(readonly=True) as uow:
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
        if not rows:
            require_metric(uow.results, metric, test)
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
    close = nearest_metrics(metric, known)
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else "run `karr-db metrics` for the stored names"
    )
    raise typer.BadParameter(
        f"no metric {metric!r} is stored{where}; {hint}", param_hint="--metric"
    )


def _difference(value: float | None, base: float | None, diff: float | None) -> str:
    if value is None or diff is None:
        return fmt(value)
    percent = f", {diff / base:+.1%}" if base else ""
    return f"{fmt(value)} ({diff:+.4g}{percent})"


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
    as_json: JsonOption = False,
) -> None:
    """Compare the metrics of runs side by side, against the first.

    Example: karr-db compare RUN_A RUN_B RUN_C
    """
    if len(set(run_ids)) < 2:
        raise typer.BadParameter("give at least two different run ids", param_hint="RUN_IDS")
    with open_database(database) as db, db.unit_of_work(readonly=True) as uow:
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
    grid = table("benchmark", "#", "metric", *headers)
    for row in comparison.rows:
        base = row.values[0]
        cells = [fmt(base)] + [
            _difference(v, base, d)
            for v, d in zip(row.values[1:], row.differences[1:], strict=True)
        ]
        grid.add_row(fmt(row.test_name), fmt(row.run_number), row.metric, *cells)
    show(grid)
