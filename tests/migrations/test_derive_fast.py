"""Re-derivation's quick path derives exactly what a fresh save derives (issue 10, item 9).

``karr_db.derive`` checks stored documents with cheaper code than the save
path (``load_document``); these properties hold it to the save path: for the
same text it accepts the same documents, refuses the same documents, and gives
the same fingerprint, benchmark results, flattened metrics (order, NaN and the
infinities included) and hardware row; in the database, the rows re-derived for
a run on either dialect are the rows its save wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from bench.generator import documents as generator_documents
from karr_db.derive import _derived, _document, _quick, derive_rows
from karr_db.documents import FlatMetric, ValidatedDocument
from karr_db.errors import KarrError
from karr_db.models.types import dumps_json
from karr_db.repositories.results import ResultsRepository
from karr_db.repositories.results.rows import hardware_row
from tests.support.equality import same
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


def _collide(document: dict[str, Any]) -> None:
    document["results"] = [{"test_name": "t", "metrics": {"a": {"b": 1}, "a.b": 2}}]


def _long_name(document: dict[str, Any]) -> None:
    document["results"] = [{"test_name": "t", "metrics": {"€" * 300: {"x" * 200: 1.0}}}]


def _huge_int(document: dict[str, Any]) -> None:
    document["results"] = [{"test_name": "t", "metrics": {"big": 10**400}}]


def _nul_key(document: dict[str, Any]) -> None:
    document["results"] = [{"test_name": "t", "metrics": {"a\x00": 1}}]


def _deep(document: dict[str, Any]) -> None:
    value: Any = 1
    for _ in range(70):
        value = [value]
    document["extra"] = value


def _no_model(document: dict[str, Any]) -> None:
    document.pop("model", None)


def _bad_type(document: dict[str, Any]) -> None:
    document["total_benchmarks"] = "5"


def _bad_timestamp(document: dict[str, Any]) -> None:
    document["results"] = [{"test_name": "t", "timestamp": "yesterday", "metrics": {}}]


def _metrics_list(document: dict[str, Any]) -> None:
    document["results"] = [{"test_name": "t", "metrics": [1, 2]}]


def _empty(document: dict[str, Any]) -> None:
    document.clear()


MUTATIONS: list[Callable[[dict[str, Any]], None]] = [
    _collide,
    _long_name,
    _huge_int,
    _nul_key,
    _deep,
    _no_model,
    _bad_type,
    _bad_timestamp,
    _metrics_list,
    _empty,
]


def _texts(document: dict[str, Any]) -> list[str]:
    """The forms a stored document has: the earlier system's ``json.dumps`` (bare
    NaN/Infinity tokens), karr_db's marker form, and ASCII-escaped indented text."""
    return [
        json.dumps(document),
        dumps_json(document),
        json.dumps(json.loads(dumps_json(document)), indent=1, ensure_ascii=True),
    ]


def _expected(text: str) -> tuple[str, list[Any], tuple[Any, ...] | None] | str:
    """What the save path derives from ``text``, or ``"refused"``."""
    try:
        doc: ValidatedDocument = _document(text)
    except (KarrError, ValueError):
        return "refused"
    results = [
        (r.test_name, r.test_version, r.run_number, r.passed, r.timestamp, _pairs(flat))
        for r, flat in zip(doc.model.results, doc.metrics, strict=True)
    ]
    return doc.run_id, results, hardware_row(doc)


def _pairs(flat: list[FlatMetric]) -> list[tuple[str, float]]:
    return [(f.name, f.value) for f in flat]


def _actual(text: str) -> tuple[str, list[Any], tuple[Any, ...] | None] | str:
    try:
        derived = _derived(text)
    except (KarrError, ValueError):
        return "refused"
    return derived.fingerprint, list(derived.results), derived.hardware


def _agree(text: str) -> None:
    expected, actual = _expected(text), _actual(text)
    assert _same(actual, expected), (text, actual, expected)


def _tuples_as_lists(value: Any) -> Any:
    """Rows as lists, which :func:`same` compares NaN-aware (it compares tuples with ``==``)."""
    if isinstance(value, dict):
        return {k: _tuples_as_lists(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_tuples_as_lists(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    return same(_tuples_as_lists(a), _tuples_as_lists(b))


@settings(max_examples=300, deadline=None)
@given(document=st.one_of(documents(), odd_documents()))
def test_quick_path_derives_what_the_save_path_derives(document: dict[str, Any]) -> None:
    for text in _texts(document):
        expected = _expected(text)
        assert expected != "refused"
        assert _same(_actual(text), expected)
        # the quick path is the one taken (its string check sends text showing
        # a backslash and "u0000" to the save path; nothing else)
        if "\\u0000" not in text:
            assert _quick(text) is not None


@settings(max_examples=300, deadline=None)
@given(
    document=st.one_of(documents(), odd_documents()),
    mutation=st.sampled_from(MUTATIONS),
)
def test_quick_path_refuses_what_the_save_path_refuses(
    document: dict[str, Any], mutation: Callable[[dict[str, Any]], None]
) -> None:
    mutation(document)
    for text in _texts(document):
        assert _expected(text) == "refused"
        assert _quick(text) is None
        assert _actual(text) == "refused"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not json",
        "[1, 2]",
        '{"model": "m", "engine": "e", "timestamp": "2026-01-01T00:00:00"',
        '{"model": "m", "engine": "e", "timestamp": "2026-01-01T00:00:00", "model": 5}',
        '{"model": "m", "engine": "e", "timestamp": "2026-01-01T00:00:00", '
        '"results": [{"test_name": "t", "metrics": {"x": NaN, "y": -Infinity, "z": 1e400}}]}',
        '{"model": "m", "engine": "e", "timestamp": "2026-01-01T00:00:00", '
        '"results": [{"test_name": "t", "metrics": {"x": {"$float": "NaN"}, '
        '"y": {"$escaped": {"$float": "NaN"}}, "\\u0024float": {"a": 1}}}]}',
        '{"model": "m", "engine": "e", "timestamp": "2026-01-01T00:00:00", '
        '"results": [{"test_name": "t", "metrics": {"s": "\\ud800"}}]}',
    ],
)
def test_edge_texts_agree(text: str) -> None:
    _agree(text)


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
    repo = ResultsRepository(session)
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
    repo = ResultsRepository(session)
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
    repo = ResultsRepository(session)
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
