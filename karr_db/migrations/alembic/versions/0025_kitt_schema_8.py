"""``agent_settings``, and six default settings for every agent.

As KITT's migration does, every agent gets the six default
settings it does not have yet (karr_db's registration adds them to every agent
it registers later, as KITT's does). The settings belong to their agent:
ON DELETE CASCADE.
"""

import sqlalchemy as sa
from alembic import op

from karr_db.migrations import frozen, ops

revision: str = "0025"
down_revision: str | None = "0024"

#: KITT's defaults as of this schema (the models keep the same ones).
DEFAULTS = {
    "model_storage_dir": "~/.kitt/models",
    "model_share_source": "",
    "model_share_mount": "",
    "auto_cleanup": "true",
    "heartbeat_interval_s": "30",
    "kitt_image": "",
}


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    settings = sa.Table(
        "agent_settings",
        metadata,
        frozen.column("id", sa.Integer(), "Row identifier", nullable=False),
        frozen.column("agent_id", sa.Text(), "The agent the setting belongs to", nullable=False),
        frozen.column("key", sa.Text(), "Setting name", nullable=False),
        frozen.column("value", sa.Text(), "Setting value (text)", nullable=False, default="''"),
        sa.PrimaryKeyConstraint("id", name="pk_agent_settings"),
        frozen.foreign_key("agent_settings", "agent_id", "agents", ondelete="CASCADE"),
        sa.UniqueConstraint("agent_id", "key", name="uq_agent_settings_agent_id_key"),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_agent_settings_agent", settings.c.agent_id)
    return [settings]


contract = ops.RevisionContract(reference_schema_version=8, tables=tables)


def upgrade() -> None:
    ops.create_declared(contract)
    add_defaults()
    ops.record_schema_version(contract)


def add_defaults() -> None:
    """The default settings each agent lacks (one INSERT .. SELECT per key; plain SQL,
    so ``--sql`` renders it too)."""
    agents = sa.table("agents", sa.column("id", sa.Text))
    settings = sa.table(
        "agent_settings",
        sa.column("agent_id", sa.Text),
        sa.column("key", sa.Text),
        sa.column("value", sa.Text),
    )
    for key, value in DEFAULTS.items():
        present = sa.select(settings.c.agent_id).where(
            settings.c.agent_id == agents.c.id, settings.c.key == key
        )
        op.execute(
            settings.insert().from_select(
                ["agent_id", "key", "value"],
                sa.select(agents.c.id, sa.literal(key), sa.literal(value))
                .where(~sa.exists(present))
                .order_by(agents.c.id),
            )
        )


def downgrade() -> None:
    ops.refuse_downgrade()
