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

#: Recorded in the legacy ``schema_version`` table, in this revision's transaction.
karr_schema_version = FILL_IN


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
    record_schema_version(karr_schema_version)


def downgrade() -> None:
    refuse_downgrade()
