"""Pieces several revisions build their schema and SQL from, frozen with them.

A revision does the same thing in every release, so what it uses from here must
too: a function or constant a revision uses never changes its effect; a new
need gets a new function (or a new constant) beside the old one. This module
imports only the standard library, SQLAlchemy and Alembic, never karr_db
(``tests/unit/test_frozen_migrations.py`` and the import-linter contract hold
it to that), so that nothing it reaches moves on with the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The reference's types: TEXT / INTEGER / REAL on SQLite, native on PostgreSQL.
TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BOOLEAN = sa.Integer().with_variant(postgresql.BOOLEAN(), "postgresql")
DOUBLE: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)

#: The event-log lock of revisions 0008 and 0012 (0x4B455654, "KEVT"): the key the
#: layer's appends take (:data:`karr_db.dialects.EVENT_LOG_LOCK_KEY`), so appends
#: through the layer and through ``karr_append_events`` serialise.
EVENTS_LOCK_KEY = 0x4B455654

#: The end of ``karr_append_events`` (revisions 0008 and 0012): under the
#: event-log lock, the ids drawn from the sequence, the rows inserted, listeners
#: notified of the newest id.
APPEND_EVENTS_TAIL = f"""    PERFORM pg_advisory_xact_lock({EVENTS_LOCK_KEY});
    WITH input AS (
        SELECT * FROM unnest(event_types, source_ids, payloads)
            WITH ORDINALITY AS t(event_type, source_id, data, n)
    ), numbered AS MATERIALIZED (
        SELECT n, nextval(pg_get_serial_sequence('events', 'id')) AS id FROM input
    ), inserted AS (
        INSERT INTO events (id, event_type, source_id, data, created_at)
        SELECT numbered.id, event_type, source_id, data, created FROM input JOIN numbered USING (n)
    )
    SELECT array_agg(id ORDER BY n) INTO ids FROM numbered;
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('karr_events', ids[array_upper(ids, 1)]::text);
    END IF;
    RETURN ids;
END
"""


def column(
    name: str,
    type_: sa.types.TypeEngine[Any],
    comment: str,
    *,
    nullable: bool = True,
    default: str | None = None,
) -> sa.Column[Any]:
    """A column as the revisions declare one: ``default`` is server-side SQL text."""
    server_default = None if default is None else sa.text(default)
    return sa.Column(name, type_, server_default=server_default, nullable=nullable, comment=comment)


def foreign_key(
    table: str, column: str, target: str, *, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    """``table.column`` referencing ``target.id``, named ``fk_<table>_<column>_<target>``."""
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def add_column(
    table: str,
    name: str,
    type_: sa.types.TypeEngine[Any],
    comment: str,
    *,
    nullable: bool = True,
    default: str | None = None,
) -> None:
    """ALTER TABLE .. ADD COLUMN, the column as :func:`column` declares it."""
    op.add_column(table, column(name, type_, comment, nullable=nullable, default=default))


def log_table(
    metadata: sa.MetaData, name: str, owner: str, owner_table: str, owner_comment: str
) -> sa.Table:
    """An output-lines table (KITT's schemas 7 and 10): numbered lines of one
    owner, ``owner`` its ``*_id`` column, indexed as ``idx_<name>_<owner less _id>``.
    ``created_at`` is TIMESTAMPTZ on PostgreSQL by the reference's rule for
    ``*_at`` columns."""
    table = sa.Table(
        name,
        metadata,
        column("id", sa.Integer(), "Line sequence number; readers page after it", nullable=False),
        column(owner, sa.Text(), owner_comment, nullable=False),
        column("line", sa.Text(), "One line of output", nullable=False),
        column(
            "created_at", TIMESTAMP, "When the line was stored (UTC)", default="CURRENT_TIMESTAMP"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        foreign_key(name, owner, owner_table),
        sqlite_autoincrement=True,
    )
    sa.Index(f"idx_{name}_{owner.removesuffix('_id')}", table.c[owner])
    return table


def execute_on_dialect(*, on_sqlite: Sequence[str], on_postgresql: Sequence[str]) -> None:
    """Run this dialect's statements (stripped of surrounding white space), plain
    SQL through ``op.execute`` so that ``--sql`` renders them too."""
    dialect = op.get_context().dialect.name
    for statement in on_postgresql if dialect == "postgresql" else on_sqlite:
        op.execute(statement.strip())
