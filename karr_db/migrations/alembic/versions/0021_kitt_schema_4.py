"""Agent tokens kept as SHA-256 digests in ``token_hash``.

Adds ``agents.token_hash`` and ``agents.token_prefix`` and,
as KITT's migration does, moves every token into them: ``token_hash`` becomes
the SHA-256 hex digest of the token text, ``token_prefix`` its first eight
characters, and ``token`` is emptied. A value karr_db itself stored before
this revision is already a digest (``sha256$<hex>``): its hex digits move to
``token_hash`` as they are (hashing them again would lock the agent out) and
its prefix stays empty, since the token itself was never stored. From here on
KITT and karr_db verify a token the same way, by its digest in ``token_hash``.
The move reads the rows, so ``--sql`` leaves it out: karr_db still verifies the
older forms and moves each on first use.
"""

import hashlib

import sqlalchemy as sa
from alembic import context, op

from karr_db.migrations import frozen, ops

revision: str = "0021"
down_revision: str | None = "0020"

#: The prefix of the digests karr_db wrote into ``token`` before this revision.
KARR_DIGEST = "sha256$"

contract = ops.RevisionContract(
    reference_schema_version=4,
    columns=(ops.Column("agents", "token_hash"), ops.Column("agents", "token_prefix")),
)


def upgrade() -> None:
    frozen.add_column(
        "agents",
        "token_hash",
        sa.Text(),
        "SHA-256 hex digest of the agent's token ('' when it has none)",
        default="''",
    )
    frozen.add_column(
        "agents",
        "token_prefix",
        sa.Text(),
        "First 8 characters of the token, for display",
        default="''",
    )
    if not context.is_offline_mode():
        move_tokens(op.get_bind())
    ops.record_schema_version(contract)


def move_tokens(connection: sa.Connection) -> None:
    """KITT's side effect of schema 4, for every agent with a token and no digest."""
    agents = sa.table(
        "agents",
        sa.column("id", sa.Text),
        sa.column("token", sa.Text),
        sa.column("token_hash", sa.Text),
        sa.column("token_prefix", sa.Text),
    )
    rows = connection.execute(
        sa.select(agents.c.id, agents.c.token).where(
            agents.c.token.is_not(None),
            agents.c.token != "",
            sa.func.coalesce(agents.c.token_hash, "") == "",
        )
    ).all()
    for agent_id, token in rows:
        if token.startswith(KARR_DIGEST):
            digest, prefix = token[len(KARR_DIGEST) :], ""
        else:
            digest, prefix = hashlib.sha256(token.encode("utf-8")).hexdigest(), token[:8]
        connection.execute(
            agents.update()
            .where(agents.c.id == agent_id)
            .values(token_hash=digest, token_prefix=prefix, token="")
        )


def downgrade() -> None:
    ops.refuse_downgrade()
