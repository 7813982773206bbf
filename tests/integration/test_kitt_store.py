"""KarrResultStore driven exactly as KITT's storage callers drive their ResultStore."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from karr_db.database import Database
from karr_db.documents import run_id_for
from karr_db.errors import (
    InvalidQueryError,
    NotFoundError,
    StillReferencedError,
    ValidationError,
)
from karr_db.kitt import KarrResultStore, ResultStore, ResultStoreFiles
from tests.support.equality import same


def _documents(samples_dir: Path) -> list[dict[str, Any]]:
    """Six documents over two engines, three models, two suites, both outcomes."""
    base = json.loads((samples_dir / "sample_decode_speed.json").read_text())
    docs = []
    for n, (model, engine, suite, passed, tps) in enumerate(
        [
            ("llama-8b", "vllm", "quick", True, 100.0),
            ("llama-8b", "vllm", "standard", False, 120.0),
            ("llama-8b", "llama_cpp", "quick", True, 40.0),
            ("qwen-32b", "vllm", "quick", True, 60.0),
            ("qwen-32b", "llama_cpp", "standard", False, math.nan),
            ("mistral-7b", "llama_cpp", "quick", None, 80.0),
        ]
    ):
        doc = copy.deepcopy(base)
        doc.update(model=model, engine=engine, suite_name=suite, passed=passed)
        doc["timestamp"] = f"2026-03-0{n + 1}T12:00:00.000001"
        for result in doc["results"]:
            result["metrics"]["avg_tps"] = tps
        docs.append(doc)
    return docs


@pytest.fixture(params=["url", "database"])
def store(request: pytest.FixtureRequest, migrated_url: str) -> Iterator[KarrResultStore]:
    """The store as KITT would build it: from a URL, or over a Database the caller owns."""
    if request.param == "url":
        with KarrResultStore(migrated_url) as built:
            yield built
        return
    with Database(migrated_url) as db, KarrResultStore(db) as built:
        yield built


@pytest.fixture
def saved(store: KarrResultStore, samples_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(store.save_result(doc), doc) for doc in _documents(samples_dir)]


def test_the_store_implements_kitts_interface_structurally(store: KarrResultStore) -> None:
    assert isinstance(store, ResultStore)
    assert isinstance(store, ResultStoreFiles)


def test_save_then_get_returns_the_document_with_its_id(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    for result_id, doc in saved:
        assert result_id == run_id_for(doc)  # content-derived
        got = store.get_result(result_id)
        assert got is not None
        assert got.pop("id") == result_id
        assert same(got, doc)
    assert store.get_result("0123456789abcdef") is None
    assert store.get_result("") is None


def test_a_documents_own_id_key_shows_the_run_id_on_read(
    store: KarrResultStore, samples_dir: Path
) -> None:
    doc = dict(_documents(samples_dir)[0], id="kitt-side-id")
    result_id = store.save_result(doc)
    got = store.get_result(result_id)
    assert got is not None
    assert got["id"] == result_id
    with store.database.unit_of_work() as uow:
        assert uow.results.get_document(result_id)["id"] == "kitt-side-id"  # stored as saved


def test_identical_documents_are_stored_once(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    result_id, doc = saved[0]
    assert store.save_result(copy.deepcopy(doc)) == result_id
    assert store.count() == len(saved)


def test_query_filters_exactly_on_model_engine_suite_and_passed(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    def ids(**filters: Any) -> set[str]:
        return {r["id"] for r in store.query(filters)}

    def expected(**filters: Any) -> set[str]:
        return {i for i, d in saved if all(d[k] == v for k, v in filters.items())}

    for filters in (
        {"model": "llama-8b"},
        {"engine": "llama_cpp"},
        {"suite_name": "standard"},
        {"passed": True},
        {"passed": False},
        {"model": "llama-8b", "engine": "vllm", "passed": True},
        {"model": "llama"},  # exact, not a prefix
    ):
        assert ids(**filters) == expected(**filters), filters
        assert store.count(filters) == len(expected(**filters)), filters
    assert {r["id"] for r in store.query(None)} == {i for i, _ in saved}
    assert store.count(None) == len(saved)
    with pytest.raises(InvalidQueryError, match="colour"):
        store.query({"colour": "red"})


def test_query_orders_limits_and_offsets(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    by_time = [i for i, _ in sorted(saved, key=lambda s: s[1]["timestamp"])]
    assert [r["id"] for r in store.query(order_by="timestamp")] == by_time
    assert [r["id"] for r in store.query(order_by="-timestamp")] == by_time[::-1]
    assert [r["id"] for r in store.query()] == by_time[::-1]  # newest first by default
    assert [r["id"] for r in store.query(order_by="timestamp", limit=2)] == by_time[:2]
    assert [r["id"] for r in store.query(order_by="timestamp", limit=2, offset=3)] == by_time[3:5]
    assert [r["id"] for r in store.query(order_by="timestamp", offset=4)] == by_time[4:]
    assert store.query(limit=0) == []
    assert store.query(offset=len(saved)) == []
    llama = store.query({"model": "llama-8b"}, order_by="-timestamp", limit=1)
    assert [r["id"] for r in llama] == [by_time[2]]
    assert llama[0]["model"] == "llama-8b"  # whole documents come back
    with pytest.raises(InvalidQueryError, match="colour"):
        store.query(order_by="-colour")
    with pytest.raises(InvalidQueryError):
        store.query(offset=-1)


def test_list_results_gives_summaries_with_offset_timestamps(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    listed = store.list_results()
    assert len(listed) == len(saved)
    newest = listed[0]
    result_id, doc = saved[-1]
    assert newest == {
        "id": result_id,
        "model": doc["model"],
        "engine": doc["engine"],
        "suite_name": doc["suite_name"],
        "timestamp": "2026-03-06T12:00:00.000001+00:00",
        "passed": doc["passed"],
    }


def test_aggregate_counts_runs_and_averages_metrics_per_group(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    by_engine = store.aggregate("engine", ["avg_tps"])
    assert by_engine == [
        {"engine": "llama_cpp", "count": 3, "avg_tps_avg": pytest.approx((40.0 + 80.0) / 2)},
        {"engine": "vllm", "count": 3, "avg_tps_avg": pytest.approx((100 + 120 + 60) / 3)},
    ]
    by_suite = store.aggregate("suite_name")
    assert by_suite == [
        {"suite_name": "quick", "count": 4},
        {"suite_name": "standard", "count": 2},
    ]
    by_model = {row["model"]: row for row in store.aggregate("model", ["avg_tps", "nothing"])}
    assert by_model["qwen-32b"]["count"] == 2
    assert by_model["qwen-32b"]["avg_tps_avg"] == pytest.approx(60.0)  # NaN left out
    assert by_model["mistral-7b"]["nothing_avg"] is None
    with pytest.raises(InvalidQueryError, match="colour"):
        store.aggregate("colour")


def test_delete_result_says_whether_it_deleted(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    result_id, _ = saved[0]
    assert store.delete_result(result_id) is True
    assert store.get_result(result_id) is None
    assert store.delete_result(result_id) is False
    assert store.count() == len(saved) - 1


def test_delete_result_keeps_a_run_that_a_quick_test_points_to(
    store: KarrResultStore, saved: list[tuple[str, dict[str, Any]]]
) -> None:
    result_id, _ = saved[0]
    with store.database.unit_of_work(immediate=True) as uow:
        agent = uow.agents.register("box").agent
        test = uow.quick_tests.dispatch(
            agent.id, model_path="/m", engine_name="vllm", benchmark_name="throughput"
        )
        uow.quick_tests.claim_next(agent.id)
        uow.quick_tests.start(test.id)
        uow.quick_tests.complete(test.id, result_id=result_id)
    with pytest.raises(StillReferencedError):
        store.delete_result(result_id)
    assert store.get_result(result_id) is not None
    assert store.delete_result(result_id, detach=True) is True
    with store.database.unit_of_work() as uow:
        assert uow.quick_tests.get(test.id).result_id is None


def test_bad_documents_are_refused_by_field(store: KarrResultStore) -> None:
    with pytest.raises(ValidationError) as bad:
        store.save_result({"model": "m"})
    assert "engine" in bad.value.fields
    assert store.count() == 0


def test_import_json_and_a_directory_tree_then_export(
    store: KarrResultStore, samples_dir: Path, tmp_path: Path
) -> None:
    docs = _documents(samples_dir)
    single = tmp_path / "one.json"
    single.write_text(json.dumps(docs[0]))
    first = store.import_json(single)
    assert first == run_id_for(docs[0])

    tree = tmp_path / "results"
    for n, doc in enumerate(docs):
        path = tree / doc["model"] / f"run-{n}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(doc, allow_nan=True))
    (tree / "broken" / "x").mkdir(parents=True)
    (tree / "broken" / "x" / "metrics.json").write_text("{not json")
    (tree / "notes.json").write_text("{}")  # not a metrics.json: not imported
    assert store.import_directory(tree) == len(docs) - 1  # docs[0] was there already
    assert store.count() == len(docs)
    assert store.import_directory(tree) == 0

    exported = tmp_path / "out" / "metrics.json"
    assert store.export_result(first, exported) == exported
    assert same(json.loads(exported.read_text()), docs[0])
    assert store.import_json(exported) == first

    assert store.export_result("nope", tmp_path / "nope.json") is None
    assert not (tmp_path / "nope.json").exists()
    with pytest.raises(NotFoundError):
        store.import_json(tmp_path / "missing.json")
    with pytest.raises(NotFoundError):
        store.import_directory(tmp_path / "missing")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValidationError):
        store.import_json(bad)


def test_a_fresh_database_is_migrated_on_construction(empty_url: str) -> None:
    with KarrResultStore(empty_url) as store:
        assert store.count() == 0
        assert store.database.check() == []


@pytest.mark.postgres_only
def test_an_unreachable_server_is_the_layer_s_error_without_the_password() -> None:
    from karr_db.errors import StorageError

    with pytest.raises(StorageError) as raised:
        KarrResultStore("postgresql://u:s3cret-pw@127.0.0.1:1/x")
    assert "s3cret-pw" not in str(raised.value)
    assert "s3cret-pw" not in repr(raised.value.__cause__)
    assert "opening" in str(raised.value)
