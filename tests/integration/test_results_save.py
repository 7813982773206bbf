"""Saving result documents: normalisation, lossless round trip, idempotency, NaN, atomicity."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from karr_db.database import Database
from karr_db.documents import load_document, run_id_for
from karr_db.errors import StorageError, ValidationError
from karr_db.models import Benchmark, Event, Hardware, Metric, Run
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.results import ResultsRepository
from karr_db.uow import transaction
from tests.support.documents import minimal
from tests.support.equality import same
from tests.support.repositories import on
from tests.support.strategies import documents


def sample(samples_dir: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((samples_dir / name).read_text())
    return document


def metric_values(session: Session, run_id: str) -> dict[tuple[str | None, str | None], Any]:
    rows = session.execute(
        select(Benchmark.test_name, Metric.metric_name, Metric.metric_value)
        .join(Metric, Metric.benchmark_id == Benchmark.id)
        .where(Benchmark.run_id == run_id)
    ).all()
    return {(test, name): value for test, name, value in rows}


def same_value(a: float | None, b: float) -> bool:
    """Numeric equality where NaN equals NaN."""
    if a is None:
        return False
    return (math.isnan(a) and math.isnan(b)) or a == b


def table_counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.execute(select(func.count()).select_from(table)).scalar_one()
        for table in (Run, Benchmark, Metric, Hardware)
    )


SAMPLES = ["sample_accuracy.json", "sample_agent_latency.json", "sample_decode_speed.json"]


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_round_trips_and_is_normalised(
    session: Session, samples_dir: Path, name: str
) -> None:
    document = sample(samples_dir, name)
    repo = on(ResultsRepository, session)

    saved = repo.save(document)

    assert saved.created
    assert saved.run.id == run_id_for(document)
    assert same(repo.get_document(saved.run.id), document)
    detail = repo.get(saved.run.id)
    assert detail.model == document["model"]
    assert detail.engine == document["engine"]
    assert len(detail.benchmarks) == len(document["results"])
    assert [b.test_name for b in detail.benchmarks] == [r["test_name"] for r in document["results"]]
    gpu = document["system_info"]["gpu"]
    assert detail.hardware is not None
    assert detail.hardware.gpu_model == gpu["model"]
    assert detail.hardware.gpu_count == gpu["count"]
    assert detail.hardware.ram_gb == document["system_info"]["ram_gb"]
    assert detail.gpu_model == gpu["model"]


def test_nested_metrics_are_flattened_with_dotted_names(
    session: Session, samples_dir: Path
) -> None:
    repo = on(ResultsRepository, session)
    latency = repo.save(sample(samples_dir, "sample_agent_latency.json")).run.id
    quality = repo.save(sample(samples_dir, "sample_accuracy.json")).run.id

    latency_metrics = metric_values(session, latency)
    assert latency_metrics[("latency", "ttft_ms.p50")] == 79.6
    assert latency_metrics[("latency", "total_latency_ms.std_dev")] == 301.6
    assert len(latency_metrics) == 14
    quality_metrics = metric_values(session, quality)
    assert quality_metrics[("mmlu_pro", "per_category_accuracy.law")] == 0.39
    # booleans become 1.0/0.0; strings stay only in the document
    assert quality_metrics[("long_context", "truncated_prompts")] == 0.0
    assert ("ifeval", "eval_method") not in quality_metrics


def test_hardware_fingerprint_and_environment_are_stored(
    session: Session, samples_dir: Path
) -> None:
    repo = on(ResultsRepository, session)
    run_id = repo.save(sample(samples_dir, "sample_agent_latency.json")).run.id
    hardware = repo.get(run_id).hardware
    assert hardware is not None
    assert hardware.fingerprint == "agent-wsl-9d41e07c2b6a53f8"
    assert hardware.environment_type == "wsl2"
    assert hardware.cpu_model == "AMD Ryzen 9 7950X 16-Core Processor"
    assert hardware.cpu_cores == 16


def test_gpu_may_be_null(session: Session) -> None:
    repo = on(ResultsRepository, session)
    document = minimal(system_info={"gpu": None, "cpu": "Some CPU", "ram_gb": 62.7})
    detail = repo.get(repo.save(document).run.id)
    assert detail.hardware is not None
    assert detail.hardware.gpu_model is None
    assert detail.hardware.cpu_model == "Some CPU"
    assert detail.hardware.ram_gb == 63  # the column rounds; the document keeps 62.7
    assert repo.get_document(detail.id)["system_info"]["ram_gb"] == 62.7


def test_run_ids_are_full_uuids(session: Session, samples_dir: Path) -> None:
    run_id = on(ResultsRepository, session).save(sample(samples_dir, SAMPLES[0])).run.id
    assert len(run_id) == 36
    assert run_id.count("-") == 4


def test_saving_again_returns_the_stored_run(session: Session, samples_dir: Path) -> None:
    repo = on(ResultsRepository, session)
    document = sample(samples_dir, "sample_decode_speed.json")
    first = repo.save(document)
    counts = table_counts(session)

    # same content, different key order and given as text
    again = repo.save(json.dumps(dict(reversed(list(document.items())))))

    assert not again.created
    assert again.run == first.run
    assert table_counts(session) == counts


def test_saving_again_from_another_process_is_idempotent(engine: Engine, samples_dir: Path) -> None:
    """Separate engines and committed transactions stand in for separate processes."""
    document = sample(samples_dir, "sample_accuracy.json")
    with Database(engine=engine) as db, db.unit_of_work(immediate=True) as uow:
        first = uow.results.save(document)
    with Database(engine.url) as other, other.unit_of_work(immediate=True) as uow:
        second = uow.results.save(document)
        assert uow.results.count() == 1
    assert first.created
    assert not second.created
    assert second.run.id == first.run.id


def test_concurrent_saves_of_one_document_make_one_run(engine: Engine, samples_dir: Path) -> None:
    document = sample(samples_dir, "sample_accuracy.json")
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            with transaction(engine, immediate=True) as uow:
                results.append(uow.results.save(document).created)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == [False, False, False, True]
    with transaction(engine) as uow:
        assert uow.results.count() == 1


def test_losing_the_primary_key_race_returns_the_stored_run(
    session: Session, samples_dir: Path
) -> None:
    """The insert path itself handles a run that appeared after the existence check."""
    repo = on(ResultsRepository, session)
    document = sample(samples_dir, "sample_decode_speed.json")
    stored = repo.save(document).run
    counts = table_counts(session)

    # As if another process committed between our check and our insert:
    checks: list[str] = []
    real_find = repo._find_content

    def stale_check(fingerprint: str) -> Any:
        checks.append(fingerprint)
        return None if len(checks) == 1 else real_find(fingerprint)

    repo._find_content = stale_check  # type: ignore[method-assign]
    again = repo.save(document)

    assert not again.created
    assert again.run == stored
    assert len(checks) == 2
    assert table_counts(session) == counts


def test_saving_appends_a_run_saved_event(session: Session, samples_dir: Path) -> None:
    repo = on(ResultsRepository, session)
    run_id = repo.save(sample(samples_dir, SAMPLES[0])).run.id
    repo.save(sample(samples_dir, SAMPLES[0]))
    events = session.execute(
        select(Event.event_type, Event.source_id).where(Event.source_id == run_id)
    ).all()
    assert [tuple(e) for e in events] == [("run.saved", run_id)]


def test_nan_and_infinities_round_trip_in_metrics_and_document(session: Session) -> None:
    document = minimal(
        total_time_seconds=math.nan,
        results=[
            {
                "test_name": "t",
                "metrics": {
                    "nan": math.nan,
                    "inf": math.inf,
                    "ninf": -math.inf,
                    "nested": {"p50": math.nan, "p99": 1.5},
                },
            }
        ],
    )
    repo = on(ResultsRepository, session)
    run_id = repo.save(document).run.id

    stored = repo.get_document(run_id)
    assert same(stored, document)
    metrics = repo.get(run_id).benchmarks[0].metrics
    assert math.isnan(metrics["nan"])  # type: ignore[arg-type]
    assert metrics["inf"] == math.inf
    assert metrics["ninf"] == -math.inf
    assert math.isnan(metrics["nested.p50"])  # type: ignore[arg-type]
    assert metrics["nested.p99"] == 1.5
    summary = repo.get_summary(run_id)
    assert summary is not None
    assert summary.total_time_seconds is not None
    assert math.isnan(summary.total_time_seconds)


def test_floats_come_back_as_floats(session: Session) -> None:
    """JSONB keeps numbers as numeric: 1e16 must not come back as an int."""
    document = minimal(big=1e16, bigger=1.5e300, negative_zero=-0.0, an_int=10**16, small=5e-324)
    repo = on(ResultsRepository, session)
    stored = repo.get_document(repo.save(document).run.id)
    assert same(stored, document)
    assert isinstance(stored["big"], float)
    assert isinstance(stored["an_int"], int)


def test_unicode_survives(session: Session) -> None:
    document = minimal(model="模型-ü-🚀", notes={"ключ": "значение", "emoji": "🔥\u2028"})
    repo = on(ResultsRepository, session)
    assert same(repo.get_document(repo.save(document).run.id), document)


def test_look_alike_marker_objects_survive(session: Session) -> None:
    document = minimal(a={"$float": "NaN"}, b={"$escaped": {"$float": "1"}}, c={"$float": 1})
    repo = on(ResultsRepository, session)
    assert same(repo.get_document(repo.save(document).run.id), document)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("{not json", "<document>"),
        ("[1, 2]", "<document>"),
        ({"engine": "e", "timestamp": "2026-01-01T00:00:00"}, "model"),
        ({"model": "m", "timestamp": "2026-01-01T00:00:00"}, "engine"),
        ({"model": "m", "engine": "e"}, "timestamp"),
        (minimal(timestamp="yesterday"), "timestamp"),
        (minimal(passed="yes"), "passed"),
        (minimal(total_benchmarks="5"), "total_benchmarks"),
        (minimal(results=[{"test_name": "t", "metrics": []}]), "results.0.metrics"),
        (minimal(system_info={"gpu": {"count": "two"}}), "system_info.gpu.count"),
        (minimal(model="a\x00b"), "model"),
    ],
)
def test_bad_documents_are_rejected_and_nothing_is_written(
    session: Session, document: Any, field: str
) -> None:
    repo = on(ResultsRepository, session)
    before = table_counts(session)
    with pytest.raises(ValidationError) as caught:
        repo.save(document)
    assert field in caught.value.fields
    assert table_counts(session) == before


def test_nul_in_a_nested_key_is_rejected_on_both_dialects(session: Session) -> None:
    document = minimal(results=[{"test_name": "t", "metrics": {"a\x00": 1}}])
    with pytest.raises(ValidationError) as caught:
        on(ResultsRepository, session).save(document)
    assert caught.value.fields == ["results.0.metrics.'a\\x00'"]
    assert table_counts(session) == (0, 0, 0, 0)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=documents())
def test_generated_documents_round_trip(session: Session, document: dict[str, Any]) -> None:
    repo = on(ResultsRepository, session)
    with session.begin_nested() as savepoint:
        saved = repo.save(document)
        assert saved.run.id == run_id_for(document)
        stored = repo.get_document(saved.run.id)
        assert same(stored, document)
        # what a reader gets back identifies the same run
        assert run_id_for(stored) == saved.run.id
        detail = repo.get(saved.run.id)
        expected = load_document(document).metrics
        assert len(detail.benchmarks) == len(expected)
        for benchmark, flat in zip(detail.benchmarks, expected, strict=True):
            assert list(benchmark.metrics) == [f.name for f in flat]
            # metric_value keeps values, not the sign of zero (SQLite's REAL
            # folds -0.0 into 0); the document keeps it
            assert all(same_value(benchmark.metrics[f.name], f.value) for f in flat)
        savepoint.rollback()


def add_failing_metric_trigger(engine: Engine) -> None:
    """Make the database refuse one metric name, after the run row went in."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF NEW.metric_name = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON metrics "
                "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON metrics "
                "WHEN NEW.metric_name = 'boom' BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
            )


def test_a_save_the_database_refuses_midway_leaves_nothing(engine: Engine) -> None:
    add_failing_metric_trigger(engine)
    bad = minimal(results=[{"test_name": "t", "metrics": {"ok": 1, "boom": 2}}])
    good = minimal(model="other", results=[{"test_name": "t", "metrics": {"ok": 1}}])
    with transaction(engine) as uow:
        repo = uow.results
        with pytest.raises(StorageError, match="boom refused"):
            repo.save(bad)
        # the caller may carry on in the same transaction: no partial run is left
        repo.save(good)
    with transaction(engine) as uow:
        assert table_counts(uow.session) == (1, 1, 1, 0)
        assert uow.results.find_summary(run_id_for(bad)) is None


def test_driver_errors_leave_as_storage_errors(empty_url: str) -> None:
    """A database without the schema, opened past the readiness check: the
    repository still raises only its own errors."""
    with Database(empty_url, require_current=False) as db:
        calls: tuple[Callable[[Any], object], ...] = (
            lambda uow: uow.results.list(),
            lambda uow: uow.results.count(),
            lambda uow: uow.results.save(minimal()),
        )
        for call in calls:
            with pytest.raises(StorageError), db.unit_of_work() as uow:
                call(uow)


def test_the_repository_is_given_the_events_repository_its_writes_use(session: Session) -> None:
    """No repository builds another: on a session it needs that session's events
    repository (a unit of work wires its own); a reader passes a connection, and a
    write there is refused before any SQL."""
    with pytest.raises(TypeError, match="events repository"):
        ResultsRepository(session)
    with pytest.raises(TypeError, match="events"):
        AgentsRepository(session)  # type: ignore[call-arg]
    run_id = on(ResultsRepository, session).save(minimal()).run.id
    reader = ResultsRepository(session.connection())
    assert reader.get_summary(run_id).id == run_id
    with pytest.raises(StorageError, match="cannot write"):
        reader.save(minimal(model="other"))
    assert session.scalar(select(func.count()).select_from(Run)) == 1
    with pytest.raises(TypeError, match="reads only"):
        ResultsRepository(session.connection(), EventsRepository(session))
