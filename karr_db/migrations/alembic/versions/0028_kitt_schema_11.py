"""``engine_profiles``, ``agent_engines``, and the engine of a quick test.

By the reference's rules on PostgreSQL: ``created_at`` and
``updated_at`` are TIMESTAMPTZ, ``last_checked`` (not a ``*_at`` column) stays
TEXT, and the JSON configurations are JSONB. ``quick_tests.profile_id`` is
text, not a foreign key: KITT writes ``''`` for "no profile".
"""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0028"
down_revision: str | None = "0027"


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    profiles = sa.Table(
        "engine_profiles",
        metadata,
        frozen.column("id", sa.Text(), "Profile identifier", nullable=False),
        frozen.column("name", sa.Text(), "Profile name, unique", nullable=False),
        frozen.column("engine", sa.Text(), "Inference engine", nullable=False),
        frozen.column(
            "mode",
            sa.Text(),
            "How the engine runs: docker or native",
            nullable=False,
            default="'docker'",
        ),
        frozen.column("description", sa.Text(), "Human-readable description", default="''"),
        frozen.column(
            "build_config",
            frozen.JSON,
            "How to build the engine (JSON object)",
            default="'{}'",
        ),
        frozen.column(
            "runtime_config",
            frozen.JSON,
            "How to run the engine (JSON object)",
            default="'{}'",
        ),
        frozen.column(
            "created_at",
            frozen.TIMESTAMP,
            "When the profile was created (UTC)",
            default="CURRENT_TIMESTAMP",
        ),
        frozen.column(
            "updated_at",
            frozen.TIMESTAMP,
            "When the profile last changed (UTC)",
            default="CURRENT_TIMESTAMP",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_engine_profiles"),
        sa.UniqueConstraint("name", name="uq_engine_profiles_name"),
    )
    sa.Index("idx_engine_profiles_engine", profiles.c.engine)

    engines = sa.Table(
        "agent_engines",
        metadata,
        frozen.column("id", sa.Integer(), "Row identifier", nullable=False),
        frozen.column("agent_id", sa.Text(), "The agent", nullable=False),
        frozen.column("engine", sa.Text(), "Inference engine", nullable=False),
        frozen.column("mode", sa.Text(), "How the engine runs: docker or native", nullable=False),
        frozen.column("version", sa.Text(), "Engine version found", default="''"),
        frozen.column("binary_path", sa.Text(), "Where the engine's binary is", default="''"),
        frozen.column("status", sa.Text(), "What the last check found", default="'unknown'"),
        # Not a *_at column: TEXT on both dialects, as the reference's rule says.
        frozen.column(
            "last_checked", sa.Text(), "When the agent last checked (fixed-width UTC text)"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agent_engines"),
        frozen.foreign_key("agent_engines", "agent_id", "agents", ondelete="CASCADE"),
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
    frozen.add_column(
        "quick_tests",
        "engine_mode",
        sa.Text(),
        "How the engine runs: docker or native",
        default="'docker'",
    )
    frozen.add_column(
        "quick_tests", "profile_id", sa.Text(), "Engine profile used ('' for none)", default="''"
    )
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
