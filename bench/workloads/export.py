"""Export every run of the query database, streamed, each side in a fresh child process.

Peak memory is the growth of the child's peak RSS (``VmHWM``, reset through
``/proc/self/clear_refs``) over its RSS before exporting, so the figure is the
export's own, not the bench's.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench.backends import raw_backend
from bench.backends.project import Project
from bench.workloads import Context
from karr_db.engine import make_engine


def _rss_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _export_child(side: str, dialect: str, target: str, directory: str, out: Any) -> None:
    if side == "project":
        project = Project(make_engine(target))
        project.count_passed(True)  # connect and warm up before the baseline reading
        run: Callable[[], int] = lambda: project.export(Path(directory))  # noqa: E731
    else:
        raw = raw_backend(dialect, target)
        raw.count_passed(True)
        run = lambda: raw.export(Path(directory))  # noqa: E731
    with suppress(OSError):  # reset the peak (VmHWM) to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    before = _rss_kb("VmRSS")
    started = time.perf_counter()
    written = run()
    seconds = time.perf_counter() - started
    peak = _rss_kb("VmHWM")
    out.put({"seconds": seconds, "peak_mb": max(0, peak - before) / 1024, "written": written})


def export_in_child(side: str, dialect: str, target: str, directory: Path) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(
        target=_export_child, args=(side, dialect, target, str(directory), queue)
    )
    child.start()
    while True:
        with suppress(Exception):
            result: dict[str, Any] = queue.get(timeout=1)
            child.join()
            return result
        if not child.is_alive():
            raise RuntimeError(f"the {side} export child died (exit code {child.exitcode})")


def export(ctx: Context, url: str, n: int) -> None:
    """Export the query database's runs: time, and peak RSS growth in a child process."""
    results = {}
    for side in ("project", "baseline"):
        target = Path(tempfile.mkdtemp(dir=ctx.db.workdir, prefix=f"export-{side}-"))
        target_url = url if side == "project" else ctx.db.raw_target(url)
        results[side] = export_in_child(side, ctx.dialect, target_url, target)
        shutil.rmtree(target)
    p, r = results["project"], results["baseline"]
    ctx.row(
        f"export {n:,} runs streamed", "runs/s", n / p["seconds"], n / r["seconds"], "throughput"
    )
    ctx.row(f"export {n:,} runs: peak RSS growth", "MB", p["peak_mb"], r["peak_mb"], "memory", 50.0)
