"""Revision 0005, beyond the reference: ``schema_version`` keeps the reference's numbers only.

Revisions 0003 and 0004 used to record schema versions 3 and
4, numbers the earlier system had already given to schemas of its own (3 added
``web_settings``, 4 moved agent tokens, ... up to 11). Its code reading a
karr_db database then saw 4, skipped its own migrations, and karr_db refused
what followed. ``schema_version`` now records the reference's versions alone
(1 and 2); this revision removes the rows 3 and 4 that karr_db wrote. It runs
only on databases with ``alembic_version`` (Alembic applies it), so only where
karr_db wrote them; an adopted legacy database never got them.
"""

import sqlalchemy as sa
from alembic import op

from karr_db.migrations import ops

revision: str = "0005"
down_revision: str | None = "0004"


#: The numbers revisions 0003 and 0004 wrote before this revision.
KARR_WRITTEN = (3, 4)


contract = ops.RevisionContract(reference_schema_version=None)


def upgrade() -> None:
    schema_version = sa.table("schema_version", sa.column("version", sa.Integer))
    op.execute(schema_version.delete().where(schema_version.c.version.in_(KARR_WRITTEN)))
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
