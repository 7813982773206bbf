"""Tidy data out, one row per metric value, as CSV or Parquet."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import pytest

from karr_db import tidy
from karr_db.database import Database
from tests.support.cli import cli, import_samples, write_variants

COLUMNS = [
    "run_id",
    "model",
    "engine",
    "suite_name",
    "timestamp",
    "gpu_model",
    "test_name",
    "run_number",
    "metric",
    "value",
]


@pytest.fixture
def stored(migrated_url: str, samples_dir: Path, tmp_path: Path) -> list[str]:
    """The samples plus a run whose avg_tps values are NaN, +inf and -inf."""
    ids = import_samples(migrated_url, samples_dir)
    (path,) = write_variants(samples_dir, tmp_path / "odd", 1)
    document = json.loads(path.read_text(encoding="utf-8"))
    for result, value in zip(document["results"], (math.nan, math.inf, -math.inf), strict=True):
        result["metrics"]["avg_tps"] = value
    path.write_text(json.dumps(document), encoding="utf-8")  # NaN/Infinity tokens
    outcome = cli("import", "--database", migrated_url, "--json", str(path))
    assert outcome.exit_code == 0, outcome.output
    return [*ids, outcome.json()["outcomes"][0]["run_id"]]


def _value_count(url: str) -> int:
    with Database(url) as db, db.unit_of_work() as uow:
        return sum(n.count for n in uow.results.metric_names(per_test=False))


def test_csv_export_has_one_row_per_metric_value(
    migrated_url: str, stored: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "values.csv"
    result = cli("export", "-d", migrated_url, "--format", "csv", "-o", str(target))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == _value_count(migrated_url)
    assert f"wrote {len(rows)} metric value(s)" in result.stdout
    assert {r["run_id"] for r in rows} == set(stored)
    odd = [r for r in rows if r["run_id"] == stored[-1] and r["metric"] == "avg_tps"]
    assert [r["value"] for r in odd] == ["NaN", "inf", "-inf"]
    assert [float(r["value"]) for r in odd[1:]] == [math.inf, -math.inf]
    sample = next(r for r in rows if r["metric"] == "avg_tps" and r["run_id"] != stored[-1])
    assert sample["gpu_model"]
    assert sample["timestamp"].endswith("+00:00")
    assert sample["test_name"] == "throughput"
    assert sample["run_number"] in {"1", "2", "3"}
    assert not list(tmp_path.glob(".*.partial"))


def test_csv_to_stdout_with_filters_and_a_run_prefix(migrated_url: str, stored: list[str]) -> None:
    whole = cli("export", "-d", migrated_url, "--format", "csv", "-o", "-", "--engine", "tgi")
    assert whole.exit_code == 0, whole.output
    rows = list(csv.DictReader(io.StringIO(whole.stdout)))
    assert rows
    assert {r["engine"] for r in rows} == {"tgi"}
    one = cli("export", "-d", migrated_url, "--format", "csv", "-o", "-", stored[0][:8])
    assert one.exit_code == 0, one.output
    assert {r["run_id"] for r in csv.DictReader(io.StringIO(one.stdout))} == {stored[0]}


def test_the_api_writes_the_same_rows(migrated_url: str, stored: list[str]) -> None:
    out = io.StringIO()
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        count = tidy.export_metric_values(uow.session, out, format="csv", filters={"engine": "tgi"})
        rows = list(uow.results.iter_metric_values({"engine": "tgi"}, batch_size=7))
    assert count == len(rows) == len(out.getvalue().splitlines()) - 1
    assert rows
    assert all(r.engine == "tgi" for r in rows)


def test_parquet_export_keeps_types_and_non_finite_values(
    migrated_url: str, stored: list[str], tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "values.parquet"
    result = cli("export", "-d", migrated_url, "--format", "parquet", "-o", str(target))
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert table.column_names == COLUMNS
    assert table.num_rows == _value_count(migrated_url)
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("value").type) == "double"
    rows = table.to_pylist()
    odd = [r["value"] for r in rows if r["run_id"] == stored[-1] and r["metric"] == "avg_tps"]
    assert math.isnan(odd[0])
    assert odd[1:] == [math.inf, -math.inf]
    empty = tmp_path / "none.parquet"
    nothing = cli("export", "-d", migrated_url, "-f", "parquet", "-o", str(empty), "--engine", "x")
    assert nothing.exit_code == 0
    assert pq.read_table(empty).num_rows == 0


def test_parquet_without_pyarrow_says_which_extra_to_install(
    migrated_url: str, stored: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    target = tmp_path / "values.parquet"
    result = cli("export", "-d", migrated_url, "--format", "parquet", "-o", str(target))
    assert result.exit_code == 1
    assert "pip install 'karr-db[analysis]'" in result.stderr
    assert "--format csv" in result.stderr
    assert not target.exists()


def test_export_format_usage_errors(migrated_url: str, tmp_path: Path) -> None:
    bad = cli("export", "-d", migrated_url, "--format", "xlsx", "-o", str(tmp_path / "x"))
    assert bad.exit_code == 2
    assert "use json, csv or parquet" in bad.stderr
    parquet_out = cli("export", "-d", migrated_url, "--format", "parquet", "-o", "-")
    assert parquet_out.exit_code == 2
    directory = cli("export", "-d", migrated_url, "--format", "csv", "-o", str(tmp_path))
    assert directory.exit_code == 2


def test_json_export_still_writes_documents(
    migrated_url: str, stored: list[str], tmp_path: Path
) -> None:
    result = cli("export", "-d", migrated_url, "-o", str(tmp_path / "docs"))
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "docs").glob("*/metrics.json"))) == len(stored)
