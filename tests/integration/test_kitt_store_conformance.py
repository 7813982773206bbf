"""KITT's own storage cases, case by case, run on KarrResultStore on both dialects.

Each test below is one case of KITT's storage suite (``tests/test_storage/
test_sqlite_store.py``; its mocked PostgreSQL suite checks the same calls) written
again for karr_db: same calls, same documents, same expectations, except where
the store deliberately differs (listed in ``karr_db.kitt``'s docstring). Those
cases assert karr_db's documented answer instead and say so in their name.
KITT's code is not vendored; only its behaviour is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, make_url, select

from karr_db.engine import make_engine
from karr_db.errors import (
    ConnectionLostError,
    InvalidQueryError,
    StorageError,
    ValidationError,
)
from karr_db.kitt import KarrResultStore, KittQueryError
from karr_db.models import Benchmark, Hardware


def _result(
    model: str = "llama-3.1", engine: str = "vllm", passed: bool = True, suite: str = "standard"
) -> dict[str, Any]:
    """The document KITT's storage tests save: one throughput benchmark, hardware info."""
    return {
        "model": model,
        "engine": engine,
        "suite_name": suite,
        "timestamp": "2025-01-15T10:30:00",
        "passed": passed,
        "total_benchmarks": 3,
        "passed_count": 3 if passed else 1,
        "failed_count": 0 if passed else 2,
        "total_time_seconds": 120.5,
        "kitt_version": "1.1.0",
        "results": [
            {
                "test_name": "throughput",
                "test_version": "1.0.0",
                "run_number": 1,
                "passed": True,
                "metrics": {"avg_tps": 45.2, "avg_latency_ms": 250.0},
                "errors": [],
                "timestamp": "2025-01-15T10:30:00",
            }
        ],
        "system_info": {
            "gpu": {"model": "RTX 4090", "vram_gb": 24, "count": 1},
            "cpu": {"model": "i9-13900K", "cores": 24},
            "ram_gb": 64,
            "environment_type": "native_linux",
            "fingerprint": "rtx4090-24gb",
        },
    }


@pytest.fixture
def store(empty_url: str) -> Iterator[KarrResultStore]:
    """Built the way KITT builds its store: on a database nobody prepared."""
    with KarrResultStore(empty_url) as built:
        yield built


def test_init_creates_database(empty_url: str, backend: str) -> None:
    with KarrResultStore(empty_url) as store:
        assert store.database.check() == []
        if backend == "sqlite":
            path = make_url(empty_url).database
            assert path is not None
            assert Path(path).exists()


def test_save_and_get(store: KarrResultStore) -> None:
    run_id = store.save_result(_result())
    assert run_id
    got = store.get_result(run_id)
    assert got is not None
    assert (got["model"], got["engine"]) == ("llama-3.1", "vllm")


def test_get_nonexistent(store: KarrResultStore) -> None:
    assert store.get_result("nonexistent") is None


def test_list_results(store: KarrResultStore) -> None:
    store.save_result(_result(model="model-a"))
    store.save_result(_result(model="model-b"))
    assert len(store.list_results()) == 2


def test_list_results_order(store: KarrResultStore) -> None:
    first = store.save_result(dict(_result(model="first"), timestamp="2025-01-15T10:30:00"))
    second = store.save_result(dict(_result(model="second"), timestamp="2025-01-16T10:30:00"))
    assert [r["id"] for r in store.list_results()] == [second, first]  # newest first


def test_query_no_filters(store: KarrResultStore) -> None:
    store.save_result(_result())
    assert len(store.query()) == 1


def test_query_filter_model(store: KarrResultStore) -> None:
    store.save_result(_result(model="model-a"))
    store.save_result(_result(model="model-b"))
    found = store.query(filters={"model": "model-a"})
    assert [r["model"] for r in found] == ["model-a"]


def test_query_filter_engine(store: KarrResultStore) -> None:
    store.save_result(_result(engine="vllm"))
    store.save_result(_result(engine="tgi"))
    assert [r["engine"] for r in store.query(filters={"engine": "tgi"})] == ["tgi"]


def test_query_filter_passed(store: KarrResultStore) -> None:
    store.save_result(_result(passed=True))
    store.save_result(_result(passed=False))
    found = store.query(filters={"passed": True})
    assert len(found) == 1
    assert found[0]["passed"] is True


def test_query_limit(store: KarrResultStore) -> None:
    for i in range(10):
        store.save_result(_result(model=f"model-{i}"))
    assert len(store.query(limit=5)) == 5


def test_query_offset(store: KarrResultStore) -> None:
    for i in range(5):
        store.save_result(_result(model=f"model-{i}"))
    assert len(store.query(offset=2)) == len(store.query()) - 2


def test_query_order_by_timestamp(store: KarrResultStore) -> None:
    older = store.save_result(dict(_result(model="a"), timestamp="2025-01-15T10:30:00"))
    newer = store.save_result(dict(_result(model="b"), timestamp="2025-01-16T10:30:00"))
    assert [r["id"] for r in store.query(order_by="-timestamp")] == [newer, older]


def test_count_all_stores_an_identical_document_once(store: KarrResultStore) -> None:
    """Deliberate difference: KITT counts 2 after saving the same document twice."""
    assert store.count() == 0
    first = store.save_result(_result())
    assert store.count() == 1
    assert store.save_result(_result()) == first
    assert store.count() == 1
    store.save_result(_result(model="other"))
    assert store.count() == 2


def test_count_with_filter(store: KarrResultStore) -> None:
    store.save_result(_result(engine="vllm"))
    store.save_result(_result(engine="tgi"))
    assert store.count({"engine": "vllm"}) == 1
    assert store.count({"engine": "tgi"}) == 1


def test_aggregate_by_engine_counts_distinct_documents(store: KarrResultStore) -> None:
    """Deliberate difference: KITT's case saves one document twice and expects 2."""
    store.save_result(_result(engine="vllm"))
    store.save_result(_result(engine="vllm", model="other"))
    store.save_result(_result(engine="vllm"))  # identical: stored once
    store.save_result(_result(engine="tgi"))
    counts = {g["engine"]: g["count"] for g in store.aggregate("engine")}
    assert counts == {"vllm": 2, "tgi": 1}


def test_aggregate_with_metrics(store: KarrResultStore) -> None:
    store.save_result(_result())
    groups = store.aggregate("engine", metrics=["avg_tps"])
    assert len(groups) == 1
    assert groups[0]["avg_tps_avg"] == pytest.approx(45.2)
    assert "avg_tps" not in groups[0]


def test_aggregate_invalid_group_by(store: KarrResultStore) -> None:
    with pytest.raises(ValueError, match="invalid_field") as refused:
        store.aggregate("invalid_field")
    assert isinstance(refused.value, InvalidQueryError)
    assert isinstance(refused.value, KittQueryError)


@pytest.mark.parametrize(
    ("method", "arguments", "named"),
    [
        ("query", {"filters": {"colour": "red"}}, "colour"),
        ("query", {"order_by": "-colour"}, "colour"),
        ("query", {"offset": -1}, "offset"),
        ("count", {"filters": {"colour": "red"}}, "colour"),
        ("count", {"filters": {"passed": "maybe"}}, "passed"),
        ("query", {"filters": {"model": 5}}, "model"),
        ("query", {"limit": "5"}, "limit"),
        ("aggregate", {"group_by": "engine", "metrics": "avg_tps"}, "metrics"),
        ("query", {"offset": None}, "offset"),
    ],
)
def test_other_invalid_queries_are_value_errors_too(
    store: KarrResultStore, method: str, arguments: dict[str, Any], named: str
) -> None:
    """KITT's results API answers a ValueError with 400 (not 500)."""
    with pytest.raises(ValueError, match=named) as refused:
        getattr(store, method)(**arguments)
    assert isinstance(refused.value, InvalidQueryError | ValidationError)


def test_delete_result(store: KarrResultStore) -> None:
    run_id = store.save_result(_result())
    assert store.count() == 1
    assert store.delete_result(run_id) is True
    assert store.count() == 0


def test_delete_cascades(store: KarrResultStore) -> None:
    run_id = store.save_result(_result())

    def benchmarks() -> int:
        with store.database.unit_of_work(readonly=True) as uow:
            count = uow.session.scalar(
                select(func.count()).select_from(Benchmark).where(Benchmark.run_id == run_id)
            )
        return count or 0

    assert benchmarks() > 0
    store.delete_result(run_id)
    assert benchmarks() == 0


def test_delete_nonexistent(store: KarrResultStore) -> None:
    assert store.delete_result("nonexistent") is False


def test_hardware_info_stored(store: KarrResultStore) -> None:
    run_id = store.save_result(_result())
    with store.database.unit_of_work(readonly=True) as uow:
        row = uow.session.execute(
            select(Hardware.gpu_model, Hardware.gpu_vram_gb).where(Hardware.run_id == run_id)
        ).one()
    assert tuple(row) == ("RTX 4090", 24)


def test_import_json(store: KarrResultStore, tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(_result()))
    assert store.get_result(store.import_json(path)) is not None


def test_import_directory(store: KarrResultStore, tmp_path: Path) -> None:
    run_dir = tmp_path / "kitt-results" / "model" / "vllm" / "run1"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(_result()))
    assert store.import_directory(tmp_path) == 1
    assert store.count() == 1


def test_export_result(store: KarrResultStore, tmp_path: Path) -> None:
    run_id = store.save_result(_result())
    out = tmp_path / "export" / "result.json"
    assert store.export_result(run_id, out) == out
    assert json.loads(out.read_text())["model"] == "llama-3.1"


def test_export_nonexistent(store: KarrResultStore, tmp_path: Path) -> None:
    assert store.export_result("nope", tmp_path / "nope.json") is None
    assert not (tmp_path / "nope.json").exists()


def test_close_and_reopen(empty_url: str) -> None:
    with KarrResultStore(empty_url) as store:
        store.save_result(_result())
    with KarrResultStore(empty_url) as again:
        assert again.count() == 1


# --- the database cannot be used -------------------------------------------------


def test_an_unreachable_server_is_the_layers_error() -> None:
    with pytest.raises(ConnectionLostError):
        KarrResultStore("postgresql://karr:secret@127.0.0.1:1/karr")


def test_a_refused_login_is_the_layers_error(migrated_postgres_url: str) -> None:
    engine = make_engine(migrated_postgres_url)
    url = engine.url.set(username="karr_no_such_role", password="wrong-secret")
    engine.dispose()
    with pytest.raises(StorageError) as refused:
        KarrResultStore(url)
    assert "wrong-secret" not in str(refused.value)
