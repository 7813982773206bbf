"""The event log: append one event per transaction, in batches, and a tail reader catching up.

Appends take the log's lock (an advisory lock on PostgreSQL, the write lock on
SQLite) and NOTIFY on both sides; the tail reads pages of 1,000 with the
payload and time decoded, both readers on the same log.
"""

from __future__ import annotations

from bench.harness import interleaved, profiled, same_value
from bench.workloads import Context


def events(ctx: Context) -> None:
    """Append one per transaction, append in batches, and a tail reader catching up."""
    s = ctx.sizes
    p_url, r_url = ctx.db.migrated(), ctx.db.migrated()
    project, raw = ctx.project(p_url), ctx.db.raw(r_url)

    with profiled("events", ctx.profile):
        ps, rs = interleaved(
            lambda _: project.append_event(),
            lambda _: raw.append_events(1),
            [None],
            s.events_single,
        )
    p, r = sum(ps) / 1000, sum(rs) / 1000
    ctx.row(
        "events: append 1/transaction",
        "events/s",
        s.events_single / p,
        s.events_single / r,
        "throughput",
        1.5,
    )
    total = s.events_batches * s.events_batch_size
    ps, rs = interleaved(
        project.append_events, raw.append_events, [s.events_batch_size], s.events_batches
    )
    p, r = sum(ps) / 1000, sum(rs) / 1000
    ctx.row(
        f"events: append in batches of {s.events_batch_size:,}",
        "events/s",
        total / p,
        total / r,
        "throughput",
    )
    # Top up one log to the tail size; both readers read that same log.
    have = s.events_single + total + 1 + s.events_batch_size  # the warm-up calls too
    while have < s.tail_events:
        step = min(10_000, s.tail_events - have)
        raw.append_events(step)
        have += step
    project.close()
    project = ctx.project(r_url)
    with profiled("tail", ctx.profile):
        ps, rs = interleaved(project.tail, raw.tail, [0], 2, same_value)
    p, r = min(ps) / 1000, min(rs) / 1000
    ctx.row(
        f"events: tail reader catching up {have:,}",
        "events/s",
        have / p,
        have / r,
        "throughput",
        1.5,
    )
    project.close()
    raw.close()
    ctx.db.drop(p_url)
    ctx.db.drop(r_url)
