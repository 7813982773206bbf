"""Moving runs in and out: ``import`` (files to rows) and ``export`` (rows back to
documents, or one row per metric value as CSV/Parquet)."""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO, cast

import typer

from karr_db import tidy
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
    resolve_model,
    run_filters,
)
from karr_db.cli._output import print_json, say, show, state, table, warn
from karr_db.importing import (
    IMPORT_BATCH_SIZE,
    collect_files,
    export_run,
    export_runs,
    import_files,
)
from karr_db.repositories.results.dto import ImportOutcome, ImportReport


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
    replica: ReplicaOption = None,
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
    filters = run_filters(locals())
    if output is None:
        raise typer.BadParameter("say where to write with -o FILE or -o DIR", param_hint="--output")
    if run_id is not None and filters:
        raise typer.BadParameter("give either RUN_ID or filters, not both", param_hint="RUN_ID")
    if export_format != "json":
        _export_tidy(database, replica, run_id, output, export_format, filters)
        return
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        filters = resolve_model(uow.results, filters)
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
    replica: str | None,
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
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        run_ids = None if run_id is None else [uow.results.resolve_id(run_id)]
        count = tidy.export_metric_values(
            uow.session,
            cast(TextIO, state.stdout) if to_stdout else output,
            format="parquet" if export_format == "parquet" else "csv",
            filters=resolve_model(uow.results, filters),
            run_ids=run_ids,
        )
    if not to_stdout:
        say(f"wrote {count} metric value(s) to {output}")


# --- reading -----------------------------------------------------------------------
