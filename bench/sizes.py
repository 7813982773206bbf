"""How much work each workload does: full (``make bench``), quick and tiny (the smoke test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does."""

    saves: int
    imports: int
    query_runs: int
    query_reps: int
    events_single: int
    events_batches: int
    events_batch_size: int
    tail_events: int
    export_runs: int
    adopt_runs: int
    #: save_many: documents per call, and calls per side.
    bulk_docs: int
    bulk_calls: int
    #: runs each side deletes (one per transaction) from the query database.
    deletes: int
    import_batch: int = 500

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            saves=300,
            imports=5000,
            query_runs=10_000,
            query_reps=30,
            events_single=1000,
            events_batches=20,
            events_batch_size=1000,
            tail_events=100_000,
            export_runs=20_000,
            adopt_runs=20_000,
            bulk_docs=2000,
            bulk_calls=2,
            deletes=30,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            saves=60,
            imports=400,
            query_runs=1500,
            query_reps=7,
            events_single=150,
            events_batches=4,
            events_batch_size=500,
            tail_events=10_000,
            export_runs=800,
            adopt_runs=1000,
            bulk_docs=500,
            bulk_calls=2,
            deletes=7,
        )

    @classmethod
    def tiny(cls) -> Sizes:
        """For the smoke test: every code path, a few seconds."""
        return cls(
            saves=3,
            imports=6,
            query_runs=20,
            query_reps=2,
            events_single=3,
            events_batches=2,
            events_batch_size=5,
            tail_events=30,
            export_runs=10,
            adopt_runs=10,
            bulk_docs=4,
            bulk_calls=2,
            deletes=2,
            import_batch=4,
        )
