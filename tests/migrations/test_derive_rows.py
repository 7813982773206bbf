"""Re-derivation derives exactly what a fresh save derives.

``karr_db.derive`` checks stored documents with the save path's own checker
(``load_document``); in the database, the rows re-derived for a run on either
dialect are the rows its save wrote (flattened metrics in order, NaN and the
infinities included, and the hardware row), whatever form its text is stored in.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from bench.generator import documents as generator_documents
from karr_db.derive import derive_rows
from karr_db.repositories.results import ResultsRepository
from tests.support.equality import same
from tests.support.repositories import on
from tests.support.strategies import documents, floats, metric_values

#: Keys that look like the layer's JSON markers, or are otherwise unusual.
ODD_KEYS = ["$float", "$escaped", "", " ", "ü", "a b", "\\u0024", "\t", "名前", "$"]
odd_keys = st.sampled_from(ODD_KEYS)


@st.composite
def odd_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with marker-like keys and values, non-finite numbers and
    nesting added to its metrics (and to the document)."""
    document = draw(documents())
    extra: dict[str, Any] = draw(st.dictionaries(odd_keys, metric_values, max_size=3))
    extra["nested"] = {
        draw(odd_keys): draw(floats),
        "deeper": {"p50": draw(floats), "flag": draw(st.booleans()), "n": draw(st.integers())},
    }
    marker = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e+16", "x"]))
    extra["marker_like"] = {"$float": marker}
    results = document.setdefault("results", [])
    results.append({"test_name": draw(odd_keys), "metrics": extra})
    document[draw(odd_keys)] = {"$float": marker}
    return document


def _tuples_as_lists(value: Any) -> Any:
    """Rows as lists, which :func:`same` compares NaN-aware (it compares tuples with ``==``)."""
    if isinstance(value, dict):
        return {k: _tuples_as_lists(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_tuples_as_lists(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    return same(_tuples_as_lists(a), _tuples_as_lists(b))


# --- in the database, both dialects ------------------------------------------------


def _derived_rows(session: Session, run_id: str) -> dict[str, Any]:
    """The run's benchmark, metric and hardware rows, without ids and insertion times."""
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    benchmarks = connection.exec_driver_sql(
        "SELECT id, test_name, test_version, run_number, passed, timestamp FROM benchmarks "
        f"WHERE run_id = {mark} ORDER BY id",
        (run_id,),
    ).all()
    metrics = [
        [
            tuple(m)
            for m in connection.exec_driver_sql(
                f"SELECT metric_name, metric_value FROM metrics WHERE benchmark_id = {mark} "
                "ORDER BY id",
                (b[0],),
            ).all()
        ]
        for b in benchmarks
    ]
    hardware = connection.exec_driver_sql(
        "SELECT gpu_model, gpu_vram_gb, gpu_count, cpu_model, cpu_cores, ram_gb, "
        f"environment_type, fingerprint FROM hardware WHERE run_id = {mark}",
        (run_id,),
    ).all()
    return {
        "benchmarks": [tuple(b[1:]) for b in benchmarks],
        "metrics": metrics,
        "hardware": [tuple(h) for h in hardware],
    }


def _forget_derived(session: Session, run_id: str, legacy_text: str | None) -> None:
    """Leave the run as the earlier system might have: no derived rows (and, on
    SQLite, its own ``json.dumps`` text with bare NaN/Infinity tokens)."""
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    connection.exec_driver_sql(
        "DELETE FROM metrics WHERE benchmark_id IN "
        f"(SELECT id FROM benchmarks WHERE run_id = {mark})",
        (run_id,),
    )
    for table in ("benchmarks", "hardware", "run_fingerprints"):
        connection.exec_driver_sql(f"DELETE FROM {table} WHERE run_id = {mark}", (run_id,))
    if legacy_text is not None and connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"UPDATE runs SET raw_json = {mark} WHERE id = {mark}", (legacy_text, run_id)
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=st.one_of(documents(), odd_documents()), legacy=st.booleans())
def test_rows_rederived_in_the_database_are_the_rows_a_save_wrote(
    session: Session, document: dict[str, Any], legacy: bool
) -> None:
    repo = on(ResultsRepository, session)
    with session.begin_nested() as savepoint:
        run_id = repo.save(document).run.id
        saved = _derived_rows(session, run_id)
        # The earlier system's text, where it reads as the document: the layer reads
        # an object such as {"$float": "NaN"} in stored text as its marker.
        text = json.dumps(document)
        _forget_derived(session, run_id, text if legacy and "$" not in text else None)
        report = derive_rows(session.connection())
        assert report.refused == 0
        assert report.runs == 1
        rederived = _derived_rows(session, run_id)
        if session.connection().dialect.name == "postgresql":
            # JSONB keeps keys in its own order, so a document read back lists
            # its metrics in that order: the same rows, inserted in another order.
            for rows in (saved, rederived):
                rows["metrics"] = [sorted(m, key=lambda row: row[0]) for m in rows["metrics"]]
        assert _same(rederived, saved)
        savepoint.rollback()


def test_several_batches_derive_what_the_saves_wrote(session: Session) -> None:
    """Several batches, one holding a document a save refuses: the same rows as
    the saves wrote, the refusal reported."""
    repo = on(ResultsRepository, session)
    generated = list(generator_documents(7, seed=3))
    generated[2]["results"][0]["metrics"]["odd"] = {"$float": "NaN", "x": float("inf")}
    generated[4]["results"][0]["metrics"]["nan"] = float("nan")
    run_ids = [repo.save(document).run.id for document in generated]
    saved = {run_id: _derived_rows(session, run_id) for run_id in run_ids}
    for run_id in run_ids:
        _forget_derived(session, run_id, None)
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    refused = run_ids[5]
    connection.exec_driver_sql(
        f"UPDATE runs SET raw_json = {mark} WHERE id = {mark}", ('{"engine": "e"}', refused)
    )
    report = derive_rows(connection, batch_size=2)
    assert (report.runs, report.refused) == (7, 1)
    assert report.refused_examples[0].startswith(f"{refused}: ")
    for run_id in run_ids:
        rederived = _derived_rows(session, run_id)
        if run_id == refused:
            assert rederived == {"benchmarks": [], "metrics": [], "hardware": []}
            continue
        if connection.dialect.name == "postgresql":
            for rows in (saved[run_id], rederived):
                rows["metrics"] = [sorted(m, key=lambda row: row[0]) for m in rows["metrics"]]
        assert _same(rederived, saved[run_id])


def test_batches_in_benchmark_order_add_only_the_missing_metrics(session: Session) -> None:
    """Batches follow the order benchmark rows were written, not run ids: runs that kept
    their top-level metrics (as the earlier system stored them) and runs that kept
    nothing, spread over several batches, end with exactly the rows the saves wrote."""
    repo = on(ResultsRepository, session)
    run_ids = [repo.save(document).run.id for document in generator_documents(6, seed=5)]
    saved = {run_id: _derived_rows(session, run_id) for run_id in run_ids}
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    for index, run_id in enumerate(run_ids):
        if index % 2:
            _forget_derived(session, run_id, None)
            continue
        connection.exec_driver_sql(
            f"DELETE FROM metrics WHERE metric_name LIKE {mark} AND benchmark_id IN "
            f"(SELECT id FROM benchmarks WHERE run_id = {mark})",
            ("%.%", run_id),
        )
    report = derive_rows(connection, batch_size=2)
    assert (report.runs, report.refused) == (6, 0)
    assert derive_rows(connection, batch_size=4).metrics_added == 0
    for run_id in run_ids:
        rederived = _derived_rows(session, run_id)
        for rows in (saved[run_id], rederived):
            rows["metrics"] = [sorted(m, key=lambda row: row[0]) for m in rows["metrics"]]
        assert _same(rederived, saved[run_id])
