"""``python -m bench.adoption DIALECT RUNS ROUNDS``: adoption, then ``upgrade``'s derivation step.

Builds one schema-1 database of the earlier system (``build_legacy_v1``), then,
on a fresh copy each round, times the two parts of ``migrations.upgrade`` one
after the other: adoption with the revisions (Alembic's upgrade, which leaves
every run queued) and the derivation step that derives the queued runs'
rows. Both see the same machine load within a round. Prints each time and the
best-of ratio of derivation to adoption. PostgreSQL comes from
``KARR_BENCH_POSTGRES_URL`` or ``KARR_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from bench.run import Databases, build_legacy_v1
from karr_db.engine import make_engine
from karr_db.migrations import timestamps
from karr_db.migrations.derivation import derive_pending
from karr_db.migrations.scripts import alembic_config


def adopt_and_derive(url: str) -> tuple[float, float]:
    """Seconds of adoption with the revisions, and of the derivation step after it."""
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        config = alembic_config()
        config.attributes["engine"] = engine
        config.attributes[timestamps.ATTR_OPTION] = None
        started = time.perf_counter()
        command.upgrade(config, "head")
        adopted = time.perf_counter()
        report = derive_pending(engine)
        derived = time.perf_counter()
        assert report is not None, "nothing was queued"
    finally:
        engine.dispose()
    return adopted - started, derived - adopted


def main(argv: list[str]) -> int:
    dialect, runs, rounds = argv[0], int(argv[1]), int(argv[2])
    server = os.environ.get("KARR_BENCH_POSTGRES_URL") or os.environ.get("KARR_TEST_POSTGRES_URL")
    databases = Databases(dialect, Path(tempfile.mkdtemp(prefix="karr-adopt-")), server)
    source = databases.empty()
    build_legacy_v1(databases, source, runs)
    times: dict[str, list[float]] = {"adoption": [], "derivation": []}
    try:
        for _ in range(rounds):
            url = databases.copy(source)
            adoption, derivation = adopt_and_derive(url)
            databases.drop(url)
            times["adoption"].append(adoption)
            times["derivation"].append(derivation)
            print(f"{dialect} adoption {adoption:.2f} s, derivation {derivation:.2f} s", flush=True)
    finally:
        databases.drop(source)
    adoption, derivation = min(times["adoption"]), min(times["derivation"])
    print(
        f"{dialect} {runs} runs: adoption {adoption:.2f} s, derivation {derivation:.2f} s, "
        f"ratio {derivation / adoption:.2f}x (best of {rounds})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
