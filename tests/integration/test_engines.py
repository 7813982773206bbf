"""Engine profiles and agents' engines (KITT's schema 11), on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from karr_db.errors import AlreadyExistsError, NotFoundError, ValidationError
from karr_db.limits import MAX_AGENT_ENGINES, MAX_CONFIG_BYTES, MAX_INDEXED_BYTES
from karr_db.models import AgentEngine
from karr_db.repositories.agent_engines import AgentEnginesRepository
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.engine_profiles import EngineProfilesRepository
from karr_db.repositories.events import EventsRepository
from tests.support.repositories import on


def events_of(session: Session, source_id: str) -> list[tuple[str | None, Any]]:
    page = EventsRepository(session).list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


# --- engine profiles -----------------------------------------------------------------

BUILD = {"cuda": "12.4", "flags": ["--fast"], "nested": {"n": 1, "x": None}}


def test_a_profile_is_created_read_updated_and_deleted(session: Session) -> None:
    profiles = on(EngineProfilesRepository, session)
    made = profiles.create(
        "vllm-fp8",
        "vllm",
        description="fp8 weights",
        build_config=BUILD,
        runtime_config={"gpu_memory_utilization": 0.9},
    )
    assert (made.name, made.engine, made.mode, made.description) == (
        "vllm-fp8",
        "vllm",
        "docker",
        "fp8 weights",
    )
    assert made.build_config == BUILD
    assert made.runtime_config == {"gpu_memory_utilization": 0.9}
    assert made.created_at == made.updated_at
    assert profiles.get(made.id) == made == profiles.get_by_name("vllm-fp8")

    updated = profiles.update(made.id, mode="native", runtime_config={})
    assert (updated.mode, updated.runtime_config, updated.build_config) == ("native", {}, BUILD)
    assert updated.updated_at is not None
    assert made.updated_at is not None
    assert updated.updated_at >= made.updated_at
    assert updated.created_at == made.created_at
    assert profiles.update(made.id, mode="native") == updated  # nothing changed

    profiles.delete(made.id)
    assert profiles.find(made.id) is None
    with pytest.raises(NotFoundError):
        profiles.delete(made.id)
    assert [kind for kind, _ in events_of(session, made.id)] == [
        "engine_profile.created",
        "engine_profile.updated",
        "engine_profile.deleted",
    ]
    assert events_of(session, made.id)[1][1] == {
        "fields": ["mode", "runtime_config"],
        "name": "vllm-fp8",
    }


def test_names_are_unique(session: Session) -> None:
    profiles = on(EngineProfilesRepository, session)
    first = profiles.create("default", "vllm")
    with pytest.raises(AlreadyExistsError, match="default"):
        profiles.create("default", "llama_cpp")
    second = profiles.create("other", "llama_cpp")
    with pytest.raises(AlreadyExistsError, match="default"):
        profiles.update(second.id, name="default")
    assert profiles.get(second.id).name == "other"
    assert profiles.update(first.id, name="renamed").name == "renamed"


def test_profiles_list_by_name_and_engine(session: Session) -> None:
    profiles = on(EngineProfilesRepository, session)
    for name, engine in (("c", "vllm"), ("a", "vllm"), ("b", "ollama"), ("d", "vllm")):
        profiles.create(name, engine)
    assert [p.name for p in profiles.list().items] == ["a", "b", "c", "d"]
    first = profiles.list(engine="vllm", limit=2)
    assert [p.name for p in first.items] == ["a", "c"]
    rest = profiles.list(engine="vllm", limit=2, cursor=first.next_cursor)
    assert ([p.name for p in rest.items], rest.next_cursor) == (["d"], None)
    assert profiles.list(engine="nothing").items == []


@pytest.mark.parametrize(
    ("call", "fields"),
    [
        (lambda p: p.create("", "vllm"), ["name"]),
        (lambda p: p.create("n", " "), ["engine"]),
        (lambda p: p.create("n", "vllm", mode="kubernetes"), ["mode"]),
        (lambda p: p.create("x" * (MAX_INDEXED_BYTES + 1), "vllm"), ["name"]),
        (lambda p: p.create("n", "vllm", build_config=[1]), ["build_config"]),
        (lambda p: p.create("n", "vllm", runtime_config={"s": "\ud800"}), ["runtime_config.s"]),
        (lambda p: p.create("n", "vllm", build_config={"x": 10**5000}), ["build_config.x"]),
        (
            lambda p: p.create("n", "vllm", build_config={"x": "y" * MAX_CONFIG_BYTES}),
            ["build_config"],
        ),
        (lambda p: p.create("n", "vllm", description="a\x00"), ["description"]),
    ],
)
def test_bad_profiles_are_refused_by_field(session: Session, call: Any, fields: list[str]) -> None:
    profiles = on(EngineProfilesRepository, session)
    with pytest.raises(ValidationError) as refused:
        call(profiles)
    assert refused.value.fields == fields
    assert profiles.list().items == []


def test_a_profile_kitt_wrote_reads_back(session: Session) -> None:
    session.execute(
        text(
            "INSERT INTO engine_profiles (id, name, engine, build_config, runtime_config)"
            " VALUES ('abc123', 'kitt', 'vllm', '{\"a\": 1}', '[]')"
        )
    )
    profile = on(EngineProfilesRepository, session).get("abc123")
    assert (profile.mode, profile.build_config, profile.runtime_config) == (
        "docker",
        {"a": 1},
        {},
    )
    assert profile.created_at is not None


# --- agents' engines -----------------------------------------------------------------


@pytest.fixture
def agent_id(session: Session) -> str:
    return on(AgentsRepository, session).register("gpu-box-1").agent.id


def test_a_report_upserts_by_agent_engine_and_mode(session: Session, agent_id: str) -> None:
    engines = on(AgentEnginesRepository, session)
    first = engines.report(agent_id, "vllm", version="0.6.0", status="installed")
    assert (first.engine, first.mode, first.version, first.status) == (
        "vllm",
        "docker",
        "0.6.0",
        "installed",
    )
    assert first.last_checked is not None
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    again = engines.report(agent_id, "vllm", version="0.7.0", status="installed", checked_at=when)
    assert (again.id, again.version, again.last_checked) == (first.id, "0.7.0", when)
    native = engines.report(
        agent_id, "vllm", mode="native", binary_path="/usr/bin/vllm", status="missing"
    )
    assert native.id != first.id
    assert [(e.engine, e.mode) for e in engines.for_agent(agent_id)] == [
        ("vllm", "docker"),
        ("vllm", "native"),
    ]
    assert engines.find_for(agent_id, "vllm", "native") == native
    assert engines.get(first.id) == engines.find_for(agent_id, "vllm")
    reports = [data for kind, data in events_of(session, agent_id) if "engine" in str(kind)]
    assert reports[:2] == [
        {"engine": "vllm", "mode": "docker", "from": None, "to": "installed", "version": "0.6.0"},
        {
            "engine": "vllm",
            "mode": "docker",
            "from": "installed",
            "to": "installed",
            "version": "0.7.0",
        },
    ]


def test_the_status_matrix_pages_across_agents(session: Session, agent_id: str) -> None:
    other = on(AgentsRepository, session).register("gpu-box-2").agent.id
    engines = on(AgentEnginesRepository, session)
    for agent in (agent_id, other):
        for engine in ("vllm", "llama_cpp", "ollama"):
            engines.report(agent, engine, status="installed")
    whole = engines.list()
    expected = sorted((a, e) for a in (agent_id, other) for e in ("vllm", "llama_cpp", "ollama"))
    assert [(e.agent_id, e.engine) for e in whole.items] == expected
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = engines.list(limit=4, cursor=cursor)
        seen += [(e.agent_id, e.engine) for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    assert {e.agent_id for e in engines.list(engine="ollama").items} == {agent_id, other}


def test_reports_are_checked(session: Session, agent_id: str) -> None:
    engines = on(AgentEnginesRepository, session)
    with pytest.raises(NotFoundError, match="no-such-agent"):
        engines.report("no-such-agent", "vllm")
    with pytest.raises(ValidationError) as refused:
        engines.report(agent_id, "", mode="podman", status=" ")
    assert refused.value.fields == ["engine", "mode", "status"]
    with pytest.raises(ValidationError) as refused:
        engines.report(agent_id, "vllm", checked_at=datetime(2026, 1, 1))
    assert refused.value.fields == ["checked_at"]
    assert engines.for_agent(agent_id) == []


def test_an_agent_has_a_bounded_number_of_engines(session: Session, agent_id: str) -> None:
    engines = on(AgentEnginesRepository, session)
    for n in range(MAX_AGENT_ENGINES):
        engines.report(agent_id, f"engine-{n:03}")
    engines.report(agent_id, "engine-000", status="installed")  # not new
    with pytest.raises(ValidationError) as refused:
        engines.report(agent_id, "one-too-many")
    assert refused.value.fields == ["engine"]
    assert len(engines.for_agent(agent_id)) == MAX_AGENT_ENGINES


def test_engines_go_with_their_agent(session: Session, agent_id: str) -> None:
    on(AgentEnginesRepository, session).report(agent_id, "vllm")
    on(AgentsRepository, session).retire(agent_id)
    left = session.scalar(
        select(func.count()).select_from(AgentEngine).where(AgentEngine.agent_id == agent_id)
    )
    assert left == 0
