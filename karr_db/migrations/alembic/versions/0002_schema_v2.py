"""Schema version 2: agents, web_campaigns, quick_tests and events.

Describes the schema as it is at this revision; it does not
import the models.
"""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0002"
down_revision: str | None = "0001"


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    agents = sa.Table(
        "agents",
        metadata,
        frozen.column("id", sa.Text(), "Agent identifier (UUID)", nullable=False),
        frozen.column("name", sa.Text(), "Human-readable agent name, unique"),
        frozen.column("hostname", sa.Text(), "Agent hostname or IP address"),
        frozen.column("port", sa.Integer(), "Port the agent listens on"),
        frozen.column(
            "token", sa.Text(), "One-way hash of the agent's authentication token, never the token"
        ),
        frozen.column("status", sa.Text(), "Current status: online, offline or busy"),
        frozen.column("gpu_info", sa.Text(), "GPU description"),
        frozen.column("gpu_count", sa.Integer(), "Number of GPUs on the agent"),
        frozen.column("cpu_info", sa.Text(), "CPU description"),
        frozen.column("ram_gb", sa.Integer(), "System memory in gigabytes"),
        frozen.column("environment_type", sa.Text(), "Environment type"),
        frozen.column("fingerprint", sa.Text(), "Hardware fingerprint"),
        frozen.column("kitt_version", sa.Text(), "KITT version running on the agent"),
        # Not a *_at column: TEXT on both dialects, as the reference says.
        frozen.column(
            "last_heartbeat", sa.Text(), "When the agent last reported in (fixed-width UTC text)"
        ),
        frozen.column("registered_at", frozen.TIMESTAMP, "When the agent registered (UTC)"),
        frozen.column("notes", sa.Text(), "Free-form notes"),
        frozen.column("tags", sa.Text(), "Comma-separated tags for filtering"),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("name", name="uq_agents_name"),
    )

    web_campaigns = sa.Table(
        "web_campaigns",
        metadata,
        frozen.column("id", sa.Text(), "Campaign identifier (UUID)", nullable=False),
        frozen.column("name", sa.Text(), "Campaign display name"),
        frozen.column("description", sa.Text(), "Human-readable description"),
        frozen.column("config_json", frozen.JSON, "The full campaign configuration"),
        frozen.column(
            "status", sa.Text(), "Current status: pending, running, completed, failed or cancelled"
        ),
        frozen.column("agent_id", sa.Text(), "Agent the campaign is assigned to"),
        frozen.column("created_at", frozen.TIMESTAMP, "When the campaign was created (UTC)"),
        frozen.column("started_at", frozen.TIMESTAMP, "When execution started (UTC)"),
        frozen.column("completed_at", frozen.TIMESTAMP, "When execution ended (UTC)"),
        frozen.column("total_runs", sa.Integer(), "Number of runs planned"),
        frozen.column("succeeded", sa.Integer(), "Runs that succeeded"),
        frozen.column("failed", sa.Integer(), "Runs that failed"),
        frozen.column("skipped", sa.Integer(), "Runs that were skipped"),
        frozen.column("error", sa.Text(), "Error message when the campaign failed"),
        sa.PrimaryKeyConstraint("id", name="pk_web_campaigns"),
        frozen.foreign_key("web_campaigns", "agent_id", "agents"),
    )

    quick_tests = sa.Table(
        "quick_tests",
        metadata,
        frozen.column("id", sa.Text(), "Quick test identifier (UUID)", nullable=False),
        frozen.column("agent_id", sa.Text(), "Agent the test is dispatched to"),
        frozen.column("model_path", sa.Text(), "Model path or name"),
        frozen.column("engine_name", sa.Text(), "Inference engine"),
        frozen.column("benchmark_name", sa.Text(), "Benchmark to run"),
        frozen.column("suite_name", sa.Text(), "Suite name, if any"),
        frozen.column(
            "status", sa.Text(), "Current status: queued, running, completed, failed or cancelled"
        ),
        frozen.column("created_at", frozen.TIMESTAMP, "When the test was dispatched (UTC)"),
        frozen.column("started_at", frozen.TIMESTAMP, "When an agent claimed it (UTC)"),
        frozen.column("completed_at", frozen.TIMESTAMP, "When it ended (UTC)"),
        frozen.column("result_id", sa.Text(), "The stored run this test produced"),
        frozen.column("error", sa.Text(), "Error message when the test failed"),
        sa.PrimaryKeyConstraint("id", name="pk_quick_tests"),
        frozen.foreign_key("quick_tests", "agent_id", "agents"),
        frozen.foreign_key("quick_tests", "result_id", "runs"),
    )

    events = sa.Table(
        "events",
        metadata,
        frozen.column(
            "id",
            sa.Integer(),
            "Event sequence number; readers resume after the last one they saw",
            nullable=False,
        ),
        frozen.column(
            "event_type", sa.Text(), "Event category, such as run.saved or agent.registered"
        ),
        frozen.column("source_id", sa.Text(), "Identifier of the entity the event is about"),
        frozen.column("data", frozen.JSON, "Event details as a JSON object"),
        frozen.column("created_at", frozen.TIMESTAMP, "When the event was appended (UTC)"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_events_event_type", events.c.event_type)
    sa.Index("idx_events_source_id", events.c.source_id)
    sa.Index("idx_events_created_at", events.c.created_at)

    return [agents, web_campaigns, quick_tests, events]


contract = ops.RevisionContract(reference_schema_version=2, tables=tables)


def upgrade() -> None:
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
