"""Bad input gets the layer's own errors, on both dialects, from every public repository method.

First the reported repros one by one, then a property-based test that feeds
hostile values to every parameter of every public method (found by
introspection, so a method added without strategies fails
``test_every_public_method_has_strategies``).

Longer than ~400 lines on purpose: it is a catalogue, one strategy per public
parameter, and reads best as one list.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from karr_db.errors import (
    AlreadyExistsError,
    CounterLimitError,
    InvalidQueryError,
    InvalidTokenError,
    InvalidTransitionError,
    KarrError,
    NotFoundError,
    StillReferencedError,
    ValidationError,
)
from karr_db.limits import MAX_INDEXED_BYTES
from karr_db.repositories.agent_engines import AgentEnginesRepository
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository, RunOutcome
from karr_db.repositories.engine_profiles import EngineProfilesRepository
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.logs import CampaignLogsRepository, QuickTestLogsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from karr_db.repositories.results import ResultsRepository, RunFilter
from karr_db.repositories.settings import AgentSettingsRepository, WebSettingsRepository
from karr_db.uow import transaction
from tests.support.repositories import on
from tests.support.strategies import documents, json_values

REPOSITORIES = (
    ResultsRepository,
    AgentsRepository,
    CampaignsRepository,
    QuickTestsRepository,
    EventsRepository,
    WebSettingsRepository,
    AgentSettingsRepository,
    QuickTestLogsRepository,
    CampaignLogsRepository,
    EngineProfilesRepository,
    AgentEnginesRepository,
)

#: What bad input may raise: every layer error except StorageError (input the
#: database refuses is a validation gap, not a storage problem).
LAYER_ERRORS = (
    ValidationError,
    InvalidQueryError,
    NotFoundError,
    AlreadyExistsError,
    InvalidTransitionError,
    InvalidTokenError,
    StillReferencedError,
    CounterLimitError,
)

EAST = timezone(timedelta(hours=14))
WEST = timezone(timedelta(hours=-14))
YEAR_1_EAST = datetime(1, 1, 1, 0, 0, tzinfo=EAST)
YEAR_9999_WEST = datetime(9999, 12, 31, 23, 0, tzinfo=WEST)
#: Incompressible text far beyond what a PostgreSQL btree entry holds.
INCOMPRESSIBLE = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def _document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": "m", "engine": "e", "timestamp": "2026-01-01T00:00:00"}
    doc.update(changes)
    return doc


@pytest.fixture
def world(engine: Engine) -> dict[str, str]:
    """One row of each kind, so that keys sometimes hit something."""
    with transaction(engine) as uow:
        run = uow.results.save(_document(results=[{"test_name": "t"}])).run.id
        agent = uow.agents.register("agent-0", tags=["gpu"])
        campaign = uow.campaigns.create("c", agent_id=agent.agent.id, total_runs=2)
        test = uow.quick_tests.dispatch(
            agent.agent.id, model_path="m", engine_name="e", benchmark_name="b"
        )
        profile = uow.engine_profiles.create("p", "vllm")
        uow.web_settings.set("theme", "dark")
    return {
        "run": run,
        "agent": agent.agent.id,
        "token": agent.token.get_secret_value(),
        "campaign": campaign.id,
        "quick_test": test.id,
        "engine_profile": profile.id,
    }


def _outcome(engine: Engine, call: Callable[[Any], Any]) -> str:
    """Run ``call(session)`` in a transaction: 'ok' or the layer error's name; anything
    else propagates and fails the test."""
    try:
        with transaction(engine) as uow:
            result = call(uow.session)
            if inspect.isgenerator(result):
                list(result)
    except LAYER_ERRORS as exc:
        refused: KarrError = exc
    else:
        return "ok"
    if isinstance(refused, ValidationError):
        assert refused.fields, "a ValidationError names its fields"
    return type(refused).__name__


# --- the reported repros, one by one -----------------------------------------------


REPROS: dict[str, tuple[Callable[[Any, dict[str, str]], Any], type[KarrError]]] = {
    "runs cursor at year 1 +14:00": (
        lambda s, w: on(ResultsRepository, s).list(
            cursor=_cursor({"o": "timestamp", "d": True, "v": YEAR_1_EAST.isoformat(), "id": "x"})
        ),
        InvalidQueryError,
    ),
    "campaigns cursor at year 1 +14:00": (
        lambda s, w: on(CampaignsRepository, s).list(
            cursor=_cursor([YEAR_1_EAST.isoformat(), "x"])
        ),
        InvalidQueryError,
    ),
    "quick tests cursor at 9999 -14:00": (
        lambda s, w: on(QuickTestsRepository, s).list(
            cursor=_cursor([YEAR_9999_WEST.isoformat(), "x"])
        ),
        InvalidQueryError,
    ),
    "since at year 1 +14:00": (
        lambda s, w: on(ResultsRepository, s).list({"since": YEAR_1_EAST}),
        InvalidQueryError,
    ),
    "until at 9999 -14:00": (
        lambda s, w: on(ResultsRepository, s).count({"until": YEAR_9999_WEST.isoformat()}),
        InvalidQueryError,
    ),
    "list(2**63)": (lambda s, w: EventsRepository(s).list(2**63), ValidationError),
    "offset=2**63": (lambda s, w: on(ResultsRepository, s).list(offset=2**63), ValidationError),
    "total_runs above int64": (
        lambda s, w: on(CampaignsRepository, s).create("c", total_runs=2**63),
        ValidationError,
    ),
    "total_runs above int32": (
        lambda s, w: on(CampaignsRepository, s).set_total_runs(w["campaign"], 2**31),
        ValidationError,
    ),
    "total_runs=1.5": (
        lambda s, w: on(CampaignsRepository, s).create("c", total_runs=1.5),  # type: ignore[arg-type]
        ValidationError,
    ),
    "gpu_count above int64": (
        lambda s, w: on(AgentsRepository, s).register("a", gpu_count=2**63),
        ValidationError,
    ),
    "ram_gb above int32": (
        lambda s, w: on(AgentsRepository, s).heartbeat(w["agent"], ram_gb=2**40),
        ValidationError,
    ),
    "cursor of 100,000 [": (
        lambda s, w: on(ResultsRepository, s).list(cursor=_b64(b"[" * 100_000)),
        InvalidQueryError,
    ),
    "campaign cursor of 100,000 [": (
        lambda s, w: on(CampaignsRepository, s).list(cursor=_b64(b"[" * 100_000)),
        InvalidQueryError,
    ),
    "authenticate with a lone surrogate": (
        lambda s, w: on(AgentsRepository, s).authenticate(w["agent"], "\ud800"),
        ValidationError,
    ),
    "run id with a lone surrogate": (
        lambda s, w: on(ResultsRepository, s).get("\ud800"),
        ValidationError,
    ),
    "agent id with NUL": (lambda s, w: on(AgentsRepository, s).get("a\x00"), ValidationError),
    "list since year 1 +14:00": (
        lambda s, w: EventsRepository(s).list(0, since=YEAR_1_EAST),
        ValidationError,
    ),
    "parsed document with a 5,000-digit int": (
        lambda s, w: on(ResultsRepository, s).save(_document(x=10**5000)),
        ValidationError,
    ),
    "bad run outcome": (
        lambda s, w: on(CampaignsRepository, s).record_run(w["campaign"], "done"),  # type: ignore[arg-type]
        ValidationError,
    ),
    "naive now": (
        lambda s, w: on(AgentsRepository, s).list(
            stale_after=timedelta(1), now=datetime(2026, 1, 1)
        ),
        ValidationError,
    ),
    "a numbered page past any offset": (
        lambda s, w: on(QuickTestsRepository, s).list(page=2**63 - 1),
        ValidationError,
    ),
    "log lines after an id beyond INTEGER": (
        lambda s, w: on(QuickTestLogsRepository, s).list(w["quick_test"], after_id=2**31),
        ValidationError,
    ),
    "agent setting that is not one": (
        lambda s, w: on(AgentSettingsRepository, s).update(w["agent"], {"nope": "x"}),
        ValidationError,
    ),
    "metric_history cursor forged": (
        lambda s, w: on(ResultsRepository, s).metric_history(
            "m", cursor=_cursor([None, "x", -1, 0])
        ),
        InvalidQueryError,
    ),
}


@pytest.mark.parametrize("repro", sorted(REPROS))
def test_each_repro_gets_a_layer_error(engine: Engine, world: dict[str, str], repro: str) -> None:
    call, expected = REPROS[repro]
    with pytest.raises(expected) as refused, transaction(engine) as uow:
        call(uow.session, world)
    if isinstance(refused.value, ValidationError):
        assert refused.value.fields


def test_huge_stale_thresholds_answer_instead_of_overflowing(
    engine: Engine, world: dict[str, str]
) -> None:
    with transaction(engine) as uow:
        agents = uow.agents
        assert agents.list(stale_after=timedelta.max).items == []  # nothing is that old
        assert len(agents.list(stale_after=timedelta.min).items) == 1  # everything is "older"
        assert agents.mark_stale_offline(timedelta.max) == []
        tests = uow.quick_tests
        assert tests.find_stale(timedelta.max) == []
        assert tests.find_stale(timedelta(0), now=datetime.min.replace(tzinfo=UTC)) == []


@pytest.mark.parametrize(
    "field",
    ["model", "engine", "suite_name", "test name", "metric name", "agent name", "event type"],
)
def test_indexed_text_has_one_bound_on_both_dialects(engine: Engine, field: str) -> None:
    """PostgreSQL's btree refused ~2,800 incompressible characters that SQLite stored."""

    def save(text: str) -> Callable[[Any], Any]:
        if field == "metric name":
            return lambda s: on(ResultsRepository, s).save(
                _document(results=[{"test_name": "t", "metrics": {text: 1.0}}])
            )
        if field == "test name":
            return lambda s: on(ResultsRepository, s).save(
                _document(results=[{"test_name": text, "metrics": {"m": 1.0}}])
            )
        if field == "agent name":
            return lambda s: on(AgentsRepository, s).register(text)
        if field == "event type":
            return lambda s: EventsRepository(s).append(text)
        return lambda s: on(ResultsRepository, s).save(_document(**{field: text}))

    at_bound = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(MAX_INDEXED_BYTES // 3))
    assert len(at_bound.encode()) <= MAX_INDEXED_BYTES
    assert _outcome(engine, save(at_bound)) == "ok"
    with (
        pytest.raises(ValidationError, match="indexed field") as refused,
        transaction(engine) as uow,
    ):
        save(INCOMPRESSIBLE)(uow.session)
    assert refused.value.fields


def test_model_and_engine_at_the_bound_fit_the_composite_index(engine: Engine) -> None:
    """idx_runs_model_engine_timestamp holds both: two values at the bound must fit together."""
    model, engine_name = ("\U0001f600" * (MAX_INDEXED_BYTES // 4), "\U0001f601" * 250)
    save = _document(model=model, engine=engine_name)
    assert _outcome(engine, lambda s: on(ResultsRepository, s).save(save)) == "ok"


@pytest.mark.parametrize("timestamp", ["", "   "])
def test_an_empty_timestamp_is_called_empty(timestamp: str) -> None:
    from karr_db.documents import load_document

    with pytest.raises(ValidationError, match="timestamp is empty") as refused:
        load_document(_document(timestamp=timestamp))
    assert refused.value.fields == ["timestamp"]
    assert "1000-9999" not in str(refused.value)


def test_metric_history_pages_like_every_other_list(engine: Engine) -> None:
    metrics = {f"m{i}": float(i) for i in range(3)}
    with transaction(engine) as uow:
        results = uow.results
        for n in range(5):
            results.save(
                _document(
                    timestamp=f"2026-01-0{n + 1}T00:00:00",
                    results=[
                        {"test_name": "t", "run_number": k, "metrics": metrics} for k in (1, 2)
                    ],
                )
            )
        results.save(
            _document(
                timestamp="2026-02-01T00:00:00",
                results=[{"test_name": "t", "metrics": {"m1": 7.0}}],
                extra="no time ordering surprise",
            )
        )
    with transaction(engine) as uow:
        results = uow.results
        whole = results.metric_history("m1", limit=1000)
        assert whole.next_cursor is None
        assert len(whole.items) == 11
        seen: list[Any] = []
        cursor = None
        while True:
            page = results.metric_history("m1", limit=3, cursor=cursor)
            assert len(page.items) <= 3
            seen.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == whole.items
        with pytest.raises(InvalidQueryError):
            results.metric_history("m1", limit=1001)


# --- every public method, by introspection ------------------------------------------

SQLISH = ["'; DROP TABLE runs; --", "x' OR 'a'='a", "%", "_"]
hostile_text = st.one_of(
    st.text(max_size=20),  # lone surrogates and NUL included
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", *SQLISH, INCOMPRESSIBLE]),
)
#: Values of the wrong type, as a JSON body could carry them.
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=4),
)
edge_ints = st.sampled_from(
    [0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]
)
hostile_int = st.one_of(st.integers(-5, 1500), edge_ints, st.integers(), wrong_types)
hostile_moment = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones() | st.just(EAST) | st.just(WEST)),
    st.sampled_from([YEAR_1_EAST, YEAR_9999_WEST, datetime.min, datetime.max]),
    wrong_types,
)
hostile_duration = st.one_of(
    st.timedeltas(), st.sampled_from([timedelta.max, timedelta.min, timedelta(0)]), wrong_types
)
hostile_bool = st.one_of(st.booleans(), wrong_types)
maybe_text = st.one_of(st.none(), hostile_text, wrong_types)
text_lists = st.one_of(st.lists(hostile_text, max_size=3), hostile_text, wrong_types)
cursors = st.one_of(
    st.none(),
    hostile_text,
    st.just(_b64(b"[" * 100_000)),
    st.builds(_cursor, st.lists(st.one_of(st.none(), hostile_text, edge_ints), max_size=4)),
    st.builds(
        _cursor,
        st.fixed_dictionaries(
            {
                "o": st.sampled_from(["timestamp", "model", "total_time_seconds"]),
                "d": st.booleans(),
                "v": st.one_of(
                    st.none(),
                    hostile_text,
                    st.sampled_from([YEAR_1_EAST.isoformat(), YEAR_9999_WEST.isoformat(), "nan"]),
                ),
                "id": st.one_of(hostile_text, st.integers()),
            }
        ),
    ),
    st.builds(
        lambda t: _cursor([t, "x"]), st.sampled_from([YEAR_1_EAST.isoformat(), "2026-01-01"])
    ),
)
filter_values = st.one_of(
    hostile_text, hostile_moment, st.booleans(), st.sampled_from([YEAR_9999_WEST.isoformat()])
)
filters = st.one_of(
    st.none(),
    st.dictionaries(
        st.one_of(st.sampled_from(sorted(RunFilter.model_fields)), hostile_text),
        filter_values,
        max_size=3,
    ),
    wrong_types,
)
hostile_documents = st.one_of(
    documents(),
    st.builds(lambda d, v: {**d, "model": v}, documents(), hostile_text),
    st.builds(lambda d: {**d, "x": 10**5000}, documents()),
    st.builds(lambda d: {**d, "timestamp": " "}, documents()),
    st.builds(lambda d: {**d, "timestamp": YEAR_1_EAST.isoformat()}, documents()),
    hostile_text,
    st.binary(max_size=20),
    wrong_types,
    json_values,
)
json_data = st.one_of(
    st.none(),
    json_values,
    st.sampled_from([{"x": 10**5000}, {"s": "\ud800"}, {1: 2}, {"set": {1}}, [[[]]]]),
    st.just(json.loads("[" * 200 + "]" * 200)),
)
events = st.one_of(
    st.lists(st.tuples(hostile_text, maybe_text, json_data), max_size=3),
    st.lists(wrong_types, max_size=2),
    wrong_types,
)


def _world_key(kind: str) -> Any:
    """A key that exists (from the seeded world), or a hostile one."""
    return st.one_of(st.just(("world", kind)), hostile_text, wrong_types)


# Strategies by method, then by parameter; ("world", kind) stands for that row's key.
S = dict[str, st.SearchStrategy[Any]]
STRATEGIES: dict[str, S] = {
    "ResultsRepository.save": {"document": hostile_documents},
    "ResultsRepository.save_many": {
        "documents": st.one_of(st.lists(hostile_documents, max_size=2), wrong_types)
    },
    "ResultsRepository.delete": {"run_id": _world_key("run"), "detach": hostile_bool},
    "ResultsRepository.get_summary": {"run_id": _world_key("run")},
    "ResultsRepository.get": {"run_id": _world_key("run")},
    "ResultsRepository.find": {"run_id": _world_key("run")},
    "ResultsRepository.find_summary": {"run_id": _world_key("run")},
    "ResultsRepository.get_document": {"run_id": _world_key("run")},
    "ResultsRepository.iter_documents": {"filters": filters, "batch_size": hostile_int},
    "ResultsRepository.count": {"filters": filters},
    "ResultsRepository.stats": {"filters": filters},
    "ResultsRepository.list": {
        "filters": filters,
        "order_by": st.one_of(st.sampled_from(["timestamp", "model"]), hostile_text),
        "descending": hostile_bool,
        "limit": hostile_int,
        "cursor": cursors,
        "offset": st.one_of(st.none(), hostile_int),
    },
    "ResultsRepository.leaderboard": {
        "metric": hostile_text,
        "group_by": st.one_of(st.just(["model"]), text_lists),
        "per_test": hostile_bool,
        "test_name": maybe_text,
        "filters": filters,
        "order_by": st.one_of(st.just("avg"), hostile_text),
        "descending": hostile_bool,
        "limit": st.one_of(st.none(), hostile_int),
        "median": hostile_bool,
    },
    "ResultsRepository.iter_metric_values": {
        "filters": filters,
        "run_ids": st.one_of(
            st.none(),
            st.lists(st.one_of(st.just(("world", "run")), hostile_text), max_size=3),
            wrong_types,
        ),
        "batch_size": hostile_int,
    },
    "ResultsRepository.metric_names": {"test_name": maybe_text, "per_test": hostile_bool},
    "ResultsRepository.resolve_id": {"prefix": _world_key("run")},
    "ResultsRepository.match_models": {"text": st.one_of(hostile_text, wrong_types)},
    "ResultsRepository.short_ids": {
        "run_ids": st.one_of(
            st.lists(st.one_of(st.just(("world", "run")), hostile_text), max_size=3), wrong_types
        ),
        "min_length": hostile_int,
    },
    "ResultsRepository.metric_history": {
        "metric": hostile_text,
        "model": maybe_text,
        "engine": maybe_text,
        "test_name": maybe_text,
        "filters": filters,
        "limit": hostile_int,
        "cursor": cursors,
    },
    "ResultsRepository.compare": {
        "run_ids": st.one_of(
            st.lists(st.one_of(st.just(("world", "run")), hostile_text), max_size=3), wrong_types
        )
    },
    "AgentsRepository.get": {"key": _world_key("agent")},
    "AgentsRepository.find": {"key": _world_key("agent")},
    "AgentsRepository.get_by_name": {"name": st.one_of(st.just("agent-0"), hostile_text)},
    "AgentsRepository.find_by_name": {"name": st.one_of(st.just("agent-0"), hostile_text)},
    "AgentsRepository.list": {
        "status": maybe_text,
        "tag": maybe_text,
        "stale_after": st.one_of(st.none(), hostile_duration),
        "now": st.one_of(st.none(), hostile_moment),
        "limit": hostile_int,
        "cursor": cursors,
    },
    "AgentsRepository.register": {
        "name": hostile_text,
        "hostname": maybe_text,
        "port": st.one_of(st.none(), hostile_int),
        "tags": text_lists,
        "notes": maybe_text,
        "gpu_info": maybe_text,
        "gpu_count": st.one_of(st.none(), hostile_int),
        "cpu_info": maybe_text,
        "ram_gb": st.one_of(st.none(), hostile_int),
        "environment_type": maybe_text,
        "fingerprint": maybe_text,
        "kitt_version": maybe_text,
        "cpu_arch": maybe_text,
        "hardware_details": st.one_of(st.none(), json_data, wrong_types),
        "token": st.one_of(
            st.none(), st.just("a-Strong-token-0123456789-xyzXYZ-!~"), hostile_text, wrong_types
        ),
        "replace": hostile_bool,
    },
    "AgentsRepository.rotate_token": {"agent_id": _world_key("agent")},
    "AgentsRepository.verify_token": {
        "agent_id": _world_key("agent"),
        "token": st.one_of(_world_key("token"), hostile_text),
    },
    "AgentsRepository.authenticate": {
        "agent_id": _world_key("agent"),
        "token": st.one_of(_world_key("token"), hostile_text),
    },
    "AgentsRepository.hash_legacy_tokens": {},
    "AgentsRepository.heartbeat": {
        "agent_id": _world_key("agent"),
        "status": st.one_of(st.sampled_from(["online", "busy"]), hostile_text),
        "gpu_info": maybe_text,
        "gpu_count": st.one_of(st.none(), hostile_int),
        "cpu_info": maybe_text,
        "ram_gb": st.one_of(st.none(), hostile_int),
        "environment_type": maybe_text,
        "fingerprint": maybe_text,
        "kitt_version": maybe_text,
        "cpu_arch": maybe_text,
        "hardware_details": st.one_of(st.none(), json_data, wrong_types),
    },
    "AgentsRepository.set_status": {
        "agent_id": _world_key("agent"),
        "status": st.one_of(st.just("busy"), hostile_text),
    },
    "AgentsRepository.mark_stale_offline": {
        "threshold": hostile_duration,
        "now": st.one_of(st.none(), hostile_moment),
    },
    "AgentsRepository.update": {
        "agent_id": _world_key("agent"),
        "hostname": maybe_text,
        "port": st.one_of(st.none(), hostile_int),
        "notes": maybe_text,
        "tags": st.one_of(st.none(), text_lists),
    },
    "AgentsRepository.retire": {"agent_id": _world_key("agent")},
    "EventsRepository.lock_log": {},
    "EventsRepository.append": {
        "event_type": hostile_text,
        "source_id": maybe_text,
        "data": json_data,
    },
    "EventsRepository.append_many": {"events": events},
    "EventsRepository.get": {"event_id": hostile_int},
    "EventsRepository.find": {"event_id": hostile_int},
    "EventsRepository.list": {
        "after_id": hostile_int,
        "event_types": st.one_of(st.none(), text_lists),
        "source_id": maybe_text,
        "since": st.one_of(st.none(), hostile_moment),
        "until": st.one_of(st.none(), hostile_moment),
        "limit": hostile_int,
        "cursor": cursors,
    },
    "EventsRepository.last_id": {},
}

_WORK_COMMON: S = {
    "limit": hostile_int,
    "cursor": cursors,
}
for _name, _kind in (("CampaignsRepository", "campaign"), ("QuickTestsRepository", "quick_test")):
    STRATEGIES[f"{_name}.get"] = {"key": _world_key(_kind)}
    STRATEGIES[f"{_name}.find"] = {"key": _world_key(_kind)}
    STRATEGIES[f"{_name}.cancel"] = {"key": _world_key(_kind)}
    STRATEGIES[f"{_name}.fail"] = {"key": _world_key(_kind), "error": hostile_text}
    STRATEGIES[f"{_name}.list"] = {
        "status": maybe_text,
        "agent_id": st.one_of(st.none(), _world_key("agent")),
        "page": st.one_of(st.none(), hostile_int),
        **_WORK_COMMON,
    }
    STRATEGIES[f"{_name}.count"] = {
        "status": maybe_text,
        "agent_id": st.one_of(st.none(), _world_key("agent")),
    }
for _verb in ("start", "restart", "complete"):
    STRATEGIES[f"CampaignsRepository.{_verb}"] = {"campaign_id": _world_key("campaign")}
STRATEGIES["CampaignsRepository.delete"] = {"campaign_id": _world_key("campaign")}
STRATEGIES["CampaignsRepository.launch"] = {"campaign_id": _world_key("campaign")}
STRATEGIES["CampaignsRepository.update_config"] = {
    "campaign_id": _world_key("campaign"),
    "config": st.one_of(st.none(), json_data, wrong_types),
}
STRATEGIES["CampaignsRepository.create"] = {
    "name": hostile_text,
    "description": maybe_text,
    "config": st.one_of(st.none(), json_data, wrong_types),
    "agent_id": st.one_of(st.none(), _world_key("agent")),
    "total_runs": hostile_int,
}
STRATEGIES["CampaignsRepository.set_total_runs"] = {
    "campaign_id": _world_key("campaign"),
    "total_runs": hostile_int,
}
STRATEGIES["CampaignsRepository.record_run"] = {
    "campaign_id": _world_key("campaign"),
    "outcome": st.one_of(st.sampled_from(list(RunOutcome)), hostile_text, wrong_types),
}
for _verb in ("start", "requeue"):
    STRATEGIES[f"QuickTestsRepository.{_verb}"] = {"test_id": _world_key("quick_test")}
STRATEGIES["QuickTestsRepository.complete"] = {
    "test_id": _world_key("quick_test"),
    "result_id": _world_key("run"),
}
STRATEGIES["QuickTestsRepository.find_stale"] = {
    "older_than": hostile_duration,
    "now": st.one_of(st.none(), hostile_moment),
}
STRATEGIES["QuickTestsRepository.dispatch"] = {
    "agent_id": _world_key("agent"),
    "model_path": hostile_text,
    "engine_name": hostile_text,
    "benchmark_name": hostile_text,
    "suite_name": maybe_text,
    "engine_mode": st.one_of(st.sampled_from(["docker", "native"]), hostile_text),
    "profile_id": st.one_of(st.none(), _world_key("engine_profile")),
}
STRATEGIES["QuickTestsRepository.claim_next"] = {"agent_id": _world_key("agent")}
STRATEGIES["QuickTestsRepository.delete"] = {"test_id": _world_key("quick_test")}

setting_keys = st.one_of(st.just("theme"), hostile_text)
STRATEGIES["WebSettingsRepository.find"] = {"key": setting_keys}
STRATEGIES["WebSettingsRepository.get"] = {"key": setting_keys}
STRATEGIES["WebSettingsRepository.delete"] = {"key": setting_keys}
STRATEGIES["WebSettingsRepository.all"] = {}
STRATEGIES["WebSettingsRepository.list"] = {"limit": hostile_int, "cursor": cursors}
STRATEGIES["WebSettingsRepository.set"] = {"key": setting_keys, "value": hostile_text}
agent_setting_values = st.one_of(
    st.dictionaries(
        st.one_of(
            st.sampled_from(["auto_cleanup", "heartbeat_interval_s", "kitt_image"]), hostile_text
        ),
        st.one_of(
            st.sampled_from(["true", "false", "30", "0", "-1", "1e9"]), hostile_text, wrong_types
        ),
        max_size=3,
    ),
    wrong_types,
)
for _verb in ("find", "get", "ensure_defaults"):
    STRATEGIES[f"AgentSettingsRepository.{_verb}"] = {"agent_id": _world_key("agent")}
STRATEGIES["AgentSettingsRepository.update"] = {
    "agent_id": _world_key("agent"),
    "values": agent_setting_values,
}
for _name, _kind in (
    ("QuickTestLogsRepository", "quick_test"),
    ("CampaignLogsRepository", "campaign"),
):
    STRATEGIES[f"{_name}.find"] = {"line_id": hostile_int}
    STRATEGIES[f"{_name}.get"] = {"line_id": hostile_int}
    STRATEGIES[f"{_name}.count"] = {"owner_id": _world_key(_kind)}
    STRATEGIES[f"{_name}.append"] = {
        "owner_id": _world_key(_kind),
        "lines": st.one_of(st.lists(hostile_text, max_size=3), text_lists, wrong_types),
    }
    STRATEGIES[f"{_name}.list"] = {
        "owner_id": _world_key(_kind),
        "after_id": hostile_int,
        **_WORK_COMMON,
    }
configs = st.one_of(st.none(), json_data, wrong_types)
profile_fields: S = {
    "mode": st.one_of(st.sampled_from(["docker", "native"]), hostile_text),
    "description": maybe_text,
    "build_config": configs,
    "runtime_config": configs,
}
for _verb in ("find", "get"):
    STRATEGIES[f"EngineProfilesRepository.{_verb}"] = {"key": _world_key("engine_profile")}
STRATEGIES["EngineProfilesRepository.delete"] = {"profile_id": _world_key("engine_profile")}
for _verb in ("find_by_name", "get_by_name"):
    STRATEGIES[f"EngineProfilesRepository.{_verb}"] = {
        "name": st.one_of(st.just("p"), hostile_text)
    }
STRATEGIES["EngineProfilesRepository.list"] = {"engine": maybe_text, **_WORK_COMMON}
STRATEGIES["EngineProfilesRepository.create"] = {
    "name": st.one_of(st.just("p"), hostile_text),
    "engine": hostile_text,
    **profile_fields,
}
STRATEGIES["EngineProfilesRepository.update"] = {
    "profile_id": _world_key("engine_profile"),
    "name": st.one_of(st.none(), st.just("p"), hostile_text),
    "engine": maybe_text,
    **profile_fields,
    "mode": st.one_of(st.none(), st.sampled_from(["docker", "native"]), hostile_text),
}
STRATEGIES["AgentEnginesRepository.find"] = {"engine_id": hostile_int}
STRATEGIES["AgentEnginesRepository.get"] = {"engine_id": hostile_int}
STRATEGIES["AgentEnginesRepository.for_agent"] = {"agent_id": _world_key("agent")}
STRATEGIES["AgentEnginesRepository.list"] = {"engine": maybe_text, **_WORK_COMMON}
STRATEGIES["AgentEnginesRepository.find_for"] = {
    "agent_id": _world_key("agent"),
    "engine": hostile_text,
    "mode": hostile_text,
}
STRATEGIES["AgentEnginesRepository.report"] = {
    "agent_id": _world_key("agent"),
    "engine": hostile_text,
    "mode": st.one_of(st.sampled_from(["docker", "native"]), hostile_text),
    "version": hostile_text,
    "binary_path": hostile_text,
    "status": st.one_of(st.just("installed"), hostile_text),
    "checked_at": st.one_of(st.none(), hostile_moment),
}


def public_methods() -> Iterator[tuple[str, type, str, list[str]]]:
    """(qualified name, class, method, parameter names) of every public repository method."""
    for cls in REPOSITORIES:
        for name, function in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            parameters = list(inspect.signature(function).parameters)[1:]
            yield f"{cls.__name__}.{name}", cls, name, parameters


def test_every_public_method_has_strategies() -> None:
    """A new method, or a new parameter, must come with hostile strategies here."""
    found = {qualified: params for qualified, _, _, params in public_methods()}
    assert sorted(found) == sorted(STRATEGIES), "methods without strategies (or gone)"
    for qualified, params in found.items():
        assert sorted(params) == sorted(STRATEGIES[qualified]), qualified


def test_the_repositories_are_the_ones_in_the_package() -> None:
    import importlib
    import pkgutil

    import karr_db.repositories as package

    classes = set()
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        if any(part.startswith("_") for part in module.name.split(".")):
            continue  # shared bases and helpers, no repository of their own
        loaded = importlib.import_module(module.name)
        classes |= {
            obj
            for name, obj in vars(loaded).items()
            if inspect.isclass(obj)
            and name.endswith("Repository")
            and obj.__module__ == loaded.__name__
        }
    assert classes == set(REPOSITORIES)


def _resolve(value: Any, world: dict[str, str]) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "world":
        return world[value[1]]
    if isinstance(value, list):
        return [_resolve(v, world) for v in value]
    return value


EXAMPLES = int(os.environ.get("KARR_VOCABULARY_EXAMPLES", "20"))


@pytest.mark.parametrize("qualified", sorted(STRATEGIES))
def test_hostile_arguments_get_only_layer_errors(
    engine: Engine, world: dict[str, str], qualified: str
) -> None:
    class_name, method = qualified.split(".")
    cls = next(c for c in REPOSITORIES if c.__name__ == class_name)
    parameters = list(inspect.signature(getattr(cls, method)).parameters.values())[1:]
    strategies = {
        p.name: (
            st.one_of(st.just(inspect.Parameter.empty), STRATEGIES[qualified][p.name])
            if p.default is not inspect.Parameter.empty
            else STRATEGIES[qualified][p.name]
        )
        for p in parameters
    }

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(arguments=st.fixed_dictionaries(strategies))
    def check(arguments: dict[str, Any]) -> None:
        kwargs = {
            name: _resolve(value, world)
            for name, value in arguments.items()
            if value is not inspect.Parameter.empty
        }
        _outcome(engine, lambda s: getattr(on(cls, s), method)(**kwargs))

    check()


def test_non_finite_filter_values_are_refused_cleanly(engine: Engine) -> None:
    assert _outcome(engine, lambda s: on(ResultsRepository, s).count({"since": math.nan})) == (
        "InvalidQueryError"
    )


def test_the_bounded_columns_are_every_indexed_text_column_callers_write() -> None:
    """A new index over caller-written text must join INDEXED_TEXT (and its bound)."""
    from sqlalchemy import Text, UniqueConstraint

    from karr_db.limits import INDEXED_TEXT
    from karr_db.models import Base
    from karr_db.models.types import UTCDateTime

    layer_written = {"runs.id", "agents.id", "web_campaigns.id", "quick_tests.id"}
    # Ids the layer makes, and references to ids that exist (checked before a write).
    layer_written |= {"engine_profiles.id", "quick_test_logs.test_id", "campaign_logs.campaign_id"}
    layer_written |= {"agent_settings.agent_id", "agent_engines.agent_id"}
    layer_written |= {"benchmarks.run_id", "hardware.run_id"}  # copies of runs.id
    # Derived by the layer: a copy of metrics.metric_name (bounded there) and a group
    # key that is an MD5 on PostgreSQL.
    layer_written |= {"leaderboard_aggregates.metric_name", "leaderboard_aggregates.group_key"}
    # Content ids (36 characters) and copies of runs.id.
    layer_written |= {"run_fingerprints.fingerprint", "run_fingerprints.run_id"}
    # KITT's later tables: ids the layer makes, and copies of agent, test and campaign ids.
    layer_written |= {"engine_profiles.id", "agent_settings.agent_id", "agent_engines.agent_id"}
    layer_written |= {"quick_test_logs.test_id", "campaign_logs.campaign_id"}
    indexed: set[str] = set()
    for table in Base.metadata.tables.values():
        columns = [c for index in table.indexes for c in index.columns]
        columns += [c for c in table.columns if c.primary_key or c.unique]
        columns += [
            c
            for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint)
            for c in constraint.columns
        ]
        indexed |= {
            f"{table.name}.{c.name}"
            for c in columns
            if isinstance(c.type, Text) and not isinstance(c.type, UTCDateTime)
        }
    assert indexed - layer_written == set(INDEXED_TEXT)
