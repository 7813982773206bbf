"""Adopting KITT's later schemas 3..11: what a KITT database at schema N must hold,
and the two legs that bring it to revision N's stamp.

The chain is linear: KITT's schemas 1 and 2 (revisions 0001, 0002), karr_db's own
revisions, then KITT's schemas 3..11 (0020..0028), then karr_db's own again. A
database KITT took to schema N already has what revisions 0020..N did (with
their side effects: tokens moved, default settings), but none of karr_db's own
revisions. So adoption conforms the tables of schema N (the reference's, KITT's
later columns on them, KITT's later tables), stamps revision 0002, runs
karr_db's own revisions up to N itself (:func:`run_own_revisions`), and stamps
N; the upgrade then carries on from N like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from karr_db.errors import AdoptionError
from karr_db.migrations import timestamps
from karr_db.migrations.ops import RevisionContract
from karr_db.migrations.scripts import contracts, revision_for_version
from karr_db.models import Base

__all__ = [
    "REFERENCE_VERSION",
    "lineage_tables",
    "refuse_incomplete",
    "run_own_revisions",
]

#: The last schema the reference describes; KITT's later ones are its lineage.
REFERENCE_VERSION = 2


def _kitt_contracts(script: ScriptDirectory) -> Iterator[tuple[int, RevisionContract]]:
    """KITT's later schemas (3..), each with its revision's contract."""
    for contract in contracts(script).values():
        version = contract.reference_schema_version
        if version is not None and version > REFERENCE_VERSION:
            yield version, contract


def lineage_tables(
    reference: list[sa.Table], version: int, script: ScriptDirectory
) -> list[sa.Table]:
    """The tables of KITT's schema ``version``: the reference's (``reference``, the
    tables of schema 2) with the columns schemas 3..``version`` added to them, and the
    tables those schemas created, as their revisions build them.

    An added column is copied from the models: the revisions that add one
    declare its name, and its definition has not changed since.
    """
    metadata = sa.MetaData()
    base = {t.name: t for t in reference}
    added: dict[str, list[sa.Column[object]]] = {}
    new_tables: list[str] = []
    later: list[RevisionContract] = [c for v, c in _kitt_contracts(script) if v <= version]
    for contract in later:
        for column in contract.columns:
            added.setdefault(column.table, []).append(
                Base.metadata.tables[column.table].c[column.name]._copy()
            )
    for table in reference:
        table.to_metadata(metadata)
    for contract in later:
        new_tables += [t.name for t in contract.table_objects(metadata)]
    for name, copies in added.items():
        if name not in base:
            continue  # a column on a table of schema 3..N: already part of its table
        for copy in copies:
            metadata.tables[name].append_column(copy)
    return [t for t in metadata.sorted_tables if t.name in base or t.name in new_tables]


def refuse_incomplete(connection: Connection, version: int, script: ScriptDirectory) -> None:
    """Refuse, before anything is written, a database that is not KITT's schema ``version``:
    a table or column that schemas 3..``version`` add is missing, or a table or column
    of a later schema is present (adoption would otherwise drop it with its data)."""
    present = set(sa.inspect(connection).get_table_names())
    inspector = sa.inspect(connection)
    for number, contract in _kitt_contracts(script):
        names = contract.table_names()
        if number <= version:
            for name in names:
                if name not in present:
                    raise AdoptionError(
                        f"schema_version says KITT's schema {version}, but table {name} "
                        f"(added by KITT's schema {number}) is missing. {_NEXT_STEP}",
                        table=name,
                    )
            for column in contract.columns:
                live = {c["name"] for c in inspector.get_columns(column.table)}
                if column.name not in live:
                    raise AdoptionError(
                        f"schema_version says KITT's schema {version}, but this column "
                        f"(added by KITT's schema {number}) is missing. {_NEXT_STEP}",
                        table=column.table,
                        column=column.name,
                    )
        else:
            for name in names:
                if name in present:
                    raise AdoptionError(
                        f"table {name} belongs to KITT's schema {number}, but "
                        f"schema_version says {version}. {_NEXT_STEP}",
                        table=name,
                    )
            for column in contract.columns:
                if column.table in present and column.name in {
                    c["name"] for c in inspector.get_columns(column.table)
                }:
                    raise AdoptionError(
                        f"this column belongs to KITT's schema {number}, but "
                        f"schema_version says {version}. {_NEXT_STEP}",
                        table=column.table,
                        column=column.name,
                    )


_NEXT_STEP = (
    "This is not a database KITT made: restore it from a backup, or open it with the "
    "KITT release that wrote it so that its migrations complete, then run upgrade again"
)


def run_own_revisions(
    connection: Connection, version: int, script: ScriptDirectory, zone: ZoneInfo
) -> list[str]:
    """Run karr_db's own revisions between revision 0002 and KITT's schema ``version``
    (the database is stamped at 0002), and return them.

    KITT's revisions among them are not run: the database already has what they
    do. ``schema_version`` keeps KITT's rows as they are (revision 0005 removes
    rows 3 and 4, which are karr_db's own only where karr_db wrote them).
    Revision 0006 records ``zone``, the one adoption read naive times in.
    """
    from alembic import context
    from alembic.operations import Operations

    context.config.attributes[timestamps.ATTR_ADOPTED] = zone
    chain = contracts(script)
    order = list(chain)
    start = order.index(revision_for_version(REFERENCE_VERSION, script)) + 1
    stop = order.index(revision_for_version(version, script))
    own = [r for r in order[start:stop] if chain[r].reference_schema_version is None]
    versions = sa.table("schema_version", sa.column("version", sa.Integer), sa.column("applied_at"))
    kept = connection.execute(sa.select(versions.c.version, versions.c.applied_at)).all()
    migration = MigrationContext.configure(connection)
    with Operations.context(migration):
        for revision in own:
            module = script.get_revision(revision)
            assert module is not None
            module.module.upgrade()
    now = set(connection.execute(sa.select(versions.c.version)).scalars())
    lost = [{"version": v, "applied_at": at} for v, at in kept if v not in now]
    if lost:
        connection.execute(versions.insert(), lost)
    return own
