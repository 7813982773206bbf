"""``karr-db grant ROLE``: the least-privilege grants of the application role (PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

import typer

from karr_db import security
from karr_db.cli._app import DatabaseOption, app
from karr_db.cli._output import say, state


@app.command("grant")
def grant_command(
    role: Annotated[str, typer.Argument(help="The existing role the application connects as.")],
    database: DatabaseOption = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the statements instead of running them.")
    ] = False,
    schema: Annotated[str, typer.Option("--schema", help="The schema of the tables.")] = "public",
) -> None:
    """Give ROLE exactly what the application needs, and no DDL (run as the owner).

    SELECT/INSERT/UPDATE/DELETE on the tables, SELECT/INSERT on the append-only
    events, SELECT on the version tables, USAGE/SELECT on the sequences.
    It also revokes CREATE on the schema (public by default) from PUBLIC, so
    no role that merely connects can create objects there (--sql shows every
    statement). Idempotent: run it again after every upgrade.

    Example: karr-db grant karr_app --database postgresql://owner@db.example/karr
    """
    if sql:
        state.stdout.write(
            "".join(f"{s};\n" for s in security.grant_statements(role, schema=schema))
        )
        return
    statements = security.grant(state.url(database), role, schema=schema)
    say(f"granted the application privileges to {role!r} ({len(statements)} statements)")
