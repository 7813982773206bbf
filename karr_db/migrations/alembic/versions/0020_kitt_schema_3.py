"""The dashboard's ``web_settings``.

Revisions 0020..0028 are KITT's schemas 3..11, one each, and
record KITT's number in ``schema_version`` in the same transaction as their
DDL, as revisions 0001 and 0002 do for schemas 1 and 2 (ARCHITECTURE.md,
"KITT's lineage"). They describe the schema as it is at their revision; they do
not import the models.
"""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0020"
down_revision: str | None = "0013"


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    web_settings = sa.Table(
        "web_settings",
        metadata,
        frozen.column("key", sa.Text(), "Setting name", nullable=False),
        frozen.column("value", sa.Text(), "Setting value (text)", nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_web_settings"),
    )
    return [web_settings]


contract = ops.RevisionContract(reference_schema_version=3, tables=tables)


def upgrade() -> None:
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
