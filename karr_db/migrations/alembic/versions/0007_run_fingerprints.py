"""Revision 0007, beyond the reference: a content lookup so that deduplication sees adopted runs.

Karr_db derives a run's id from its document's content, so
saving a document twice finds the first run by id. The earlier system gave
runs random 16-hex ids, which adoption keeps (quick tests and people refer to
them); such runs were invisible to that check, and re-saving one of their
documents created a second run. ``run_fingerprints`` maps each content's
fingerprint (the id karr_db would have given it) to the run that owns it; its
primary key makes two concurrent saves of one content agree on one run.

The table holds nothing that ``runs.raw_json`` does not. This revision only
creates it and queues every stored run for derivation in a second table,
``karr_pending_derivation`` (:mod:`karr_db.migrations.pending`, plain SQL);
``upgrade`` fills it afterwards, in its own transactions, with the step that
derives each run's rows. The revision imports no code that derives or saves:
what it does stays what it was when it was written. Offline (``--sql``) the
queue is part of the script: run ``karr-db upgrade`` after applying it.
"""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0007"
down_revision: str | None = "0006"


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The table this revision adds, as it is at this revision."""
    if "runs" not in metadata.tables:  # the foreign key's target, as a stub
        sa.Table("runs", metadata, sa.Column("id", sa.Text(), primary_key=True))
    fingerprints = sa.Table(
        "run_fingerprints",
        metadata,
        frozen.column(
            "fingerprint",
            sa.Text(),
            "Content fingerprint of a result document: the UUID karr_db derives its "
            "run ids from (documents.run_id_for)",
            nullable=False,
        ),
        frozen.column(
            "run_id",
            sa.Text(),
            "The run that saving this content returns: the oldest run holding it",
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_run_fingerprints"),
        sa.UniqueConstraint("run_id", name="uq_run_fingerprints_run_id"),
        frozen.foreign_key("run_fingerprints", "run_id", "runs", ondelete="CASCADE"),
    )
    return [fingerprints]


contract = ops.RevisionContract(
    reference_schema_version=None,
    tables=tables,
    # The derivation queue (karr_db.migrations.pending): empty at rest.
    other_tables=("karr_pending_derivation",),
)


def upgrade() -> None:
    ops.create_declared(contract)
    ops.mark_derivation_pending()
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
