"""``python -m bench``: karr_db against hand-written SQL on raw drivers, SQLite and PostgreSQL.

``make bench`` runs every workload at full size on both dialects and prints
one table: the project's figure, the baseline's, and project/baseline (for
throughputs baseline/project, so that above 1 always means "the project is
slower"). ``--quick`` uses smaller sizes; ``--scale 1000,10000,100000`` adds the
scaling table and the storage per run.

PostgreSQL comes from ``--postgres URL`` or ``KARR_BENCH_POSTGRES_URL`` (else
``KARR_TEST_POSTGRES_URL``; a server URL: throwaway ``karr_bench_*`` databases
are created there and dropped afterwards); without it only SQLite runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.databases import Databases
from bench.report import Report, print_table
from bench.sizes import Sizes
from bench.workloads import Context, steps
from bench.workloads.scaling import scaling
from karr_db.engine import normalize_url

POSTGRES_ENV = "KARR_BENCH_POSTGRES_URL"


def commit() -> str:
    """The commit measured (``+dirty`` when the tree has changes), for the published figures."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def load() -> str:
    """The machine's load averages: figures from a loaded machine say so."""
    with suppress(OSError):
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "load average unknown"


def machine() -> str:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    return (
        f"{os.cpu_count()} cores ({model}){mem}; Python {platform.python_version()}; "
        f"SQLAlchemy {sa.__version__}; psycopg {psycopg.__version__}; "
        f"SQLite {__import__('sqlite3').sqlite_version}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dialect", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(POSTGRES_ENV) or os.environ.get("KARR_TEST_POSTGRES_URL"),
        help=f"PostgreSQL server URL (default ${POSTGRES_ENV}, else $KARR_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated steps: save,bulk,import,queries,events,migrations "
        "('scaling' alone: only the scaling table)",
    )
    parser.add_argument(
        "--scale",
        default="",
        help="comma-separated run counts for the scaling table, e.g. 1000,10000",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="cProfile these workloads' project side (save, bulk, import, latest, "
        "leaderboard, aggregate, metric, full, count, delete, events, tail, upgrade, adopt, all)",
    )
    parser.add_argument("--workdir", default=None, help="where SQLite files and exports go")
    args = parser.parse_args(argv)

    sizes = Sizes.tiny() if args.tiny else Sizes.quick() if args.quick else Sizes.full()
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    server = (
        normalize_url(args.postgres)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
        if args.postgres
        else None
    )
    if "postgresql" in dialects and server is None:
        if args.dialect == "postgresql":
            parser.error(f"PostgreSQL needs --postgres URL or ${POSTGRES_ENV}")
        print(f"no PostgreSQL (--postgres or ${POSTGRES_ENV}): SQLite only", file=sys.stderr)
        dialects = ["sqlite"]
    only = {s for s in args.only.split(",") if s}
    scale = [int(s) for s in args.scale.split(",") if s]
    profile = {s for s in args.profile.split(",") if s}

    print(f"machine: {machine()}")
    print(f"commit: {commit()}; {load()}")
    if server:
        with psycopg.connect(server) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(
            f"PostgreSQL {version[0] if version else '?'} at "
            f"{make_url(server).render_as_string(hide_password=True)}"
        )
    report = Report()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="karr-bench-", dir=args.workdir))
    try:
        for dialect in dialects:
            databases = Databases(dialect, workdir, server)
            try:
                ctx = Context(databases, sizes, report, profile)
                for name, step in steps():
                    if only and name not in only:
                        continue
                    print(f"[{dialect}] {name}", flush=True)
                    step(ctx)
                if scale:
                    scaling(ctx, scale)
            finally:
                databases.drop_all()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(report)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {load()}")
    return 0
