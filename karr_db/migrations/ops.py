"""The karr_db API a revision imports: its contract, and the steps that read it.

Every revision declares, in one module-level ``contract``, what it adds to a
database: the tables (as ``sa.Table`` objects, as they are at that revision),
columns added to existing tables, indexes, triggers, functions, tables outside
the models, the event-log guards ``check`` verifies, and the reference schema
version it records (``None`` for karr_db's own revisions). Everything else
reads that one declaration: adoption (what to clear before the revisions run
again), ``check`` (what must still be there and still do what it did), the
generated schema reference, and ``--sql`` (the upgrade creates the declared
tables and indexes from it). The contract is validated when Alembic loads the
revision (:func:`karr_db.migrations.scripts.contract_of`), so a revision that
declares half of what it does, or nothing, fails every command that loads it,
with an error naming the revision. The one other karr_db module a revision
imports is :mod:`karr_db.migrations.frozen`, the pieces revisions share.

This module stays light: the models, the runner and Alembic's operations are
imported only when a step runs, so loading the revisions to read their
contracts costs no more than the contracts themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from karr_db.migrations.guards import (
    TG_BEFORE,
    TG_DELETE,
    TG_INSERT,
    TG_ROW,
    TG_TRUNCATE,
    TG_UPDATE,
    Guard,
    PostgresFunction,
    PostgresTrigger,
    SqliteTrigger,
)

__all__ = [
    "DIALECTS",
    "TG_BEFORE",
    "TG_DELETE",
    "TG_INSERT",
    "TG_ROW",
    "TG_TRUNCATE",
    "TG_UPDATE",
    "Column",
    "Index",
    "PostgresFunction",
    "PostgresTrigger",
    "RevisionContract",
    "SqliteTrigger",
    "Trigger",
    "canonical_events_no_update_sql",
    "canonical_timestamp_triggers",
    "create_declared",
    "install_canonical_timestamps",
    "install_lineage_timestamps",
    "install_time_range",
    "lineage_timestamp_triggers",
    "mark_derivation_pending",
    "no_tables",
    "record_schema_version",
    "refuse_downgrade",
    "time_range_triggers",
    "upgrade_declared",
]

#: The dialects karr_db migrates, in the order the documentation lists them.
DIALECTS: tuple[str, ...] = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Column:
    """A column a revision adds to a table an earlier revision created."""

    table: str
    name: str


@dataclass(frozen=True)
class Index:
    """An index a revision adds to an existing table (a new table's indexes are
    part of its ``sa.Table``). ``columns`` are names or column expressions
    (``sa.column("timestamp").desc().nulls_last()``)."""

    name: str
    table: str
    columns: tuple[str | sa.ColumnElement[Any], ...]
    dialects: tuple[str, ...] = DIALECTS


@dataclass(frozen=True)
class Trigger:
    """A trigger a revision installs (by name, so adoption can remove it and
    the documentation list it); what it must *do* is a guard, if ``check``
    verifies it."""

    name: str
    table: str
    dialect: str


def no_tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The ``tables`` of a revision that adds none."""
    return []


_TUPLES: dict[str, type | tuple[type, ...]] = {
    "columns": Column,
    "indexes": Index,
    "triggers": Trigger,
    "functions": str,
    "other_tables": str,
    "guards": (SqliteTrigger, PostgresFunction, PostgresTrigger),
}


@dataclass(frozen=True)
class RevisionContract:
    """What one revision adds, declared once (see the module docstring).

    ``tables(metadata)`` builds the tables the revision creates, as they are at
    that revision, into ``metadata`` and returns them (adoption builds the
    reference schema of a version from revisions 1..N this way). ``functions``
    are PostgreSQL function names; ``other_tables`` are tables outside the
    models (``karr_*``). Everything the revision adds beyond the reference must
    be rebuildable from the reference tables: adoption of a database that lost
    ``alembic_version`` removes it and the revision runs again.
    """

    reference_schema_version: int | None
    tables: Callable[[sa.MetaData], Sequence[sa.Table]] = no_tables
    columns: tuple[Column, ...] = ()
    indexes: tuple[Index, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    functions: tuple[str, ...] = ()
    other_tables: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()

    def problems(self) -> list[str]:
        """What is ill-typed in this declaration (empty when it is sound).

        Not raised from ``__init__``: the loader
        (:func:`karr_db.migrations.scripts.contract_of`) raises them together,
        naming the revision, which the contract does not know.
        """
        found = []
        version = self.reference_schema_version
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            found.append(f"reference_schema_version must be an int or None, not {version!r}")
        if not callable(self.tables):
            found.append(f"tables must be a function of a MetaData, not {self.tables!r}")
        for field in fields(self):
            kind = _TUPLES.get(field.name)
            value = getattr(self, field.name)
            if kind is not None and (
                not isinstance(value, tuple) or not all(isinstance(v, kind) for v in value)
            ):
                found.append(f"{field.name} must be a tuple of {_name(kind)}, not {value!r}")
        if found:
            return found
        named = [(ix.name, ix.dialects) for ix in self.indexes]
        named += [(t.name, (t.dialect,)) for t in self.triggers]
        for name, dialects in named:
            if not dialects or any(d not in DIALECTS for d in dialects):
                found.append(f"{name}: dialects must be among {DIALECTS}, not {dialects!r}")
        if found:
            return found
        try:
            self.table_objects()
        except Exception as exc:  # the revision's own code: report it, whatever it raised
            found.append(f"tables() fails: {type(exc).__name__}: {exc}")
        return found

    def table_objects(self, metadata: sa.MetaData | None = None) -> list[sa.Table]:
        """The declared tables, built (into ``metadata`` if given)."""
        built = list(self.tables(sa.MetaData() if metadata is None else metadata))
        if not all(isinstance(t, sa.Table) for t in built):
            raise TypeError(f"tables() must return sa.Table objects, not {built!r}")
        return built

    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.table_objects())

    def indexes_on(self, dialect: str) -> tuple[Index, ...]:
        return tuple(ix for ix in self.indexes if dialect in ix.dialects)

    def triggers_on(self, dialect: str) -> tuple[Trigger, ...]:
        return tuple(t for t in self.triggers if t.dialect == dialect)

    def functions_on(self, dialect: str) -> tuple[str, ...]:
        return self.functions if dialect == "postgresql" else ()

    def guards_on(self, dialect: str) -> tuple[Guard, ...]:
        if dialect == "sqlite":
            return tuple(g for g in self.guards if isinstance(g, SqliteTrigger))
        return tuple(g for g in self.guards if not isinstance(g, SqliteTrigger))


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " | ".join(k.__name__ for k in kinds)


# --- the steps a revision's upgrade() runs ------------------------------------------


def create_declared(contract: RevisionContract) -> None:
    """CREATE TABLE (with its indexes) for the declared tables, then CREATE INDEX
    for the declared indexes of this dialect: the upgrade creates exactly what
    the contract says, online and in ``--sql`` alike."""
    from alembic import op

    from karr_db.migrations.runner import create_tables

    create_tables(contract.table_objects())
    dialect = op.get_context().dialect.name
    for index in contract.indexes_on(dialect):
        op.create_index(index.name, index.table, list(index.columns))


def upgrade_declared(contract: RevisionContract) -> None:
    """The whole ``upgrade`` of a revision that only declares: :func:`create_declared`,
    then :func:`record_schema_version`."""
    create_declared(contract)
    record_schema_version(contract)


def record_schema_version(contract: RevisionContract) -> None:
    """Record the contract's reference schema version (nothing for ``None``)."""
    from karr_db.migrations.runner import record_schema_version as record

    record(contract.reference_schema_version)


def refuse_downgrade() -> None:
    """Every revision's ``downgrade``: migrations are forward-only."""
    from karr_db.migrations.runner import refuse_downgrade as refuse

    refuse()


def mark_derivation_pending() -> None:
    """Revision 0007's data step: queue every stored run for the derivation step
    ``upgrade`` runs after the revisions (:mod:`karr_db.migrations.pending`);
    rendered as SQL by ``--sql`` too."""
    from alembic import op

    from karr_db.migrations import pending

    for statement in pending.mark_statements():
        op.execute(statement)


def canonical_timestamp_triggers() -> tuple[Trigger, ...]:
    """The triggers revision 0006 installs (one per table with a timestamp)."""
    from karr_db.migrations import timestamp_triggers

    return timestamp_triggers.declared_triggers()


def canonical_events_no_update_sql() -> str:
    """Revision 0003's ``events_no_update`` as revision 0006 recreates it."""
    from karr_db.migrations import timestamp_triggers

    return timestamp_triggers.sqlite_events_no_update_sql().strip()


def time_range_triggers() -> tuple[Trigger, ...]:
    """The PostgreSQL triggers revision 0013 installs (one per table with a TIMESTAMPTZ)."""
    from karr_db.migrations import timestamp_triggers

    return timestamp_triggers.declared_range_triggers()


def install_time_range() -> None:
    """Revision 0013's steps: times outside years 1-9999 refused by the triggers."""
    from karr_db.migrations import timestamp_triggers

    timestamp_triggers.install_time_range()


def install_canonical_timestamps() -> None:
    """Revision 0006's steps: the zone table, the triggers and the rewrite."""
    from karr_db.migrations import timestamp_triggers

    timestamp_triggers.install_revision()


def lineage_timestamp_triggers() -> tuple[Trigger, ...]:
    """The triggers revision 0029 installs (KITT's later tables with a timestamp)."""
    from karr_db.migrations import timestamp_triggers

    return timestamp_triggers.declared_lineage_triggers()


def install_lineage_timestamps() -> None:
    """Revision 0029's steps: the triggers and the rewrite."""
    from karr_db.migrations import timestamp_triggers

    timestamp_triggers.install_lineage_revision()
