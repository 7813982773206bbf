"""${message}

Written by hand (autogenerate output is a draft). Describe the schema as it is
at this revision; import nothing of karr_db but karr_db.migrations.ops and
karr_db.migrations.frozen (the pieces revisions share: frozen.column, ...).
"""

import sqlalchemy as sa
${imports if imports else ""}
from karr_db.migrations import ops

revision: str = "${up_revision}"
down_revision: str | None = ${f'"{down_revision}"' if down_revision else None}


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision creates, as they are at this revision (adoption
    builds a version's reference schema from them); ``[]`` for none."""
    return []


#: Everything this revision adds, declared once: adoption removes it (then runs
#: the revision again), ``check`` verifies it, the schema reference lists it and
#: ``create_declared`` creates the tables and indexes. Every field is here on
#: purpose; a revision that adds something must say so. What is added beyond the
#: reference must be rebuildable from the reference tables.
contract = ops.RevisionContract(
    # The reference schema version this revision implements (recorded in
    # ``schema_version``); None for karr_db's own revisions beyond the reference.
    reference_schema_version=None,
    tables=tables,
    columns=(),  # ops.Column(table, name): columns added to existing tables
    indexes=(),  # ops.Index(name, table, (columns...), dialects=(...))
    triggers=(),  # ops.Trigger(name, table, dialect)
    functions=(),  # PostgreSQL function names
    other_tables=(),  # tables outside the models (karr_*)
    # What check verifies a trigger or function does:
    # ops.SqliteTrigger / ops.PostgresFunction / ops.PostgresTrigger.
    guards=(),
)


def upgrade() -> None:
    ops.create_declared(contract)
    # What the contract cannot create by itself (trigger and function SQL, data):
    # op.execute(...) from alembic, so that --sql renders it too.
% if upgrades:
    ${upgrades}
% endif
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
