"""A revision's CREATE TABLE lists its constraints in the order the revision declares
them, so one revision renders the same DDL in every process (and SQLite keeps the
same schema text in every database it creates)."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from karr_db.migrations.runner import create_tables

TABLES = 40


def _tables() -> list[sa.Table]:
    metadata = sa.MetaData()
    sa.Table("parent", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return [
        sa.Table(
            f"t{n}",
            metadata,
            sa.Column("id", sa.Integer),
            sa.Column("a", sa.Integer),
            sa.Column("b", sa.Integer),
            sa.Column("c", sa.Integer),
            sa.PrimaryKeyConstraint("id", name=f"pk_t{n}"),
            sa.ForeignKeyConstraint(["a"], ["parent.id"], name=f"fk_t{n}_a"),
            sa.UniqueConstraint("a", "b", name=f"uq_t{n}_ab"),
            sa.CheckConstraint("c > 0", name=f"ck_t{n}_c"),
            sa.UniqueConstraint("c", name=f"uq_t{n}_c"),
        )
        for n in range(TABLES)
    ]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_constraints_are_created_in_the_order_declared(dialect: str) -> None:
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": buffer}
    )
    with Operations.context(context):
        create_tables(_tables())
    sql = buffer.getvalue()
    for n in range(TABLES):
        declared = [f"pk_t{n}", f"fk_t{n}_a", f"uq_t{n}_ab", f"ck_t{n}_c", f"uq_t{n}_c"]
        positions = [sql.index(f"CONSTRAINT {name} ") for name in declared]
        assert positions == sorted(positions), sql[positions[0] - 200 : positions[-1] + 80]
