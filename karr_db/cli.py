"""``karr-db``: the command line over karr_db's Python API (no SQL here)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from karr_db import __version__, migrations
from karr_db.db import DATABASE_URL_ENV, default_database_url
from karr_db.errors import KarrError

app = typer.Typer(
    help="Migrate, inspect and check KARR databases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        help=f"Database URL (default: ${DATABASE_URL_ENV}, else the SQLite file ~/.kitt/karr.db).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _url(database: str | None) -> str:
    return database or default_database_url()


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    return typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        out.print(f"karr-db {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Migrate, inspect and check KARR databases."""


@app.command("upgrade")
def upgrade_command(
    database: DatabaseOption = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the DDL instead of running it.")
    ] = False,
) -> None:
    """Adopt a legacy database if needed and upgrade it to the newest schema.

    Example: karr-db upgrade --database postgresql://karr@db/karr
    """
    try:
        if sql:
            typer.echo(migrations.upgrade_sql(_url(database)))
            return
        report = migrations.upgrade(_url(database))
    except KarrError as exc:
        raise _fail(exc) from None
    if report.adopted:
        out.print("adopted the legacy database")
    if report.applied:
        out.print(f"applied: {', '.join(report.applied)}")
    else:
        out.print("already up to date")


@app.command("status")
def status_command(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Show the database's revision, schema version and pending revisions.

    Example: karr-db status --json
    """
    state = migrations.status(_url(database))
    if as_json:
        typer.echo(state.model_dump_json(indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in (
        ("database", state.url),
        ("state", state.kind.value),
        ("alembic revision", state.alembic_revision or "-"),
        ("schema_version", str(state.schema_version) if state.schema_version else "-"),
        ("head", f"{state.head_revision} (schema_version {state.head_schema_version})"),
        ("pending", ", ".join(state.pending) or "none"),
        ("needs adoption", "yes" if state.needs_adoption else "no"),
    ):
        table.add_row(key, value)
    out.print(table)


@app.command("check")
def check_command(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Report drift between the models and the database; exit 1 on any finding.

    Example: karr-db check --database sqlite:///karr.db
    """
    findings = migrations.check(_url(database))
    if as_json:
        typer.echo(json.dumps([f.model_dump() for f in findings], indent=2))
    else:
        for finding in findings:
            out.print(f"{finding.kind}: {finding.message}", highlight=False)
        if not findings:
            out.print("no findings: schema matches the models")
    if findings:
        raise typer.Exit(1)
