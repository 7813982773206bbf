"""``engine_profiles``, ``agent_engines``, and the engine of a quick test.

By the reference's rules on PostgreSQL: ``created_at`` and
``updated_at`` are TIMESTAMPTZ, ``last_checked`` (not a ``*_at`` column) stays
TEXT, and the JSON configurations are JSONB. ``quick_tests.profile_id`` is
text, not a foreign key: KITT writes ``''`` for "no profile".
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from karr_db.migrations import ops

revision: str = "0028"
down_revision: str | None = "0027"

TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    profiles = sa.Table(
        "engine_profiles",
        metadata,
        sa.Column("id", sa.Text(), nullable=False, comment="Profile identifier"),
        sa.Column("name", sa.Text(), nullable=False, comment="Profile name, unique"),
        sa.Column("engine", sa.Text(), nullable=False, comment="Inference engine"),
        sa.Column(
            "mode",
            sa.Text(),
            server_default=sa.text("'docker'"),
            nullable=False,
            comment="How the engine runs: docker or native",
        ),
        sa.Column(
            "description",
            sa.Text(),
            server_default=sa.text("''"),
            nullable=True,
            comment="Human-readable description",
        ),
        sa.Column(
            "build_config",
            JSON,
            server_default=sa.text("'{}'"),
            nullable=True,
            comment="How to build the engine (JSON object)",
        ),
        sa.Column(
            "runtime_config",
            JSON,
            server_default=sa.text("'{}'"),
            nullable=True,
            comment="How to run the engine (JSON object)",
        ),
        sa.Column(
            "created_at",
            TIMESTAMP,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=True,
            comment="When the profile was created (UTC)",
        ),
        sa.Column(
            "updated_at",
            TIMESTAMP,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=True,
            comment="When the profile last changed (UTC)",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_engine_profiles"),
        sa.UniqueConstraint("name", name="uq_engine_profiles_name"),
    )
    sa.Index("idx_engine_profiles_engine", profiles.c.engine)

    engines = sa.Table(
        "agent_engines",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False, comment="Row identifier"),
        sa.Column("agent_id", sa.Text(), nullable=False, comment="The agent"),
        sa.Column("engine", sa.Text(), nullable=False, comment="Inference engine"),
        sa.Column(
            "mode", sa.Text(), nullable=False, comment="How the engine runs: docker or native"
        ),
        sa.Column(
            "version",
            sa.Text(),
            server_default=sa.text("''"),
            nullable=True,
            comment="Engine version found",
        ),
        sa.Column(
            "binary_path",
            sa.Text(),
            server_default=sa.text("''"),
            nullable=True,
            comment="Where the engine's binary is",
        ),
        sa.Column(
            "status",
            sa.Text(),
            server_default=sa.text("'unknown'"),
            nullable=True,
            comment="What the last check found",
        ),
        # Not a *_at column: TEXT on both dialects, as the reference's rule says.
        sa.Column(
            "last_checked",
            sa.Text(),
            nullable=True,
            comment="When the agent last checked (fixed-width UTC text)",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agent_engines"),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name="fk_agent_engines_agent_id_agents",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "agent_id", "engine", "mode", name="uq_agent_engines_agent_id_engine_mode"
        ),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_agent_engines_agent", engines.c.agent_id)
    return [profiles, engines]


contract = ops.RevisionContract(
    reference_schema_version=11,
    tables=tables,
    columns=(ops.Column("quick_tests", "engine_mode"), ops.Column("quick_tests", "profile_id")),
)


def upgrade() -> None:
    ops.create_declared(contract)
    op.add_column(
        "quick_tests",
        sa.Column(
            "engine_mode",
            sa.Text(),
            server_default=sa.text("'docker'"),
            nullable=True,
            comment="How the engine runs: docker or native",
        ),
    )
    op.add_column(
        "quick_tests",
        sa.Column(
            "profile_id",
            sa.Text(),
            server_default=sa.text("''"),
            nullable=True,
            comment="Engine profile used ('' for none)",
        ),
    )
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
