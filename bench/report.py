"""The table: rows of both sides' figures, their ratio and verdict, and the scaling table.

Every ratio is project/baseline for times (baseline/project for throughputs),
so above 1 always means "the project is slower", and both figures of a row
come from the same run, measured interleaved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    """One line of the table."""

    dialect: str
    workload: str
    unit: str
    project: float
    baseline: float | None
    #: "throughput" (higher is better) or "latency"/"memory" (lower is better).
    kind: str
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How many times slower (or bigger) the project is than the baseline."""
        if self.baseline is None or self.project == 0 or self.baseline == 0:
            return None
        if self.kind == "throughput":
            return self.baseline / self.project
        return self.project / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.kind == "memory":
            return "ok" if self.project <= self.target else "MISS"
        ratio = self.ratio
        if ratio is None:
            return ""
        return "ok" if ratio <= self.target else "MISS"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    scaling: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {format_row(row)}", flush=True)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_row(row: Row) -> str:
    ratio = row.ratio
    if row.target is None:
        target = ""
    elif row.kind == "memory":
        target = f"< {row.target:g} MB"
    else:
        target = f"<= {row.target:g}x"
    return (
        f"{row.dialect:<10} {row.workload:<44} {row.unit:<8} {_fmt(row.project):>10} "
        f"{_fmt(row.baseline):>10} {('-' if ratio is None else f'{ratio:.2f}x'):>7} "
        f"{target:>10} {row.verdict:>4} {row.note}"
    )


HEADER = (
    f"{'dialect':<10} {'workload':<44} {'unit':<8} {'project':>10} {'baseline':>10} "
    f"{'ratio':>7} {'target':>10} {'':>4}"
)


def print_table(report: Report) -> None:
    print()
    print(
        "ratio = project/baseline time (baseline/project for throughputs): "
        "1.00x is raw-driver speed"
    )
    print(HEADER)
    print("-" * len(HEADER))
    for row in report.rows:
        print(format_row(row))
    if report.scaling:
        print()
        print(
            "scaling (runs already stored -> save throughput, p50 latencies in ms; "
            "ratio = project/raw, interleaved)"
        )
        print(
            f"{'dialect':<10} {'runs':>8} {'save/s':>8} {'raw/s':>8} {'ratio':>6} "
            + " ".join(f"{k + ' ms':>11} {'raw':>8} {'ratio':>6}" for k in SCALE_READS)
        )
        for s in report.scaling:
            cells = " ".join(
                f"{s[k]:>11.2f} {s[k + '_raw']:>8.2f} {s[k] / s[k + '_raw']:>5.2f}x"
                for k in SCALE_READS
            )
            print(
                f"{s['dialect']:<10} {s['runs']:>8,} {s['save']:>8.1f} {s['save_raw']:>8.1f} "
                f"{s['save_raw'] / s['save']:>5.2f}x {cells}"
            )
        print_storage(report.scaling)


#: The tables the capacity section sizes, in the order printed.
STORAGE_TABLES = (
    "metrics",
    "runs",
    "benchmarks",
    "hardware",
    "events",
    "run_fingerprints",
    "leaderboard_aggregates",
)


def print_storage(scaling: list[dict[str, Any]]) -> None:
    """Bytes per stored run, per table (indexes and TOAST included), at each scaling point."""
    points = [s for s in scaling if s.get("storage")]
    if not points:
        return
    print()
    print("storage (bytes per stored run; table + its indexes + TOAST; whole database last)")
    print(
        f"{'dialect':<10} {'runs':>8} "
        + " ".join(f"{t[:12]:>12}" for t in STORAGE_TABLES)
        + f" {'database':>10}"
    )
    for s in points:
        sizes, n = s["storage"], s["runs"]
        cells = " ".join(f"{sizes.get(t, 0) / n:>12,.0f}" for t in STORAGE_TABLES)
        print(f"{s['dialect']:<10} {n:>8,} {cells} {sizes['(database)'] / n:>10,.0f}")
    print(
        "raw bytes: "
        + json.dumps([{k: s[k] for k in ("dialect", "runs", "storage")} for s in points])
    )


#: The reads of the scaling table: latest 50, leaderboard from rows, from the aggregate, history.
SCALE_READS = ("latest", "lb", "agg", "history")
