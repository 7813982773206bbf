"""The durable marker of derivation still to do: ``karr_pending_derivation``.

Adoption and revision 0007 change the schema only; deriving the rows a save
would write from each stored document (benchmarks, nested metrics, hardware,
content fingerprints) is a separate step that ``upgrade`` runs afterwards, a
batch at a time (:mod:`karr_db.migrations.derivation`). Between the two the
runs to derive wait here, written in the same transaction as the schema
change, so a killed upgrade leaves an exact record of what is left.

The table is beyond the reference schema (revision 0007 declares it, and
adoption writes it too): one row per run waiting, ``position`` its place in
the order derivation follows (oldest first, so that each content goes to its
oldest run), deleted in the transaction that derives it. At rest it is empty;
it stays, so that a reader outside the migration lock (``status``, the
readiness check) never finds it gone between listing the tables and reading
it. While it holds a row the readiness
check refuses the database: reads would miss nested metrics and writes would
duplicate contents whose fingerprint is not in ``run_fingerprints`` yet;
``status`` counts the rows and ``check`` reports them.

Plain SQL over ``runs`` and ``benchmarks`` columns every schema has: revisions
and adoption call it, so it imports no code that moves on with the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.sql.expression import Executable

__all__ = [
    "TABLE",
    "count",
    "exists",
    "has_runs",
    "mark",
    "mark_statements",
    "next_batch",
    "remove",
]

TABLE = "karr_pending_derivation"

_TABLE = sa.Table(
    TABLE,
    sa.MetaData(),
    sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.Text(), nullable=False),
    sa.UniqueConstraint("run_id", name=f"uq_{TABLE}_run_id"),
)

#: Every run not queued yet, appended in age order: ``created_at`` (unknown
#: last), then its first benchmark id (the earlier system's insertion order),
#: then its id. A second marking in the same upgrade (adoption, then 0007)
#: adds nothing.
_MARK = f"""
INSERT INTO {TABLE} (position, run_id)
SELECT (SELECT coalesce(max(position), 0) FROM {TABLE})
       + row_number() OVER (
           ORDER BY r.created_at IS NULL, r.created_at, b.first IS NULL, b.first, r.id),
       r.id
FROM runs r
LEFT JOIN (SELECT run_id, min(id) AS first FROM benchmarks GROUP BY run_id) b
       ON b.run_id = r.id
WHERE NOT EXISTS (SELECT 1 FROM {TABLE} q WHERE q.run_id = r.id)
"""


def mark_statements() -> list[Executable]:
    """The statements that queue every stored run (online and in ``--sql`` alike)."""
    return [sa.schema.CreateTable(_TABLE, if_not_exists=True), sa.text(_MARK)]


def mark(connection: Connection) -> None:
    """Queue every stored run for derivation, in the caller's transaction."""
    for statement in mark_statements():
        connection.execute(statement)


def exists(connection: Connection) -> bool:
    return TABLE in sa.inspect(connection).get_table_names()


def has_runs(connection: Connection) -> bool:
    """Whether any run is still queued, the table being there."""
    return connection.execute(sa.select(_TABLE.c.position).limit(1)).first() is not None


def count(connection: Connection) -> int:
    """Runs still queued (0 without the table)."""
    if not exists(connection):
        return 0
    return int(connection.execute(sa.select(sa.func.count()).select_from(_TABLE)).scalar_one())


def next_batch(connection: Connection, size: int) -> list[str]:
    """The ids of the next ``size`` queued runs, oldest first."""
    return list(
        connection.execute(
            sa.select(_TABLE.c.run_id).order_by(_TABLE.c.position).limit(size)
        ).scalars()
    )


def remove(connection: Connection, run_ids: Sequence[str]) -> None:
    connection.execute(sa.delete(_TABLE).where(_TABLE.c.run_id.in_(list(run_ids))))
