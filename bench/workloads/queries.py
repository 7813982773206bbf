"""Reads on one populated database, then deletes on it: both sides on the same rows.

Every read is one user action (a unit of work on the project's side, one
autocommit statement or three on the baseline's), parameters rotating over
every model/engine pair, four metrics, 30 runs and both outcomes, answers
compared call by call. Then, once, the same hand-written SQL on the reference
schema (the indexes of 0004 and 0009 dropped) against the full schema; then
the export; then deletes with cascade, the two sides deleting different runs
of the same database in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.databases import populate
from bench.generator import ENGINES, LEADERBOARD_METRIC, MODELS
from bench.harness import (
    Check,
    aggregate_matches_rows,
    interleaved,
    p50_p95,
    profiled,
    same_aggregate,
    same_detail,
    same_history,
    same_latest,
    same_leaderboard,
    same_value,
)
from bench.workloads import Context
from bench.workloads.export import export

#: Indexes beyond the reference (0004's three, 0009's and 0030's two), dropped for the
#: one comparison.
BEYOND_REFERENCE_INDEXES = (
    "idx_metrics_name_benchmark",
    "idx_runs_model_engine_timestamp",
    "idx_runs_passed",
    "idx_runs_model_engine_latest",
    "idx_runs_model_engine_history",
    "idx_benchmarks_run_history",
)
PAIRS = [(m, e) for m in MODELS for e in ENGINES]
METRICS = [LEADERBOARD_METRIC, "ttft_ms.p50", "tpot_ms.p95", "itl_ms.avg"]


def read_cases(
    project: Any, raw: Any, run_ids: list[str]
) -> list[tuple[str, str, Callable[[Any], Any], Callable[[Any], Any], list[Any], Check]]:
    """(key, name, project call, baseline call, rotated parameters, answer check)."""
    return [
        (
            "latest",
            "latest 50 runs of a model+engine",
            lambda pe: project.latest(*pe),
            lambda pe: raw.latest(*pe),
            PAIRS,
            same_latest,
        ),
        (
            "leaderboard",
            "leaderboard with median, from rows",
            project.leaderboard,
            raw.leaderboard,
            METRICS,
            same_leaderboard,
        ),
        (
            "aggregate",
            "leaderboard count/avg/min/max (aggregate)",
            project.leaderboard_fast,
            raw.leaderboard_fast,
            METRICS,
            same_aggregate,
        ),
        (
            "metric",
            "metric history of a model/engine",
            lambda pe: project.history(LEADERBOARD_METRIC, *pe),
            lambda pe: raw.history(LEADERBOARD_METRIC, *pe),
            PAIRS,
            same_history,
        ),
        ("full", "full detail of one run", project.detail, raw.detail, run_ids, same_detail),
        (
            "count",
            "count by passed",
            project.count_passed,
            raw.count_passed,
            [True, False],
            same_value,
        ),
    ]


def queries(ctx: Context) -> None:
    n, reps = ctx.sizes.query_runs, ctx.sizes.query_reps
    url = ctx.db.migrated()
    started = time.perf_counter()
    populate(ctx.db, url, n, seed=3)
    print(f"  (populated {n:,} runs in {time.perf_counter() - started:.1f} s)", flush=True)
    project, raw = ctx.project(url), ctx.raw(url)
    run_ids = [row[0] for m, e in PAIRS[:10] for row in raw.latest(m, e, 3)]
    for metric in METRICS:
        aggregate_matches_rows(project.leaderboard_fast(metric), raw.leaderboard(metric))
    cases: dict[str, tuple[float, float, int]] = {}
    for key, name, p_fn, r_fn, params, check in read_cases(project, raw, run_ids):
        with profiled(key, ctx.profile):
            ps, rs = interleaved(p_fn, r_fn, params, reps, check)
        (p50, p95), (r50, r95) = p50_p95(ps), p50_p95(rs)
        cases[name] = (p50, r50, project.statements(p_fn, params[0]))
        ctx.row(f"{name} (p50)", "ms", p50, r50, "latency", 1.5, f"@{n:,} runs")
        ctx.row(f"{name} (p95)", "ms", p95, r95, "latency", None)
    floor(ctx, project, raw, cases, reps)
    project.close()
    raw.close()
    reference_schema(ctx, url, run_ids, n)
    export(ctx, url, n)
    delete(ctx, url, n)
    ctx.db.drop(url)


def floor(
    ctx: Context,
    project: Any,
    raw: Any,
    cases: dict[str, tuple[float, float, int]],
    reps: int,
) -> None:
    """An accounting of each read's median: the empty read-only unit of work, the
    execution of its statements through SQLAlchemy (one trivial statement's cost
    beyond the empty unit, times the statements the call sent), and the rest
    (building rows and DTOs, and the SQL itself), against the raw answer. A read
    whose raw answer takes less than the first two cannot be within 1.5x while
    every call is its own unit of work; these rows show how much of each ratio is
    that floor. The unit-of-work and statement figures are interleaved with a raw
    ``SELECT 1`` (one statement: what a raw client sends per user action)."""
    params = [None]
    units, selects = interleaved(project.empty_unit, raw.empty_unit, params, max(reps, 200))
    ones, _ = interleaved(project.one_statement, raw.empty_unit, params, max(reps, 200))
    unit, select = p50_p95(units)[0], p50_p95(selects)[0]
    statement = max(p50_p95(ones)[0] - unit, 0.0)
    ctx.row("empty unit of work / one raw statement (p50)", "ms", unit, select, "latency")
    ctx.row(
        "one statement's execution through SQLAlchemy (p50)", "ms", statement, select, "latency"
    )
    for name, (p50, r50, sent) in cases.items():
        rest = max(p50 - unit - sent * statement, 0.0)
        ctx.row(
            f"  {name}: rest beyond unit + {sent} statement(s)",
            "ms",
            rest,
            r50,
            "latency",
            note=f"unit + statements = {(unit + sent * statement) / r50:.2f}x of the raw call",
        )


def reference_schema(ctx: Context, url: str, run_ids: list[str], n: int) -> None:
    """The same hand-written SQL without and with the indexes beyond the reference,
    interleaved on two copies of one database; the aggregate leaderboard against
    the same answer from the rows (the reference has no aggregate)."""
    bare = ctx.db.copy(url)
    ours, ref = ctx.raw(url), ctx.raw(bare)
    for name in BEYOND_REFERENCE_INDEXES:
        ref.conn.execute(f"DROP INDEX IF EXISTS {name}")
    ref.conn.execute("ANALYZE")
    calls: dict[str, Callable[[Any], Callable[[Any], Any]]] = {
        "latest": lambda b: lambda pe: b.latest(*pe),
        "leaderboard": lambda b: b.leaderboard,
        "metric": lambda b: lambda pe: b.history(LEADERBOARD_METRIC, *pe),
        "full": lambda b: b.detail,
        "count": lambda b: b.count_passed,
    }
    for key, name, _p, _r, params, _check in read_cases(ref, ref, run_ids):
        if key == "aggregate":
            ref_fn, ours_fn = ref.leaderboard_rows, ours.leaderboard_fast
            name = "leaderboard count/avg/min/max: reference rows / ours aggregate"
        else:
            ref_fn, ours_fn = calls[key](ref), calls[key](ours)
            name = f"SQL {name}: reference schema / ours"
        r_ms, o_ms = interleaved(ref_fn, ours_fn, params, ctx.sizes.query_reps)
        ctx.row(
            name,
            "ms",
            p50_p95(r_ms)[0],
            p50_p95(o_ms)[0],
            "latency",
            note=f"@{n:,} runs (raw SQL both sides)",
        )
    ours.close()
    ref.close()
    ctx.db.drop(bare)


def delete(ctx: Context, url: str, n: int) -> None:
    """``ResultsRepository.delete`` (cascade + aggregate upkeep), one run per transaction."""
    count = ctx.sizes.deletes
    project, raw = ctx.project(url), ctx.raw(url)
    # Runs of rotating model/engine pairs; the two sides delete neighbours.
    per_pair = [[row[0] for row in raw.latest(m, e, 60)] for m, e in PAIRS]
    victims = [ids[i] for i in range(60) for ids in per_pair if i < len(ids)][: 2 * (count + 1)]
    pairs = list(zip(victims[0::2], victims[1::2], strict=False))
    project.delete(pairs[0][0])  # warm-up
    raw.delete(pairs[0][1])
    with profiled("delete", ctx.profile):
        ps, rs = interleaved(
            lambda pr: project.delete(pr[0]),
            lambda pr: raw.delete(pr[1]),
            pairs[1:],
            len(pairs) - 1,
            warm=False,
        )
    for metric in METRICS:  # the answers survived the deletes of both sides
        aggregate_matches_rows(project.leaderboard_fast(metric), raw.leaderboard(metric))
    if project.count_passed(True) != raw.count_passed(True):
        raise RuntimeError("counts differ after the deletes")
    project.close()
    raw.close()
    (p50, p95), (r50, r95) = p50_p95(ps), p50_p95(rs)
    ctx.row("delete a run with cascade (p50)", "ms", p50, r50, "latency", 1.5, f"@{n:,} runs")
    ctx.row("delete a run with cascade (p95)", "ms", p95, r95, "latency", None)
