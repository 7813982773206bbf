"""Schema version 2: agents, web_campaigns, quick_tests and events.

Describes the schema as it is at this revision; it does not
import the models.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from karr_db.migrations import ops

revision: str = "0002"
down_revision: str | None = "0001"


TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    agents = sa.Table(
        "agents",
        metadata,
        sa.Column("id", sa.Text(), nullable=False, comment="Agent identifier (UUID)"),
        sa.Column("name", sa.Text(), nullable=True, comment="Human-readable agent name, unique"),
        sa.Column("hostname", sa.Text(), nullable=True, comment="Agent hostname or IP address"),
        sa.Column("port", sa.Integer(), nullable=True, comment="Port the agent listens on"),
        sa.Column(
            "token",
            sa.Text(),
            nullable=True,
            comment="One-way hash of the agent's authentication token, never the token",
        ),
        sa.Column(
            "status", sa.Text(), nullable=True, comment="Current status: online, offline or busy"
        ),
        sa.Column("gpu_info", sa.Text(), nullable=True, comment="GPU description"),
        sa.Column("gpu_count", sa.Integer(), nullable=True, comment="Number of GPUs on the agent"),
        sa.Column("cpu_info", sa.Text(), nullable=True, comment="CPU description"),
        sa.Column("ram_gb", sa.Integer(), nullable=True, comment="System memory in gigabytes"),
        sa.Column("environment_type", sa.Text(), nullable=True, comment="Environment type"),
        sa.Column("fingerprint", sa.Text(), nullable=True, comment="Hardware fingerprint"),
        sa.Column(
            "kitt_version", sa.Text(), nullable=True, comment="KITT version running on the agent"
        ),
        # Not a *_at column: TEXT on both dialects, as the reference says.
        sa.Column(
            "last_heartbeat",
            sa.Text(),
            nullable=True,
            comment="When the agent last reported in (fixed-width UTC text)",
        ),
        sa.Column(
            "registered_at", TIMESTAMP, nullable=True, comment="When the agent registered (UTC)"
        ),
        sa.Column("notes", sa.Text(), nullable=True, comment="Free-form notes"),
        sa.Column("tags", sa.Text(), nullable=True, comment="Comma-separated tags for filtering"),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("name", name="uq_agents_name"),
    )

    web_campaigns = sa.Table(
        "web_campaigns",
        metadata,
        sa.Column("id", sa.Text(), nullable=False, comment="Campaign identifier (UUID)"),
        sa.Column("name", sa.Text(), nullable=True, comment="Campaign display name"),
        sa.Column("description", sa.Text(), nullable=True, comment="Human-readable description"),
        sa.Column("config_json", JSON, nullable=True, comment="The full campaign configuration"),
        sa.Column(
            "status",
            sa.Text(),
            nullable=True,
            comment="Current status: pending, running, completed, failed or cancelled",
        ),
        sa.Column(
            "agent_id", sa.Text(), nullable=True, comment="Agent the campaign is assigned to"
        ),
        sa.Column(
            "created_at", TIMESTAMP, nullable=True, comment="When the campaign was created (UTC)"
        ),
        sa.Column("started_at", TIMESTAMP, nullable=True, comment="When execution started (UTC)"),
        sa.Column("completed_at", TIMESTAMP, nullable=True, comment="When execution ended (UTC)"),
        sa.Column("total_runs", sa.Integer(), nullable=True, comment="Number of runs planned"),
        sa.Column("succeeded", sa.Integer(), nullable=True, comment="Runs that succeeded"),
        sa.Column("failed", sa.Integer(), nullable=True, comment="Runs that failed"),
        sa.Column("skipped", sa.Integer(), nullable=True, comment="Runs that were skipped"),
        sa.Column(
            "error", sa.Text(), nullable=True, comment="Error message when the campaign failed"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_web_campaigns"),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_web_campaigns_agent_id_agents"
        ),
    )

    quick_tests = sa.Table(
        "quick_tests",
        metadata,
        sa.Column("id", sa.Text(), nullable=False, comment="Quick test identifier (UUID)"),
        sa.Column("agent_id", sa.Text(), nullable=True, comment="Agent the test is dispatched to"),
        sa.Column("model_path", sa.Text(), nullable=True, comment="Model path or name"),
        sa.Column("engine_name", sa.Text(), nullable=True, comment="Inference engine"),
        sa.Column("benchmark_name", sa.Text(), nullable=True, comment="Benchmark to run"),
        sa.Column("suite_name", sa.Text(), nullable=True, comment="Suite name, if any"),
        sa.Column(
            "status",
            sa.Text(),
            nullable=True,
            comment="Current status: queued, running, completed, failed or cancelled",
        ),
        sa.Column(
            "created_at", TIMESTAMP, nullable=True, comment="When the test was dispatched (UTC)"
        ),
        sa.Column("started_at", TIMESTAMP, nullable=True, comment="When an agent claimed it (UTC)"),
        sa.Column("completed_at", TIMESTAMP, nullable=True, comment="When it ended (UTC)"),
        sa.Column(
            "result_id", sa.Text(), nullable=True, comment="The stored run this test produced"
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="Error message when the test failed"),
        sa.PrimaryKeyConstraint("id", name="pk_quick_tests"),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_quick_tests_agent_id_agents"),
        sa.ForeignKeyConstraint(["result_id"], ["runs.id"], name="fk_quick_tests_result_id_runs"),
    )

    events = sa.Table(
        "events",
        metadata,
        sa.Column(
            "id",
            sa.Integer(),
            nullable=False,
            comment="Event sequence number; readers resume after the last one they saw",
        ),
        sa.Column(
            "event_type",
            sa.Text(),
            nullable=True,
            comment="Event category, such as run.saved or agent.registered",
        ),
        sa.Column(
            "source_id",
            sa.Text(),
            nullable=True,
            comment="Identifier of the entity the event is about",
        ),
        sa.Column("data", JSON, nullable=True, comment="Event details as a JSON object"),
        sa.Column(
            "created_at", TIMESTAMP, nullable=True, comment="When the event was appended (UTC)"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_events_event_type", events.c.event_type)
    sa.Index("idx_events_source_id", events.c.source_id)
    sa.Index("idx_events_created_at", events.c.created_at)

    return [agents, web_campaigns, quick_tests, events]


contract = ops.RevisionContract(reference_schema_version=2, tables=tables)


def upgrade() -> None:
    ops.create_declared(contract)
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
