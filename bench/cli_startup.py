"""``karr-db list`` start-up against ``python -c "import sqlalchemy, pydantic"``
(docs/performance.md, "CLI start-up").

    python -m bench.cli_startup [--runs 20] [--big 100000] [--dir /tmp/karr-cli]

Builds a 3-run and a ``--big``-run SQLite database (small documents saved
5,000 per transaction, kept between invocations), then times cold processes of
the three commands interleaved (wall, and CPU of the child), and the same
``list`` warm in this process, where what is left is the query itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from karr_db import migrations, transaction
from karr_db.engine import make_engine

ENGINES = ("vllm", "ollama", "tgi", "llama.cpp")


def _document(i: int) -> dict[str, Any]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return {
        "model": f"model-{i % 20}",
        "engine": ENGINES[i % 4],
        "suite_name": "quick",
        "timestamp": (start + timedelta(minutes=i)).isoformat(),
        "passed": i % 7 != 0,
        "results": [
            {
                "test_name": "throughput",
                "passed": True,
                "metrics": {"avg_tps": float(i % 97), "ttft_ms": {"p50": float(i % 13)}},
            }
        ],
    }


def build(path: Path, runs: int) -> str:
    """A SQLite database of ``runs`` runs at ``path`` (reused when it has them)."""
    url = f"sqlite:///{path}"
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(engine) as uow:
            have = uow.results.count()
        for first in range(have, runs, 5000):
            with transaction(engine, immediate=True) as uow:
                uow.results.save_many([_document(i) for i in range(first, min(runs, first + 5000))])
    finally:
        engine.dispose()
    return url


def _cold(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    env = {k: v for k, v in os.environ.items() if k != "KARR_DATABASE_URL"}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            started = time.perf_counter()
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
            _, status, usage = os.wait4(process.pid, 0)
            if status != 0:
                raise SystemExit(f"{name} failed ({status})")
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(usage.ru_utime + usage.ru_stime)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in wall}


def _warm(url: str) -> float:
    from karr_db.cli import app

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            app(["list", "--database", url], prog_name="karr-db")
        except SystemExit as exit:
            if exit.code:
                raise
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    parser.add_argument("--big", type=int, default=100_000, help="runs in the big database")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/karr-cli-startup"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    small = build(args.dir / "small.db", 3)
    big = build(args.dir / f"runs-{args.big}.db", args.big)
    script = str(Path(sys.executable).parent / "karr-db")
    commands = {
        "import sqlalchemy, pydantic": [sys.executable, "-c", "import sqlalchemy, pydantic"],
        "karr-db list (3 runs)": [script, "list", "--database", small],
        f"karr-db list ({args.big} runs)": [script, "list", "--database", big],
    }
    cold = _cold(commands, args.runs)
    base_wall, base_cpu = cold["import sqlalchemy, pydantic"]
    print(f"cold processes, {args.runs} interleaved runs each, medians")
    for name, (wall, cpu) in cold.items():
        print(
            f"  {name:30s} wall {wall * 1000:6.0f} ms ({wall / base_wall:4.2f}x)"
            f"  cpu {cpu * 1000:6.0f} ms ({cpu / base_cpu:4.2f}x)"
        )
    _warm(small)  # imports and first statements out of the way
    _warm(big)
    warm_small: list[float] = []
    warm_big: list[float] = []
    for _ in range(args.runs):
        warm_small.append(_warm(small))
        warm_big.append(_warm(big))
    small_ms = statistics.median(warm_small) * 1000
    big_ms = statistics.median(warm_big) * 1000
    print(
        f"warm, in one process: {small_ms:.0f} ms (3 runs), {big_ms:.0f} ms ({args.big} runs): "
        f"the query costs {big_ms - small_ms:.0f} ms more"
    )


if __name__ == "__main__":
    main()
