"""The one repository contract, checked over every repository on both dialects:
``get`` raises NotFoundError naming the key, ``find`` returns None, ``list``
returns a Page that pages on with ``next_cursor``, and a limit above the one
public limit is a ValidationError naming ``limit``. The names the contract
replaced keep working for this release."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

import karr_db
from karr_db.errors import InvalidQueryError, NotFoundError, ValidationError
from karr_db.limits import PAGE_LIMIT
from karr_db.repositories._common import Page, decode_cursor, encode_cursor
from karr_db.repositories.agent_engines import AgentEnginesRepository
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository
from karr_db.repositories.engine_profiles import EngineProfilesRepository
from karr_db.repositories.events import EventsRepository, EventType
from karr_db.repositories.quick_tests import QuickTestsRepository
from karr_db.repositories.results import ResultsRepository
from tests.support.repositories import on


def _agents(session: Session) -> list[Any]:
    agents = on(AgentsRepository, session)
    return [agents.register(f"agent-{n}").agent.id for n in range(3)]


def _campaigns(session: Session) -> list[Any]:
    campaigns = on(CampaignsRepository, session)
    return [campaigns.create(f"campaign-{n}").id for n in range(3)]


def _quick_tests(session: Session) -> list[Any]:
    agent = on(AgentsRepository, session).register("runner").agent.id
    tests = on(QuickTestsRepository, session)
    return [
        tests.dispatch(agent, model_path=f"m{n}", engine_name="e", benchmark_name="b").id
        for n in range(3)
    ]


def _events(session: Session) -> list[Any]:
    events = EventsRepository(session)
    return [events.append(EventType.AGENT_UPDATED, source_id=f"s{n}") for n in range(3)]


def _results(session: Session) -> list[Any]:
    results = on(ResultsRepository, session)
    return [
        results.save(
            {"model": f"m{n}", "engine": "vllm", "timestamp": f"2026-01-0{n + 1}T00:00:00"}
        ).run.id
        for n in range(3)
    ]


def _engine_profiles(session: Session) -> list[Any]:
    profiles = on(EngineProfilesRepository, session)
    return [profiles.create(f"profile-{n}", "vllm").id for n in range(3)]


def _agent_engines(session: Session) -> list[Any]:
    agent = on(AgentsRepository, session).register("runner").agent.id
    engines = on(AgentEnginesRepository, session)
    return [engines.report(agent, engine).id for engine in ("llama_cpp", "ollama", "vllm")]


@dataclass(frozen=True)
class Case:
    repository: Callable[..., Any]
    make: Callable[[Session], list[Any]]
    missing: Any


CASES = {
    "agents": Case(AgentsRepository, _agents, "no-such-agent"),
    "campaigns": Case(CampaignsRepository, _campaigns, "no-such-campaign"),
    "quick_tests": Case(QuickTestsRepository, _quick_tests, "no-such-test"),
    "events": Case(EventsRepository, _events, 2_000_000_000),
    "results": Case(ResultsRepository, _results, "no-such-run"),
    "engine_profiles": Case(EngineProfilesRepository, _engine_profiles, "no-such-profile"),
    "agent_engines": Case(AgentEnginesRepository, _agent_engines, 2_000_000_000),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


def test_get_raises_not_found_naming_the_key(session: Session, case: Case) -> None:
    case.make(session)
    with pytest.raises(NotFoundError) as raised:
        on(case.repository, session).get(case.missing)
    assert raised.value.key == case.missing
    assert repr(case.missing) in str(raised.value)


def test_find_returns_none_or_what_get_returns(session: Session, case: Case) -> None:
    keys = case.make(session)
    repository = on(case.repository, session)
    assert repository.find(case.missing) is None
    assert repository.find(keys[0]) == repository.get(keys[0])


def test_list_returns_pages_that_follow_next_cursor(session: Session, case: Case) -> None:
    keys = case.make(session)
    repository = on(case.repository, session)
    whole = repository.list(limit=PAGE_LIMIT)
    assert isinstance(whole, Page)
    assert whole.next_cursor is None
    seen: list[Any] = []
    cursor = None
    while True:
        page = repository.list(limit=1, cursor=cursor)
        assert isinstance(page, Page)
        assert len(page.items) <= 1
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [item.id for item in whole.items]
    assert set(keys) <= set(seen)


def test_a_limit_beyond_the_public_one_names_limit(session: Session, case: Case) -> None:
    repository = on(case.repository, session)
    for limit in (0, PAGE_LIMIT + 1):
        with pytest.raises(ValidationError) as raised:
            repository.list(limit=limit)
        assert raised.value.fields == ["limit"]
        assert isinstance(raised.value, InvalidQueryError)  # what it raised before


def test_a_foreign_cursor_is_malformed_not_a_crash(session: Session, case: Case) -> None:
    repository = on(case.repository, session)
    for cursor in ("not a cursor", encode_cursor({"o": 1}), encode_cursor([1, 2, 3])):
        with pytest.raises(InvalidQueryError, match="malformed cursor"):
            repository.list(cursor=cursor)


def _forgeries(payload: Any) -> list[Any]:
    """``payload`` with one of its texts at a time ending in a lone surrogate."""
    if isinstance(payload, str):
        return [payload[:1] + "\ud800"]
    if not isinstance(payload, dict | list):
        return []
    items = list(payload.items()) if isinstance(payload, dict) else list(enumerate(payload))
    forged: list[Any] = []
    for key, value in items:
        for replacement in _forgeries(value):
            copy = dict(payload) if isinstance(payload, dict) else list(payload)
            copy[key] = replacement
            forged.append(copy)
    return forged


@pytest.mark.parametrize("name", ["agents", "campaigns", "quick_tests", "results"])
def test_a_cursor_forged_with_a_lone_surrogate_is_refused(session: Session, name: str) -> None:
    case = CASES[name]
    case.make(session)
    repository = on(case.repository, session)
    real = repository.list(limit=1).next_cursor
    assert real is not None
    forgeries = _forgeries(decode_cursor(real, lambda p: p))
    assert forgeries, "the cursor holds text"
    for payload in forgeries:
        # ensure_ascii writes the surrogate as an escape, which JSON allows and no
        # database text holds.
        raw = json.dumps(payload).encode()
        forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        with pytest.raises(InvalidQueryError):
            repository.list(limit=1, cursor=forged)


def test_the_codec_round_trips_and_refuses_forgeries() -> None:
    payload = ["2026-01-01T00:00:00+00:00", "ünï", 3, None]
    assert decode_cursor(encode_cursor(payload), lambda p: p) == payload
    with pytest.raises(InvalidQueryError, match="malformed cursor"):
        decode_cursor("%%%", lambda p: p)
    with pytest.raises(InvalidQueryError, match="malformed cursor"):
        decode_cursor(encode_cursor([1]), lambda p: p["key"])


# --- listing and finding, by the contract -----------------------------------------


def test_agents_list_is_a_page_by_name(session: Session) -> None:
    agents = on(AgentsRepository, session)
    assert agents.list().items == []
    keys = _agents(session)
    listed = agents.list()
    assert [a.id for a in listed.items] == keys  # by name: agent-0, agent-1, agent-2
    assert listed.next_cursor is None
    assert agents.get_by_name("agent-1").id == keys[1]
    assert agents.find_by_name("nobody") is None


def test_events_resume_from_an_id_or_a_cursor_alike(session: Session) -> None:
    _events(session)
    events = EventsRepository(session)
    first = events.list(0, limit=2)
    assert isinstance(first, Page)
    assert first.has_more
    assert first.next_cursor is not None
    rest = events.list(cursor=first.next_cursor)
    assert rest.items == events.list(first.items[-1].id).items
    assert not rest.has_more
    assert rest.next_cursor is None
    with pytest.raises(InvalidQueryError):
        events.list(first.items[-1].id, cursor=first.next_cursor)


def test_get_summary_and_find_summary_agree(session: Session) -> None:
    results = on(ResultsRepository, session)
    run_id = _results(session)[0]
    assert results.find_summary("no-such-run") is None
    assert results.get_summary(run_id) == results.find_summary(run_id)
    with pytest.raises(NotFoundError, match="no-such-run"):
        results.get_summary("no-such-run")
    assert len(results.list(limit=2).items) == 2


# --- the conventions, checked in the source ----------------------------------------

_PACKAGE = Path(karr_db.__file__).parent


def _sources(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((_PACKAGE / folder).rglob("*.py"))]


def test_dtos_skip_validation_only_in_the_row_builder() -> None:
    """Rows become DTOs without validation in ``_common.row_builder`` alone (which sets
    their fields directly); no repository calls ``model_construct``, and none but
    ``_common`` sets a DTO's attributes through ``object``."""
    offenders = [
        f"{path.relative_to(_PACKAGE)}:{node.lineno}"
        for path in _sources("repositories")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and (
            node.attr == "model_construct"
            or (
                path.name != "_common.py"
                and node.attr in {"__new__", "__setattr__"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "object"
            )
        )
    ]
    assert offenders == []


def test_event_types_are_spelled_only_by_their_enum() -> None:
    spelled = {str(t) for t in EventType}
    offenders = [
        f"{path.relative_to(_PACKAGE)}:{node.lineno}: {node.value!r}"
        for path in _sources("repositories", "cli")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in spelled
        if not (path.name == "events.py" and path.parent.name == "repositories")
    ]
    assert offenders == []
