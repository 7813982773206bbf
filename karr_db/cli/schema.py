"""Schema commands: upgrade (migrate), status, check, docs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from karr_db import migrations
from karr_db.cli._app import (
    DatabaseOption,
    JsonOption,
    app,
    lasting_url,
    refuse_switch_over,
    remember,
)
from karr_db.cli._output import facts, print_json, say, show, state, table, warn
from karr_db.config import set_value
from karr_db.engine import sqlite_path
from karr_db.errors import MissingDatabaseError
from karr_db.migrations.timestamps import LEGACY_TIMEZONE_ENV

LegacyTimezoneOption = Annotated[
    str | None,
    typer.Option(
        "--legacy-timezone",
        envvar=LEGACY_TIMEZONE_ENV,
        help="IANA zone in which the earlier system wrote naive local times "
        "(default: the zone the database records, else UTC).",
    ),
]


@app.command("upgrade")
def upgrade_command(
    database: DatabaseOption = None,
    sql: Annotated[
        bool,
        typer.Option(
            "--sql",
            help="Print the SQL upgrade would run on this database (from its current "
            "revision) instead of running it.",
        ),
    ] = False,
    from_empty: Annotated[
        bool,
        typer.Option(
            "--from-empty",
            help="With --sql: the whole schema, as for an empty database (the database "
            "is not read).",
        ),
    ] = False,
    no_backup: Annotated[
        bool,
        typer.Option(
            "--no-backup",
            help="Do not write a backup copy of a SQLite file before adopting it.",
        ),
    ] = False,
    legacy_timezone: LegacyTimezoneOption = None,
    remember_it: Annotated[
        bool,
        typer.Option(
            "--remember",
            help="Record this database as the default in the configuration file "
            "(after adopting one, a terminal is asked).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Adopt a legacy database if needed and upgrade it to the newest schema.

    Example: karr-db upgrade --legacy-timezone Europe/Berlin
    """
    refuse_switch_over(database)
    url = state.url(database)
    if from_empty and not sql:
        raise typer.BadParameter("--from-empty goes with --sql", param_hint="--from-empty")
    if sql:
        script = migrations.upgrade_sql(url, from_empty=from_empty)
        path = sqlite_path(url)
        if not from_empty and path is not None and not path.exists():
            warn(f"{path.absolute()} does not exist: upgrade would create it with this SQL")
        if not script.sql:
            warn(f"nothing to do: the database is at revision {script.to_revision}, the head")
            return
        state.stdout.write(script.sql)
        return
    report = migrations.upgrade(url, backup=not no_backup, legacy_timezone=legacy_timezone)
    if as_json:
        print_json(report)
        if remember_it:
            set_value("database.url", lasting_url(url))
        return
    if report.created:
        say(f"created a new database at {_absolute(sqlite_path(url))}")
    if report.backup:
        say(f"backup of the database before adoption: {report.backup}")
    if report.adopted:
        was = (
            f"schema_version {report.from_schema_version}"
            if report.from_schema_version is not None
            else "an unknown schema_version"
        )
        say(f"adopted the legacy database (it was at {was}, without an Alembic revision)")
        say(
            f"read {report.timestamps_interpreted:,} naive local time(s) in "
            f"{report.legacy_timezone}; rewrote "
            f"{sum(report.timestamps_rewritten.values()):,} timestamp(s) into canonical UTC text"
        )
    for note in report.notes:
        say(note)
    if report.applied:
        say(f"applied: {', '.join(report.applied)}")
    elif report.derived is None:
        say("already up to date")
    if report.derived is not None:
        derived = report.derived
        say(
            f"derived the rows of {derived.runs:,} run(s) from their documents: "
            f"{derived.benchmarks_added:,} benchmark(s), {derived.metrics_added:,} metric(s), "
            f"{derived.hardware_added:,} hardware row(s), "
            f"{derived.fingerprints_added:,} fingerprint(s)"
        )
        for example in derived.refused_examples:
            warn(f"nothing derived for {example} (a save would refuse its document)")
    say(f"database at revision {report.to_revision}")
    if remember_it or report.adopted:
        remember(url, ask=not remember_it)


def _require_file(url: str) -> None:
    """Reading commands report a missing SQLite file instead of calling it empty."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise MissingDatabaseError(str(path.absolute()))


def _absolute(path: Path | None) -> str:
    return str(path.absolute()) if path is not None else "-"


app.command(
    "migrate",
    help="Alias of upgrade.\n\nExample: karr-db migrate",
)(upgrade_command)


@app.command("repair-timestamps")
def repair_timestamps_command(
    database: DatabaseOption = None,
    legacy_timezone: LegacyTimezoneOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rewrite timestamp text that is not in the canonical form, in one transaction.

    For what `karr-db check` reports as "timestamps". A zone given here is also
    recorded for the database's triggers.

    Example: karr-db repair-timestamps --legacy-timezone America/New_York
    """
    report = migrations.repair_timestamps(state.url(database), legacy_timezone=legacy_timezone)
    if as_json:
        print_json(report)
        return
    for column, count in report.rewritten.items():
        say(f"{column}: rewrote {count:,}")
    for column, count in report.unreadable.items():
        warn(f"{column}: {count:,} value(s) are no timestamp at all; left as they are")
    for note in report.notes:
        say(note)
    say(
        f"rewrote {sum(report.rewritten.values()):,} timestamp(s); read "
        f"{report.interpreted:,} naive local time(s) in {report.legacy_timezone}"
    )


@app.command("status")
def status_command(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Show the revision, schema version, pending revisions and row counts.

    Example: karr-db status --json
    """
    refuse_switch_over(database)
    url = state.url(database)
    _require_file(url)
    status = migrations.status(url)
    counts = status.row_counts
    if as_json:
        print_json(status.model_dump(mode="json"))
        return
    show(
        facts(
            ("database", status.url),
            ("state", status.kind.value),
            ("alembic revision", status.alembic_revision),
            ("KITT schema", status.schema_version),
            ("head", f"{status.head_revision} (KITT schema {status.head_schema_version})"),
            ("pending", ", ".join(status.pending) or "none"),
            (
                "derivation pending",
                f"{status.derivation_pending:,} runs: run `karr-db upgrade`"
                if status.derivation_pending
                else "none",
            ),
            ("needs adoption", status.needs_adoption),
        )
    )
    if counts:
        rows = table("table", "rows")
        for name, count in counts.items():
            rows.add_row(name, f"{count:,}")
        show(rows)


@app.command("check")
def check_command(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Report drift between the models and the database; exit 1 on any finding.

    Example: karr-db check --database sqlite:///karr.db
    """
    refuse_switch_over(database)
    url = state.url(database)
    _require_file(url)
    findings = migrations.check(url)
    if as_json:
        print_json(findings)
    elif findings:
        for finding in findings:
            say(f"{finding.kind}: {finding.message}")
        say(f"{len(findings)} finding(s)")
    else:
        say("no findings: the schema matches the models")
    if findings:
        raise typer.Exit(1)


@app.command("docs")
def docs_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the schema reference.")
    ] = Path("docs") / "database.md",  # docs.DEFAULT_PATH, without importing docs
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if the file is not up to date."),
    ] = False,
) -> None:
    """Write the schema reference (docs/database.md) generated from the models.

    Example: karr-db docs --check
    """
    from karr_db.cli import docs

    if check:
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current != docs.render():
            warn(f"{output} is out of date: run `karr-db docs -o {output}` and commit it")
            raise typer.Exit(1)
        say(f"{output} is up to date")
        return
    changed = docs.write(output)
    say(f"{'wrote' if changed else 'unchanged:'} {output}")


@app.command("backup")
def backup_command(
    path: Annotated[
        str,
        typer.Argument(
            help="A SQLite file (or sqlite:/// URL); default: the command's database.",
            show_default=False,
        ),
    ] = "",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a consistent copy of a SQLite database beside it (SQLite's online backup).

    The copy is named <name>.backup-<UTC time>.db and never overwrites one.
    PostgreSQL: use pg_dump (the error message shows how).

    Example: karr-db backup ~/.kitt/kitt.db
    """
    from karr_db.backup import backup_database, backup_sqlite

    if path and "://" not in path:
        written = backup_sqlite(Path(path).expanduser())
    else:
        written = backup_database(path or state.url(database))
    if as_json:
        print_json({"backup": str(written)})
        return
    say(f"backup written to {written}")


@app.command(
    "alembic",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def alembic_command(ctx: typer.Context) -> None:
    """Run Alembic against karr_db's own migration scripts (no alembic.ini needed).

    Everything after `alembic` goes to Alembic as is; the database is -x url=...,
    else --database before the command, else $KARR_DATABASE_URL, else the default.

    Example: karr-db alembic -x url=sqlite:///karr.db current
    """
    from alembic.config import CommandLine

    from karr_db.migrations.scripts import packaged_alembic_config

    cli = CommandLine(prog="karr-db alembic")
    options = cli.parser.parse_args(ctx.args)
    if not hasattr(options, "cmd"):
        cli.parser.print_help()
        raise typer.Exit(2)
    config = packaged_alembic_config(state.url(None) if state.database else None)
    config.cmd_opts = options
    cli.run_cmd(config, options)
