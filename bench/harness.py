"""Timing and answer checks: both sides called in turn, per-call times, medians, same answers.

Only ratios measured side by side in one run mean anything on a shared
machine, so every query workload alternates the two sides call by call (and
which one goes first), rotates its parameters, and compares the answers of
every call.
"""

from __future__ import annotations

import cProfile
import math
import pstats
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class Disagreement(RuntimeError):
    """The project and the baseline answered the same question differently."""


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def repeat(fn: Callable[[], object], times: int) -> None:
    for _ in range(times):
        fn()


def latencies(fn: Callable[[], Any], reps: int) -> tuple[float, float]:
    """(median, p95) in milliseconds after one warm-up call."""
    fn()
    samples = sorted(timed(fn) * 1000 for _ in range(reps))
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


#: Compares one call's answers, ``(project's, baseline's, parameter)``; raises if they differ.
Check = Callable[[Any, Any, Any], None]


def interleaved(
    project: Callable[[Any], Any],
    raw: Callable[[Any], Any],
    params: Sequence[Any],
    reps: int,
    check: Check | None = None,
    *,
    warm: bool = True,
) -> tuple[list[float], list[float]]:
    """Per-call milliseconds of both sides, calls alternating (which side goes first
    alternates too) and parameters rotating, after one warm-up call each.

    ``check`` compares the two answers of every call with the same parameter
    (outside the timed part), so a faster baseline cannot be a different answer.
    ``warm=False`` for writes whose parameters may be used once only.
    """
    if warm:
        project(params[0])
        raw(params[0])
    p: list[float] = []
    r: list[float] = []
    for i in range(reps):
        arg = params[i % len(params)]
        first, second = ((project, p), (raw, r)) if i % 2 == 0 else ((raw, r), (project, p))
        answers = []
        for fn, samples in (first, second):
            started = time.perf_counter()
            answers.append(fn(arg))
            samples.append((time.perf_counter() - started) * 1000)
        if check is not None:
            p_answer, r_answer = answers if i % 2 == 0 else answers[::-1]
            check(p_answer, r_answer, arg)
    return p, r


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[
        min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))
    ]


@contextmanager
def profiled(name: str | None, wanted: set[str]) -> Iterator[None]:
    """cProfile the block when ``--profile`` names it; top functions printed."""
    if name is None or not (wanted & {name, "all"}):
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        print(f"\n--- profile: {name} ---")
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(30)
        stats.sort_stats("tottime").print_stats(25)


# --- answer checks: (project's answer, baseline's answer, parameter) ---------------


def _close(a: float | None, b: float | None, tolerance: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _fail(what: str, param: Any, detail: str = "") -> None:
    raise Disagreement(f"{what} differ for {param!r}{': ' + detail if detail else ''}")


def same_value(p: Any, r: Any, param: Any) -> None:
    """Run ids, counts: equal values."""
    if p != r:
        _fail("answers", param, f"{p!r} != {r!r}")


def same_latest(p: list[Any], r: list[Any], param: Any) -> None:
    if [s.id for s in p] != [row[0] for row in r]:
        _fail("latest runs", param)


def same_leaderboard(p: list[Any], r: list[Any], param: Any) -> None:
    """Groups in order, counts, averages and the exact medians."""
    if [(b.group["model"], b.group["engine"], b.count) for b in p] != [
        (row[0], row[1], row[2]) for row in r
    ]:
        _fail("leaderboard groups", param)
    for b, row in zip(p, r, strict=True):
        if not (_close(b.avg, row[3]) and _close(b.median, row[6], 1e-6)):
            _fail("leaderboard values", param, f"{b} != {row}")


def same_aggregate(p: list[Any], r: list[Any], param: Any) -> None:
    """The aggregate leaderboard: groups, counts, extremes (the raw avg is kept x 2^64)."""
    if [(b.group["model"], b.group["engine"], b.count, b.min, b.max) for b in p] != [
        (row[0], row[1], row[2], row[4], row[5]) for row in r
    ]:
        _fail("aggregate leaderboards", param)
    for b, row in zip(p, r, strict=True):
        if not _close(b.avg, None if row[3] is None else row[3] * 2.0**64):
            _fail("aggregate averages", param, f"{b.avg} != {row[3]}")


def same_history(p: list[Any], r: list[Any], param: Any) -> None:
    if [(x.run_id, x.test_name) for x in p] != [(row[0], row[2]) for row in r]:
        _fail("metric histories", param)
    if not all(_close(x.value, row[4]) for x, row in zip(p, r, strict=True)):
        _fail("metric history values", param)


def same_detail(p: Any, r: tuple[Any, list[Any], list[Any]], param: Any) -> None:
    _, benches, metrics = r
    if (len(p.benchmarks), sum(len(b.metrics) for b in p.benchmarks)) != (
        len(benches),
        len(metrics),
    ):
        _fail("run details", param)


def aggregate_matches_rows(board: list[Any], rows: list[Any]) -> None:
    """The leaderboard without median agrees with the rows: same groups, counts,
    extremes and averages."""
    if [(b.group["model"], b.group["engine"], b.count, b.min, b.max) for b in board] != [
        (r[0], r[1], r[2], r[4], r[5]) for r in rows
    ]:
        _fail("aggregate and row-level leaderboards", "groups")
    for b, r in zip(board, rows, strict=True):
        if not _close(b.avg, r[3]):
            _fail("aggregate and row-level averages", (b.group, b.avg, r[3]))
