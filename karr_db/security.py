"""Least privilege on PostgreSQL: the grants of the role the application runs as.

Migrations run as the role that owns the tables. Agents, the dashboard and
scripts should connect as a separate role holding only what the repositories
use:

- SELECT, INSERT, UPDATE, DELETE on the tables they write;
- SELECT on ``events`` and EXECUTE on ``karr_append_events`` (revision 0008),
  the one way it appends: the function takes the event-log lock and draws
  the ids, so the role can neither choose an id nor append outside the lock,
  and with no UPDATE, DELETE or TRUNCATE (and the append-only triggers of
  revision 0003 as a second line) it cannot rewrite the log;
- no TEMP: PUBLIC's TEMPORARY privilege on the database is revoked (the role
  running ``grant`` keeps it), so it creates no temporary tables or functions;
- SELECT on ``schema_version`` and ``alembic_version`` (``status`` works, the
  version cannot be forged);
- USAGE and SELECT on the sequences behind the SERIAL ids;
- USAGE on the schema, and no CREATE on it (PostgreSQL 15 already revokes
  CREATE on ``public`` from PUBLIC; the statements say so for older servers).

Not owning anything, it can run no DDL: CREATE, ALTER, DROP and TRUNCATE fail
with "permission denied" or "must be owner". The statements are idempotent
(everything is revoked from the role first, so re-running after an upgrade
that added a table or column leaves exactly these grants). SQLite has no roles;
protect its file with file-system permissions instead.
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from karr_db.dialects import for_connection
from karr_db.engine import make_engine
from karr_db.errors import KarrError, NotFoundError

__all__ = [
    "APPEND_ONLY_TABLES",
    "QUEUE_TABLE",
    "READ_ONLY_TABLES",
    "READ_WRITE_TABLES",
    "grant",
    "grant_statements",
]

#: Tables the application reads and writes.
READ_WRITE_TABLES = (
    "runs",
    "benchmarks",
    "metrics",
    "hardware",
    "run_fingerprints",  # every save writes its content's owner (revision 0007)
    "agents",
    "web_campaigns",
    "quick_tests",
    # Beyond the reference (revision 0010): every save and delete maintains it.
    "leaderboard_aggregates",
    # KITT's later schemas 3..11: registration writes agent settings, and the
    # dashboard's settings, logs, engine profiles and engine reports are written
    # like the agents and tests they belong to.
    "web_settings",
    "agent_settings",
    "quick_test_logs",
    "campaign_logs",
    "engine_profiles",
    "agent_engines",
)
#: Tables the application may only read and append to.
APPEND_ONLY_TABLES = ("events",)
#: The only way the application appends events (revision 0008).
APPEND_FUNCTION = "karr_append_events(text[], text[], jsonb[], timestamptz)"
#: Tables only migrations write.
READ_ONLY_TABLES = ("schema_version", "alembic_version")
#: Only ``upgrade`` writes it; readiness reads it (see :mod:`karr_db.migrations.pending`).
QUEUE_TABLE = "karr_pending_derivation"


class GrantError(KarrError):
    """The grants cannot be applied as asked (wrong dialect, or a role that owns the schema)."""


def quote_identifier(name: str) -> str:
    """A PostgreSQL identifier, always quoted, so any role name is taken literally."""
    if not name or "\x00" in name:
        raise GrantError("a role name must be non-empty and free of NUL characters")
    return '"' + name.replace('"', '""') + '"'


def grant_statements(role: str, *, schema: str = "public", queue: bool = True) -> list[str]:
    """The SQL that gives ``role`` exactly the application's privileges (see module doc).

    ``queue``: whether the schema has the derivation queue, which readiness reads
    (databases that passed revision 0007 before it declared the queue have none).
    """
    r, s = quote_identifier(role), quote_identifier(schema)

    def tables(names: tuple[str, ...]) -> str:
        return ", ".join(f"{s}.{quote_identifier(n)}" for n in names)

    read_only = READ_ONLY_TABLES + ((QUEUE_TABLE,) if queue else ())

    return [
        f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
        f"REVOKE CREATE ON SCHEMA {s} FROM {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {tables(READ_WRITE_TABLES)} TO {r}",
        # Appends go through revision 0008's function only: it takes the
        # event-log lock and draws the ids, so this role chooses none.
        f"GRANT SELECT ON TABLE {tables(APPEND_ONLY_TABLES)} TO {r}",
        f"REVOKE ALL ON FUNCTION {s}.{APPEND_FUNCTION} FROM {r}",
        f"GRANT EXECUTE ON FUNCTION {s}.{APPEND_FUNCTION} TO {r}",
        f"GRANT SELECT ON TABLE {tables(read_only)} TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        # PUBLIC's TEMP would let this role create temporary tables and
        # functions; the owner keeps it (adoption uses a pg_temp function).
        # Only the database's owner or a superuser can say this; for anyone
        # else PostgreSQL warns and changes nothing (docs/reliability.md).
        "DO $$BEGIN EXECUTE 'GRANT TEMPORARY ON DATABASE ' || quote_ident(current_database()) "
        "|| ' TO ' || quote_ident(current_user); EXECUTE 'REVOKE TEMPORARY ON DATABASE ' "
        "|| quote_ident(current_database()) || ' FROM PUBLIC'; END$$",
    ]


def grant(target: Engine | str | URL, role: str, *, schema: str = "public") -> list[str]:
    """Apply :func:`grant_statements` in one transaction as the owner; the statements run.

    The role must exist and must not own the tables (an owner can always
    change the schema, whatever it is granted).
    """
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        if not for_connection(engine).supports_roles:
            raise GrantError(
                "roles and grants are a PostgreSQL feature; protect a SQLite file with "
                "file-system permissions"
            )
        with engine.begin() as connection:
            queue = connection.scalar(
                text("SELECT to_regclass(quote_ident(:s) || '.' || quote_ident(:t)) IS NOT NULL"),
                {"s": schema, "t": QUEUE_TABLE},
            )
            statements = grant_statements(role, schema=schema, queue=bool(queue))
            if (
                connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
                is None
            ):
                raise NotFoundError("role", role)
            owned = connection.scalars(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = :s AND tableowner = :r "
                    "ORDER BY tablename"
                ),
                {"s": schema, "r": role},
            ).all()
            if owned:
                raise GrantError(
                    f"role {role!r} owns {', '.join(owned)}: the application needs a role of "
                    "its own that owns nothing (nothing was changed)"
                )
            public_may_create = connection.scalar(
                text("SELECT has_schema_privilege('public', :s, 'CREATE')"), {"s": schema}
            )
            for statement in statements:
                if statement.endswith("FROM PUBLIC") and not public_may_create:
                    continue  # already so (PostgreSQL 15), and only the schema owner may say it
                connection.exec_driver_sql(statement)
        return statements
    finally:
        if engine is not target:
            engine.dispose()
