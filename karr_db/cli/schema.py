"""Schema commands: upgrade (migrate), status, check, docs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from karr_db import docs, migrations
from karr_db.cli._app import (
    DatabaseOption,
    JsonOption,
    app,
    fmt,
    print_json,
    say,
    show,
    state,
    table,
    warn,
)
from karr_db.database import Database
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
        bool, typer.Option("--sql", help="Print the DDL instead of running it.")
    ] = False,
    legacy_timezone: LegacyTimezoneOption = None,
    as_json: JsonOption = False,
) -> None:
    """Adopt a legacy database if needed and upgrade it to the newest schema.

    Example: karr-db upgrade --legacy-timezone Europe/Berlin
    """
    url = state.url(database)
    if sql:
        state.stdout.write(migrations.upgrade_sql(url))
        return
    report = migrations.upgrade(url, legacy_timezone=legacy_timezone)
    if as_json:
        print_json(report)
        return
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
    else:
        say("already up to date")
    say(f"database at revision {report.to_revision}")


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
    with Database(state.url(database)) as db:
        status = db.status()
    counts = status.row_counts
    if as_json:
        print_json(status.model_dump(mode="json"))
        return
    summary = table("", "", title=None)
    summary.show_header = False
    summary.box = None
    for key, value in (
        ("database", status.url),
        ("state", status.kind.value),
        ("alembic revision", status.alembic_revision),
        ("reference schema", status.schema_version),
        ("head", f"{status.head_revision} (reference schema {status.head_schema_version})"),
        ("pending", ", ".join(status.pending) or "none"),
        ("needs adoption", status.needs_adoption),
    ):
        summary.add_row(key, fmt(value))
    show(summary)
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
    findings = migrations.check(state.url(database))
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
    ] = docs.DEFAULT_PATH,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if the file is not up to date."),
    ] = False,
) -> None:
    """Write the schema reference (docs/database.md) generated from the models.

    Example: karr-db docs --check
    """
    if check:
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current != docs.render():
            warn(f"{output} is out of date: run `karr-db docs -o {output}` and commit it")
            raise typer.Exit(1)
        say(f"{output} is up to date")
        return
    changed = docs.write(output)
    say(f"{'wrote' if changed else 'unchanged:'} {output}")
