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


@app.command("upgrade")
def upgrade_command(
    database: DatabaseOption = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the DDL instead of running it.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Adopt a legacy database if needed and upgrade it to the newest schema.

    Example: karr-db upgrade --database postgresql://karr@db.example/karr
    """
    url = state.url(database)
    if sql:
        state.stdout.write(migrations.upgrade_sql(url))
        return
    report = migrations.upgrade(url)
    if as_json:
        print_json(report)
        return
    if report.adopted:
        say(f"adopted the legacy database (it was at revision {report.from_revision or '-'})")
    if report.applied:
        say(f"applied: {', '.join(report.applied)}")
    else:
        say("already up to date")
    say(f"database at revision {report.to_revision}")


app.command(
    "migrate",
    help="Alias of upgrade.\n\nExample: karr-db migrate",
)(upgrade_command)


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
