"""``karr-db list`` start-up against ``python -c "import sqlalchemy, pydantic"``
(docs/performance.md, "CLI start-up").

    python -m bench.cli_startup [--runs 20] [--big 100000] [--dir /tmp/karr-cli]
    python -m bench.cli_startup --importtime 5     # where list's imports go

Builds a 3-run and a ``--big``-run SQLite database (small documents saved
5,000 per transaction, kept between invocations), then times cold processes of
the three commands interleaved (wall, and CPU of the child), and the same
``list`` warm in this process, where what is left is the query itself.

karr_db is byte-compiled first, as an installed wheel is: with
``PYTHONDONTWRITEBYTECODE`` set (as on the project's machines) an editable
install would otherwise compile every karr_db module from source in every
process, while the baseline's packages have their bytecode. One untimed round
warms the file cache; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import karr_db
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
    for command in commands.values():  # the untimed round
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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


def _self_times(args: list[str]) -> dict[str, int]:
    """``-X importtime`` self time (microseconds) of each module a process imports."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, check=True
    ).stderr
    found = (
        re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line) for line in err.splitlines()
    )
    return {m[2]: int(m[1]) for m in found if m}


def _package(module: str) -> str:
    parts = module.split(".")
    if module.startswith(("sqlalchemy.orm", "sqlalchemy.ext")):
        return "sqlalchemy.orm (+ext)"
    if module.startswith("sqlalchemy.dialects"):
        return ".".join(parts[:3])
    if parts[0] == "karr_db":
        return ".".join(parts[:2])
    if parts[0] in ("pydantic", "pydantic_core", "annotated_types", "typing_inspection"):
        return "pydantic (models, validators)"
    return {"typer": "typer", "rich": "rich", "sqlalchemy": "sqlalchemy (other)"}.get(
        parts[0], "stdlib and other"
    )


def importtime(url: str, pairs: int) -> None:
    """What ``karr-db list`` imports beyond the baseline, by package (medians of ``pairs``)."""
    known = set(_self_times(["-c", "import sqlalchemy, pydantic"]))
    bases: list[dict[str, int]] = []
    lists: list[dict[str, int]] = []
    for _ in range(pairs):
        bases.append(_self_times(["-c", "import sqlalchemy, pydantic"]))
        lists.append(_self_times(["-m", "karr_db.cli", "list", "--database", url]))
    extra = [{m: us for m, us in found.items() if m not in known} for found in lists]
    base_ms = statistics.median(sum(b.values()) for b in bases) / 1000
    extra_ms = statistics.median(sum(e.values()) for e in extra) / 1000
    print(
        f"-X importtime self time, medians of {pairs}: baseline {base_ms:.0f} ms, "
        f"karr-db list beyond it {extra_ms:.0f} ms ({extra_ms / base_ms:.2f}x)"
    )
    grouped: dict[str, list[float]] = defaultdict(list)
    for found in extra:
        sums: dict[str, float] = defaultdict(float)
        for module, us in found.items():
            sums[_package(module)] += us / 1000
        for name, ms in sums.items():
            grouped[name].append(ms)
    for name, values in sorted(grouped.items(), key=lambda kv: -statistics.median(kv[1])):
        ms = statistics.median(values)
        print(f"  {name:32s} {ms:6.1f} ms {ms / extra_ms:4.0%}  {ms / base_ms:4.2f}x baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    parser.add_argument("--big", type=int, default=100_000, help="runs in the big database")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/karr-cli-startup"))
    parser.add_argument(
        "--importtime", type=int, metavar="PAIRS", help="only profile list's imports"
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    small = build(args.dir / "small.db", 3)
    compileall.compile_dir(str(Path(karr_db.__file__).parent), quiet=1)
    if args.importtime:
        importtime(small, args.importtime)
        return
    big = build(args.dir / f"runs-{args.big}.db", args.big)
    script = str(Path(sys.executable).parent / "karr-db")
    commands = {
        "import sqlalchemy, pydantic": [sys.executable, "-c", "import sqlalchemy, pydantic"],
        "karr-db list (3 runs)": [script, "list", "--database", small],
        f"karr-db list ({args.big} runs)": [script, "list", "--database", big],
    }
    load_before = os.getloadavg()
    cold = _cold(commands, args.runs)
    load_after = os.getloadavg()
    base_wall, base_cpu = cold["import sqlalchemy, pydantic"]
    print(
        f"cold processes, {args.runs} interleaved runs each, medians "
        f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after)"
    )
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
