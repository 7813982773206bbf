"""The scaling table: save and the dashboard reads with N runs already stored.

At each point the database is filled through the raw bulk path, sized (bytes
per table, for the capacity section of docs/performance.md) and copied: each
side reads and saves on its own identical copy, interleaved call by call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.databases import populate, storage
from bench.generator import LEADERBOARD_METRIC, documents
from bench.harness import (
    Check,
    interleaved,
    p50_p95,
    same_aggregate,
    same_history,
    same_latest,
    same_leaderboard,
    same_value,
)
from bench.workloads import Context
from bench.workloads.queries import METRICS, PAIRS


def scaling(ctx: Context, points: Sequence[int]) -> None:
    saves = max(20, ctx.sizes.saves // 2)
    docs = list(documents(saves + 1, seed=9))
    for n in points:
        print(f"[{ctx.dialect}] scaling at {n:,} runs", flush=True)
        entry = scale_point(ctx, n, docs)
        ctx.report.scaling.append(entry)
        print(f"  {entry}", flush=True)


def scale_point(ctx: Context, n: int, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Save throughput and p50 read latencies with ``n`` runs already stored."""
    started = time.perf_counter()
    base = ctx.db.migrated()
    populate(ctx.db, base, n, seed=5, batch=2000)
    print(f"  (populated in {time.perf_counter() - started:.1f} s)", flush=True)
    sizes = storage(ctx.db, base)
    print(f"  storage bytes at {n:,} runs: {json.dumps(sizes)}", flush=True)
    other = ctx.db.copy(base)
    project, raw = ctx.project(base), ctx.raw(other)
    metrics = METRICS[:3]
    reads: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], list[Any], Check]] = {
        "latest": (lambda pe: project.latest(*pe), lambda pe: raw.latest(*pe), PAIRS, same_latest),
        "lb": (project.leaderboard, raw.leaderboard, metrics, same_leaderboard),
        "agg": (project.leaderboard_fast, raw.leaderboard_fast, metrics, same_aggregate),
        "history": (
            lambda pe: project.history(LEADERBOARD_METRIC, *pe),
            lambda pe: raw.history(LEADERBOARD_METRIC, *pe),
            PAIRS,
            same_history,
        ),
    }
    entry: dict[str, Any] = {"dialect": ctx.dialect, "runs": n, "storage": sizes}
    for key, (p_fn, r_fn, params, check) in reads.items():
        reps = 7 if key == "lb" and n >= 100_000 else 15
        ps, rs = interleaved(p_fn, r_fn, params, reps, check)
        entry[key], entry[f"{key}_raw"] = p50_p95(ps)[0], p50_p95(rs)[0]
    project.save(docs[0])
    raw.save(docs[0])
    ps, rs = interleaved(project.save, raw.save, docs[1:], len(docs) - 1, same_value, warm=False)
    entry["save"], entry["save_raw"] = (
        (len(docs) - 1) / (sum(ps) / 1000),
        (len(docs) - 1) / (sum(rs) / 1000),
    )
    project.close()
    raw.close()
    ctx.db.drop(base)
    ctx.db.drop(other)
    return entry
