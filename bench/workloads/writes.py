"""Writes: save one document per transaction, ``save_many`` in bulk, import from files.

Each side writes into its own copy of the migrated template, the same
documents in the same order, so both do the same work on databases of the same
size; the run ids (content-derived) and the counts of new runs are compared.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from bench.generator import documents
from bench.harness import interleaved, profiled, same_value, timed
from bench.workloads import Context


def save(ctx: Context) -> None:
    """``ResultsRepository.save`` in its own immediate transaction, one document each."""
    n = ctx.sizes.saves
    docs = list(documents(n + 1, seed=1))
    p_url, r_url = ctx.db.migrated(), ctx.db.migrated()
    project, raw = ctx.project(p_url), ctx.raw(r_url)
    project.save(docs[0])  # warm-up: connections, statement caches
    raw.save(docs[0])
    with profiled("save", ctx.profile):
        ps, rs = interleaved(project.save, raw.save, docs[1:], n, same_value, warm=False)
    project.close()
    raw.close()
    ctx.db.drop(p_url)
    ctx.db.drop(r_url)
    p, r = sum(ps) / 1000, sum(rs) / 1000
    ctx.row("save 1 document/transaction", "runs/s", n / p, n / r, "throughput", 1.5)


def bulk_save(ctx: Context) -> None:
    """``save_many`` of ``bulk_docs`` documents per call, calls interleaved."""
    size, calls = ctx.sizes.bulk_docs, ctx.sizes.bulk_calls
    warm = 10
    docs = list(documents(warm + size * calls, seed=4))
    chunks = [docs[warm + i * size : warm + (i + 1) * size] for i in range(calls)]
    p_url, r_url = ctx.db.migrated(), ctx.db.migrated()
    project, raw = ctx.project(p_url), ctx.raw(r_url)
    project.save_many(docs[:warm])
    raw.save_many(docs[:warm])
    with profiled("bulk", ctx.profile):
        ps, rs = interleaved(
            project.save_many, raw.save_many, chunks, calls, same_value, warm=False
        )
    project.close()
    raw.close()
    ctx.db.drop(p_url)
    ctx.db.drop(r_url)
    total = size * calls
    ctx.row(
        f"bulk save (save_many of {size:,} documents)",
        "runs/s",
        total / (sum(ps) / 1000),
        total / (sum(rs) / 1000),
        "throughput",
        1.5,
    )


def import_files(ctx: Context) -> None:
    """``import_paths`` over a directory of files against read + parse + bulk insert."""
    n = ctx.sizes.imports
    files = Path(tempfile.mkdtemp(dir=ctx.db.workdir, prefix="import-"))
    paths = []
    for i, doc in enumerate(documents(n, seed=2)):
        path = files / f"{i:06d}" / "metrics.json"
        path.parent.mkdir()
        path.write_text(json.dumps(doc, indent=2))
        paths.append(path)
    p_url, r_url = ctx.db.migrated(), ctx.db.migrated()
    project, raw = ctx.project(p_url), ctx.raw(r_url)
    with profiled("import", ctx.profile):
        p = timed(lambda: project.import_files([files]))
    batch = ctx.sizes.import_batch

    def raw_import() -> None:
        for start in range(0, len(paths), batch):
            raw.import_batch([json.loads(p.read_bytes()) for p in paths[start : start + batch]])

    r = timed(raw_import)
    project.close()
    raw.close()
    ctx.db.drop(p_url)
    ctx.db.drop(r_url)
    shutil.rmtree(files)
    ctx.row(f"import {n:,} documents (files)", "runs/s", n / p, n / r, "throughput", 2.0)
