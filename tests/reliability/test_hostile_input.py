"""Whatever an agent posts: stored and read back equal, or refused with the layer's own
error; never a raw driver exception, never a partial write, never a change to other rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from karr_db.errors import InvalidQueryError, NotFoundError, ValidationError
from karr_db.models import Benchmark, Event, Hardware, Metric, Run
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from karr_db.repositories.results import GROUP_FIELDS, ORDER_FIELDS, ResultsRepository, RunFilter
from karr_db.uow import transaction
from tests.reliability.reliability_helpers import SOAK_SECONDS, check_store, load_samples, variant
from tests.support.equality import same
from tests.support.repositories import on
from tests.support.strategies import KNOWN_TOP_LEVEL, documents, json_values

pytestmark = pytest.mark.reliability

EXAMPLES = 80 if SOAK_SECONDS == 0 else max(80, int(SOAK_SECONDS * 2))

SQLISH = [
    "'; DROP TABLE runs; --",
    '" OR 1=1 --',
    "x' OR 'a'='a",
    "1; DELETE FROM events",
    "runs.id) UNION SELECT token FROM agents --",
    "timestamp DESC; UPDATE runs SET model='pwned'",
    "%' AND pg_sleep(5) IS NULL --",
    "\\'; SELECT sqlite_version(); --",
    "avg; DROP TABLE metrics",
    "model, (SELECT token FROM agents)",
]

unicode_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=40,
)
nasty_text = st.one_of(
    unicode_text,
    st.sampled_from(SQLISH),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\u202e\u0301\U0001f600", "\ufeff"]),
    st.integers(10_000, 100_000).map(lambda n: "x" * n),
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = {"level": level, "next": value} if level % 2 else [value]
    return value


@st.composite
def hostile_documents(draw: st.DrawFn) -> Any:
    """Valid documents bent out of shape: wrong types, odd floats, depth, length, size."""
    kind = draw(
        st.sampled_from(
            ["valid", "wrong_type", "nasty_strings", "deep", "long", "huge_metrics", "not_object"]
        )
    )
    document: dict[str, Any] = draw(documents())
    if kind == "wrong_type":
        field = draw(st.sampled_from(sorted(KNOWN_TOP_LEVEL)))
        document[field] = draw(json_values)
    elif kind == "nasty_strings":
        for field in ("model", "engine", "suite_name", "kitt_version"):
            document[field] = draw(nasty_text)
        document["results"] = [
            {"test_name": draw(nasty_text), "metrics": {draw(nasty_text): draw(st.floats())}}
        ]
    elif kind == "deep":
        document["nested"] = _nested(draw(st.sampled_from([10, 64, 65, 500, 5000])))
    elif kind == "long":
        document["notes"] = "ü" * draw(st.integers(100_000, 300_000))
    elif kind == "huge_metrics":
        count = draw(st.sampled_from([500, 2_000]))
        special = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
        document["results"] = [
            {
                "test_name": "huge",
                "metrics": {
                    f"m{i}": special[i % len(special)] if i % 7 == 0 else i * 0.5
                    for i in range(count)
                },
            }
        ]
    elif kind == "not_object":
        return draw(st.one_of(json_values, st.binary(max_size=64), st.just(b"\xff\xfe{")))
    return document


def _counts(engine: Engine) -> dict[str, int]:
    with transaction(engine) as uow:
        return {
            model.__tablename__: int(
                uow.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
            )
            for model in (Run, Benchmark, Metric, Hardware, Event)
        }


def _others(engine: Engine) -> dict[str, Any]:
    with transaction(engine) as uow:
        results = uow.results
        return {run_id: doc for run_id, doc in results.iter_documents()}


def test_hostile_documents_are_stored_equal_or_refused_cleanly(
    engine: Engine, samples_dir: Path, figures: Any
) -> None:
    samples = load_samples(samples_dir)
    with transaction(engine) as uow:
        for n in range(3):
            uow.results.save(variant(samples, f"bystander-{n}"))
    bystanders = _others(engine)
    outcomes = {"stored": 0, "already_present": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        database=None,
    )
    @given(document=hostile_documents())
    def check(document: Any) -> None:
        before = _counts(engine)
        refusal: ValidationError | None = None
        try:
            with transaction(engine) as uow:
                saved = uow.results.save(document)
        except ValidationError as exc:  # the only exception allowed out
            refusal = exc
        if refusal is not None:
            assert refusal.fields, "a refusal names its fields"
            assert _counts(engine) == before, "a refused document left rows behind"
            outcomes["refused"] += 1
            return
        with transaction(engine) as uow:
            stored = uow.results.get_document(saved.run.id)
        if saved.created:
            outcomes["stored"] += 1
            assert _counts(engine)["runs"] == before["runs"] + 1
        else:
            outcomes["already_present"] += 1
            assert _counts(engine) == before
        original = document if isinstance(document, dict) else None
        if original is not None:
            assert same(stored, original), "a stored document reads back different"

    check()
    assert _others(engine).items() >= bystanders.items(), "a bystander run changed"
    for run_id, doc in bystanders.items():
        assert same(_others(engine)[run_id], doc)
    store = check_store(engine)
    figures["dialect"] = engine.dialect.name
    figures["examples"] = EXAMPLES
    figures.values.update(outcomes)
    figures["rows_checked"] = store.rows


def _fingerprint(engine: Engine) -> dict[str, Any]:
    tables = (
        "runs",
        "benchmarks",
        "metrics",
        "hardware",
        "agents",
        "web_campaigns",
        "quick_tests",
        "events",
    )
    with engine.connect() as connection:
        return {
            table: sorted(map(repr, connection.exec_driver_sql(f"SELECT * FROM {table}").all()))
            for table in tables
        }


ALLOWED = (InvalidQueryError, ValidationError, NotFoundError)


def _attempt(engine: Engine, call: Any) -> str:
    """Run one read in its own transaction: 'ok' or the name of the layer's error."""
    try:
        with transaction(engine) as uow:
            call(uow.session)
    except ALLOWED as exc:
        return type(exc).__name__
    return "ok"


def test_sql_in_every_filter_and_order_field_is_data(
    engine: Engine, samples_dir: Path, figures: Any
) -> None:
    samples = load_samples(samples_dir)
    with transaction(engine) as uow:
        for n in range(3):
            uow.results.save(variant(samples, f"target-{n}"))
        agent = uow.agents.register("victim", tags=["gpu"]).agent
        uow.campaigns.create("c", agent_id=agent.id, total_runs=1)
        uow.quick_tests.dispatch(agent.id, model_path="m", engine_name="e", benchmark_name="b")
    before = _fingerprint(engine)
    filter_fields = list(RunFilter.model_fields)
    calls: list[tuple[str, Any]] = []
    for text in SQLISH:
        for field in filter_fields:
            calls.append(
                (
                    f"list[{field}]",
                    lambda s, f=field, t=text: on(ResultsRepository, s).list(filters={f: t}),
                )
            )
            calls.append(
                (
                    f"count[{field}]",
                    lambda s, f=field, t=text: on(ResultsRepository, s).count({f: t}),
                )
            )
        calls += [
            ("filter key", lambda s, t=text: on(ResultsRepository, s).list(filters={t: "x"})),
            ("order_by", lambda s, t=text: on(ResultsRepository, s).list(order_by=t)),
            ("cursor", lambda s, t=text: on(ResultsRepository, s).list(cursor=t)),
            ("get", lambda s, t=text: on(ResultsRepository, s).get(t)),
            ("delete", lambda s, t=text: on(ResultsRepository, s).delete(t)),
            ("compare", lambda s, t=text: on(ResultsRepository, s).compare([t, t + "2"])),
            ("leaderboard metric", lambda s, t=text: on(ResultsRepository, s).leaderboard(t)),
            (
                "leaderboard group",
                lambda s, t=text: on(ResultsRepository, s).leaderboard("avg_tps", group_by=[t]),
            ),
            (
                "leaderboard order",
                lambda s, t=text: on(ResultsRepository, s).leaderboard("avg_tps", order_by=t),
            ),
            (
                "leaderboard test",
                lambda s, t=text: on(ResultsRepository, s).leaderboard(
                    "avg_tps", per_test=True, test_name=t
                ),
            ),
            (
                "history",
                lambda s, t=text: on(ResultsRepository, s).metric_history(
                    t, model=t, engine=t, test_name=t
                ),
            ),
            (
                "events",
                lambda s, t=text: EventsRepository(s).list(0, event_types=[t], source_id=t),
            ),
            ("agents", lambda s, t=text: on(AgentsRepository, s).list(status=t, tag=t)),
            ("agent by name", lambda s, t=text: on(AgentsRepository, s).get_by_name(t)),
            ("campaigns", lambda s, t=text: on(CampaignsRepository, s).list(status=t, agent_id=t)),
            ("campaigns cursor", lambda s, t=text: on(CampaignsRepository, s).list(cursor=t)),
            (
                "quick tests",
                lambda s, t=text: on(QuickTestsRepository, s).list(status=t, agent_id=t),
            ),
            ("claim", lambda s, t=text: on(QuickTestsRepository, s).claim_next(t)),
        ]
    outcomes: dict[str, int] = {}
    for _name, call in calls:
        result = _attempt(engine, call)
        outcomes[result] = outcomes.get(result, 0) + 1
    # The only writes among the calls (delete, claim) found nothing to act on.
    after = _fingerprint(engine)
    assert after == before, "a SQL-looking argument changed the database"
    with transaction(engine) as uow:
        assert uow.results.count() == 3
    figures["dialect"] = engine.dialect.name
    figures["calls"] = len(calls)
    figures["fields"] = len(filter_fields) + len(ORDER_FIELDS) + len(GROUP_FIELDS)
    figures.values.update(outcomes)
