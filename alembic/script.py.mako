"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Written by hand (autogenerate output is a draft). Describe the schema as it is
at this revision; do not import the models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
from karr_db.migrations.runner import record_schema_version, refuse_downgrade

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

#: The reference schema version this revision implements, recorded in
#: ``schema_version``; ``None`` for karr_db's own revisions beyond the reference.
#: What such a revision adds (tables, columns, indexes, triggers, ``karr_*``
#: functions) must be rebuildable from the reference tables: adoption of a
#: database that lost ``alembic_version`` drops it and the revision runs again.
karr_schema_version: int | None = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
    record_schema_version(karr_schema_version)


def downgrade() -> None:
    refuse_downgrade()
