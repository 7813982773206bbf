"""``python -m bench.adoption DIALECT RUNS ROUNDS``: adoption time without and with re-derivation.

Builds one schema-1 database of the earlier system (``build_legacy_v1``), then
adopts copies of it alternately as the release before re-derivation did
(derivation and the fingerprint fill switched off) and as this one does, so
both see the same machine load. Prints each time and the best-of ratio.
PostgreSQL comes from ``KARR_BENCH_POSTGRES_URL`` or ``KARR_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import karr_db.derive as derive
import karr_db.migrations.adopt as adopt
from bench.run import Databases, build_legacy_v1
from karr_db import migrations


def main(argv: list[str]) -> int:
    dialect, runs, rounds = argv[0], int(argv[1]), int(argv[2])
    server = os.environ.get("KARR_BENCH_POSTGRES_URL") or os.environ.get("KARR_TEST_POSTGRES_URL")
    databases = Databases(dialect, Path(tempfile.mkdtemp(prefix="karr-adopt-")), server)
    source = databases.empty()
    build_legacy_v1(databases, source, runs)
    real_derive, real_fill = adopt._derive, derive.fill_fingerprints

    def no_derive(connection: Any) -> None:
        return None

    def no_fill(connection: Any, **options: Any) -> int:
        return 0

    times: dict[str, list[float]] = {"before": [], "after": []}
    try:
        for _ in range(rounds):
            for mode in times:
                url = databases.copy(source)
                off = mode == "before"
                adopt._derive = no_derive if off else real_derive
                derive.fill_fingerprints = no_fill if off else real_fill
                started = time.perf_counter()
                migrations.upgrade(url)
                times[mode].append(time.perf_counter() - started)
                databases.drop(url)
                print(f"{dialect} {mode} {times[mode][-1]:.2f} s", flush=True)
    finally:
        adopt._derive, derive.fill_fingerprints = real_derive, real_fill
        databases.drop(source)
    before, after = min(times["before"]), min(times["after"])
    print(
        f"{dialect} {runs} runs: before {before:.2f} s, after {after:.2f} s, "
        f"ratio {after / before:.2f}x (best of {rounds})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
