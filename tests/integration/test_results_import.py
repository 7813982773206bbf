"""Importing files and trees (one transaction per file) and exporting runs back to files."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from karr_db.documents import run_id_for
from karr_db.importing import collect_files, export_run, export_runs, import_files, import_paths
from karr_db.models import Benchmark, Metric, Run
from karr_db.uow import transaction
from tests.support.equality import same


def build_tree(samples_dir: Path, root: Path) -> dict[str, Path]:
    """A KITT-like results tree: good documents, a broken one and a non-object."""
    files = {
        "quality": root / "2026" / "mistral" / "metrics.json",
        "throughput": root / "2026" / "qwen" / "run1" / "metrics.json",
        "broken": root / "broken" / "metrics.json",
        "list": root / "list" / "metrics.json",
        "invalid": root / "invalid" / "metrics.json",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(samples_dir / "sample_accuracy.json", files["quality"])
    shutil.copy(samples_dir / "sample_decode_speed.json", files["throughput"])
    files["broken"].write_text('{"model": "m", "engine": ')
    files["list"].write_text("[]")
    files["invalid"].write_text(json.dumps({"model": "m", "engine": "e", "timestamp": 5}))
    (root / "notes.json").write_text("{}")  # not a metrics.json: a tree import skips it
    return files


def runs_and_rows(engine: Engine) -> tuple[int, int, int]:
    with transaction(engine) as uow:
        return (
            uow.session.execute(select(func.count()).select_from(Run)).scalar_one(),
            uow.session.execute(select(func.count()).select_from(Benchmark)).scalar_one(),
            uow.session.execute(select(func.count()).select_from(Metric)).scalar_one(),
        )


def test_a_tree_imports_each_file_and_reports_every_outcome(
    engine: Engine, samples_dir: Path, tmp_path: Path
) -> None:
    files = build_tree(samples_dir, tmp_path)
    explicit = samples_dir / "sample_agent_latency.json"
    missing = tmp_path / "nope.json"

    report = import_paths(engine, [tmp_path, explicit, missing])

    by_path = {Path(o.path): o for o in report.outcomes}
    assert set(by_path) == {*files.values(), explicit, missing}
    assert {Path(o.path) for o in report.imported} == {
        files["quality"],
        files["throughput"],
        explicit,
    }
    assert by_path[files["broken"]].reason is not None
    assert "not JSON" in (by_path[files["broken"]].reason or "")
    assert "expected a JSON object" in (by_path[files["list"]].reason or "")
    assert "timestamp" in (by_path[files["invalid"]].reason or "")
    assert "cannot read" in (by_path[missing].reason or "")
    assert len(report.rejected) == 4
    quality = json.loads(files["quality"].read_text())
    assert by_path[files["quality"]].run_id == run_id_for(quality)
    assert runs_and_rows(engine) == (3, 8, 65)

    again = import_paths(engine, [tmp_path])
    assert {Path(o.path) for o in again.already_present} == {
        files["quality"],
        files["throughput"],
    }
    assert again.imported == []
    assert runs_and_rows(engine) == (3, 8, 65)


def test_export_writes_documents_that_import_back_as_the_same_runs(
    engine: Engine, samples_dir: Path, tmp_path: Path
) -> None:
    documents: list[dict[str, Any]] = [
        json.loads(p.read_text()) for p in sorted(samples_dir.glob("*.json"))
    ]
    documents.append(
        {
            "model": "nan-model",
            "engine": "vllm",
            "timestamp": "2026-01-01T00:00:00",
            "big": 1e16,
            "results": [{"test_name": "t", "metrics": {"x": math.nan, "y": -math.inf}}],
        }
    )
    with transaction(engine) as uow:
        ids = [uow.results.save(d).run.id for d in documents]

    with transaction(engine) as uow:
        written = export_runs(uow.session, tmp_path / "all", batch_size=2)
    assert written == len(documents)
    for run_id, document in zip(ids, documents, strict=True):
        exported = json.loads((tmp_path / "all" / run_id / "metrics.json").read_text())
        assert same(exported, document)

    report = import_paths(engine, [tmp_path / "all"])
    assert sorted(o.run_id or "" for o in report.already_present) == sorted(ids)
    assert report.rejected == []


def test_export_by_filter_and_one_run(engine: Engine, samples_dir: Path, tmp_path: Path) -> None:
    import_paths(engine, sorted(samples_dir.glob("*.json")))
    with transaction(engine) as uow:
        assert export_runs(uow.session, tmp_path / "ollama", {"engine": "ollama"}) == 2
        tgi = uow.results.list({"engine": "tgi"}).items[0].id
        target = export_run(uow.session, tgi, tmp_path / "one.json")
    assert len(list((tmp_path / "ollama").rglob("metrics.json"))) == 2
    assert json.loads(target.read_text())["engine"] == "tgi"


def test_directories_offer_metrics_json_else_every_json_file(tmp_path: Path) -> None:
    kitt = tmp_path / "kitt" / "run-1"
    kitt.mkdir(parents=True)
    (kitt / "metrics.json").write_text("{}")
    (kitt / "config.json").write_text("{}")  # not a result: KITT names results metrics.json
    collected = tmp_path / "collected" / "nested"
    collected.mkdir(parents=True)
    (collected / "b.json").write_text("{}")
    (collected / "a.json").write_text("{}")
    (collected / "notes.txt").write_text("")
    single = tmp_path / "one.json"

    files = collect_files([tmp_path / "kitt", tmp_path / "collected", single, single])

    assert files == [kitt / "metrics.json", collected / "a.json", collected / "b.json", single]


def test_one_transaction_per_file_gives_the_same_outcomes_as_batches(
    engine: Engine, samples_dir: Path, tmp_path: Path
) -> None:
    files = sorted(samples_dir.glob("*.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": 1}')
    paths = [*files, broken, files[0]]
    one_by_one = [(o.path, o.status) for o in import_files(engine, paths, batch_size=1)]
    assert [status for _, status in one_by_one] == [
        *["imported"] * len(files),
        "rejected",
        "already_present",
    ]
    again = [(o.path, o.status) for o in import_files(engine, paths, batch_size=50)]
    assert [status for _, status in again] == [
        *["already_present"] * len(files),
        "rejected",
        "already_present",
    ]
