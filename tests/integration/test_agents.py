"""Agents: registration, tokens, heartbeats, staleness, tags and retirement."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from karr_db.database import Database
from karr_db.errors import (
    AlreadyExistsError,
    InvalidTokenError,
    NotFoundError,
    StillReferencedError,
    ValidationError,
)
from karr_db.models import Agent
from karr_db.models.types import utcnow
from karr_db.repositories.agents import AgentsRepository, parse_tags
from karr_db.repositories.campaigns import CampaignsRepository
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from karr_db.tokens import hash_token
from tests.support.repositories import on


def stored_token(session: Session, agent_id: str) -> str | None:
    """The agent's stored digest (``token_hash``), after checking ``token`` holds nothing."""
    legacy, digest = session.execute(
        select(Agent.token, Agent.token_hash).where(Agent.id == agent_id)
    ).one()
    assert not legacy
    return digest


def stored_columns(session: Session, agent_id: str) -> tuple[str | None, ...]:
    """``(token, token_hash, token_prefix)`` as stored."""
    return tuple(
        session.execute(
            select(Agent.token, Agent.token_hash, Agent.token_prefix).where(Agent.id == agent_id)
        ).one()
    )


def events_of(session: Session, source_id: str) -> list[tuple[str | None, Any]]:
    page = EventsRepository(session).list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


def insert_legacy_agent(session: Session, agent_id: str, **columns: Any) -> None:
    """A row as the earlier system wrote it: raw text, no help from the models."""
    values = {"id": agent_id, "name": agent_id, **columns}
    names = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    session.execute(text(f"INSERT INTO agents ({names}) VALUES ({params})"), values)


def test_register_returns_the_token_once_and_stores_only_its_hash(session: Session) -> None:
    agents = on(AgentsRepository, session)
    created = agents.register(
        "gpu-box-1",
        hostname="10.0.0.5",
        port=8090,
        tags=["gpu", "a100"],
        notes="rack 3",
        gpu_info="A100 80GB",
        gpu_count=8,
        kitt_version="1.2.0",
    )
    token = created.token.get_secret_value()
    assert len(token) >= 40

    agent = created.agent
    assert (agent.name, agent.hostname, agent.port, agent.status) == (
        "gpu-box-1",
        "10.0.0.5",
        8090,
        "online",
    )
    assert agent.tags == ["gpu", "a100"]
    assert agent.has_token
    assert agent.registered_at is not None
    assert agent.last_heartbeat == agent.registered_at

    stored = stored_token(session, agent.id)
    assert stored is not None
    assert stored != token
    assert token not in stored
    assert stored == hash_token(token)
    # KITT's form: the SHA-256 hex digest, the first 8 characters for display.
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert stored_columns(session, agent.id) == ("", stored, token[:8])

    assert agents.verify_token(agent.id, token)
    assert agents.authenticate(agent.id, token).id == agent.id
    assert not agents.verify_token(agent.id, token + "x")
    assert not agents.verify_token(agent.id, "")
    assert events_of(session, agent.id) == [
        (
            "agent.registered",
            {"name": "gpu-box-1", "hostname": "10.0.0.5", "port": 8090, "tags": ["gpu", "a100"]},
        )
    ]


def test_no_dump_repr_or_error_contains_the_token_or_its_hash(session: Session) -> None:
    agents = on(AgentsRepository, session)
    created = agents.register("gpu-box-1")
    token = created.token.get_secret_value()
    digest = stored_token(session, created.agent.id)
    assert digest is not None

    with pytest.raises(InvalidTokenError) as wrong:
        agents.authenticate(created.agent.id, token[:-1])
    row = session.get(Agent, created.agent.id)
    texts = [
        repr(created),
        str(created),
        created.model_dump_json(),
        str(created.model_dump()),
        repr(created.agent),
        created.agent.model_dump_json(),
        str(created.agent.model_dump()),
        repr(wrong.value),
        str(wrong.value),
        repr(row),
        str(events_of(session, created.agent.id)),
    ]
    for rendered in texts:
        assert token not in rendered
        assert digest not in rendered


def test_duplicate_name_is_already_exists(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agents.register("gpu-box-1")
    with pytest.raises(AlreadyExistsError, match="gpu-box-1"):
        agents.register("gpu-box-1")
    assert len(agents.list().items) == 1


def test_bad_input_is_a_validation_error(session: Session) -> None:
    agents = on(AgentsRepository, session)
    with pytest.raises(ValidationError) as empty:
        agents.register(" ")
    assert empty.value.fields == ["name"]
    with pytest.raises(ValidationError) as comma:
        agents.register("a", tags=["gpu", "x,y", ""])
    assert comma.value.fields == ["tags.1", "tags.2"]
    with pytest.raises(ValidationError):
        agents.register("a", port=70000)
    assert agents.list().items == []


def test_rotate_token_invalidates_the_old_one(session: Session) -> None:
    agents = on(AgentsRepository, session)
    created = agents.register("gpu-box-1")
    old = created.token.get_secret_value()
    rotated = agents.rotate_token(created.agent.id)
    new = rotated.token.get_secret_value()
    assert new != old
    assert not agents.verify_token(created.agent.id, old)
    assert agents.verify_token(created.agent.id, new)
    assert [t for t, _ in events_of(session, created.agent.id)] == [
        "agent.registered",
        "agent.token_rotated",
    ]
    with pytest.raises(NotFoundError):
        agents.rotate_token("nope")


def test_unknown_agent_and_missing_token_never_verify(session: Session) -> None:
    agents = on(AgentsRepository, session)
    insert_legacy_agent(session, "no-token", token=None)
    insert_legacy_agent(session, "empty-token", token="")
    assert not agents.verify_token("no-token", "")
    assert not agents.verify_token("no-token", "anything")
    assert not agents.verify_token("empty-token", "")
    assert not agents.verify_token("missing", "anything")
    assert not agents.get("no-token").has_token
    with pytest.raises(InvalidTokenError):
        agents.authenticate("missing", "anything")


def test_legacy_plaintext_token_verifies_and_is_replaced_by_its_hash(session: Session) -> None:
    agents = on(AgentsRepository, session)
    insert_legacy_agent(session, "old-agent", token="legacy-secret-123")

    assert not agents.verify_token("old-agent", "legacy-secret-12")
    # A failure changes nothing.
    assert stored_columns(session, "old-agent") == ("legacy-secret-123", "", "")

    assert agents.verify_token("old-agent", "legacy-secret-123")
    assert stored_columns(session, "old-agent") == (
        "",
        hash_token("legacy-secret-123"),
        "legacy-s",
    )
    assert agents.verify_token("old-agent", "legacy-secret-123")  # and keeps verifying


def test_a_legacy_token_verifies_in_a_read_only_unit_of_work(migrated_url: str) -> None:
    """KITT's services verify tokens in read-only units of work: a plaintext token
    still verifies there (no error), stays as it was, and the next writing unit
    of work that verifies it moves it to its hash."""
    with Database(migrated_url) as db:
        with db.unit_of_work() as uow:
            insert_legacy_agent(uow.session, "old-agent", token="legacy-secret-123")
        for _ in range(2):
            with db.unit_of_work(readonly=True) as uow:
                assert uow.agents.verify_token("old-agent", "legacy-secret-123")
                assert not uow.agents.verify_token("old-agent", "legacy-secret-12")
        with db.unit_of_work() as uow:
            assert stored_columns(uow.session, "old-agent") == ("legacy-secret-123", "", "")
            assert uow.agents.verify_token("old-agent", "legacy-secret-123")
        with db.unit_of_work(readonly=True) as uow:
            assert stored_columns(uow.session, "old-agent")[1] == hash_token("legacy-secret-123")


def test_hash_legacy_tokens_replaces_every_plaintext_token(session: Session) -> None:
    agents = on(AgentsRepository, session)
    insert_legacy_agent(session, "old-1", token="secret-one")
    insert_legacy_agent(session, "old-2", token="secret-two")
    insert_legacy_agent(session, "no-token", token=None)
    fresh = agents.register("fresh")
    fresh_hash = stored_token(session, fresh.agent.id)

    assert agents.hash_legacy_tokens() == 2
    assert stored_token(session, "old-1") == hash_token("secret-one")
    assert stored_token(session, "old-2") == hash_token("secret-two")
    assert stored_columns(session, "no-token") == (None, "", "")
    assert stored_token(session, fresh.agent.id) == fresh_hash
    assert agents.verify_token("old-2", "secret-two")
    assert agents.hash_legacy_tokens() == 0


def test_heartbeat_updates_time_status_and_hardware(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent = agents.register("gpu-box-1", gpu_info="A100", gpu_count=8).agent
    before = utcnow()

    beat = agents.heartbeat(agent.id, status="busy", gpu_count=4, kitt_version="2.0")
    assert beat.status == "busy"
    assert beat.gpu_count == 4
    assert beat.gpu_info == "A100"  # not passed: unchanged
    assert beat.kitt_version == "2.0"
    assert beat.last_heartbeat is not None
    assert beat.last_heartbeat >= before
    assert beat.last_heartbeat.utcoffset() == timedelta(0)

    agents.heartbeat(agent.id, status="busy")  # no status change: no event
    agents.heartbeat(agent.id)  # back to online
    changes = [d for t, d in events_of(session, agent.id) if t == "agent.status_changed"]
    assert changes == [
        {"from": "online", "to": "busy", "reason": "heartbeat"},
        {"from": "busy", "to": "online", "reason": "heartbeat"},
    ]

    with pytest.raises(ValidationError):
        agents.heartbeat(agent.id, status="sleeping")
    with pytest.raises(NotFoundError):
        agents.heartbeat("nope")


def test_set_status_appends_an_event_only_on_change(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent = agents.register("gpu-box-1").agent
    assert agents.set_status(agent.id, "busy").status == "busy"
    agents.set_status(agent.id, "busy")
    changes = [d for t, d in events_of(session, agent.id) if t == "agent.status_changed"]
    assert changes == [{"from": "online", "to": "busy", "reason": "set"}]


def test_staleness_is_read_without_writing_then_marked_explicitly(session: Session) -> None:
    agents = on(AgentsRepository, session)
    quiet = agents.register("quiet").agent
    offline = agents.register("off").agent
    agents.set_status(offline.id, "offline")
    later = utcnow() + timedelta(minutes=10)
    fresh = agents.register("fresh").agent
    agents.heartbeat(fresh.id)
    log_before = EventsRepository(session).last_id()

    # Seen from ten minutes on, everyone registered before is stale ...
    stale = agents.list(stale_after=timedelta(minutes=5), now=later + timedelta(minutes=1))
    assert {a.name for a in stale.items} == {"quiet", "off", "fresh"}
    # ... and from now, nobody is.
    assert agents.list(stale_after=timedelta(minutes=5)).items == []
    assert quiet.is_stale(timedelta(minutes=5), now=later)
    assert not quiet.is_stale(timedelta(minutes=5))
    # Listing wrote nothing.
    assert agents.get(quiet.id).status == "online"
    assert EventsRepository(session).last_id() == log_before

    marked = agents.mark_stale_offline(timedelta(minutes=5), now=later + timedelta(minutes=1))
    assert {a.name for a in marked} == {"quiet", "fresh"}  # "off" was already offline
    assert all(a.status == "offline" for a in marked)
    changes = [d for t, d in events_of(session, quiet.id) if t == "agent.status_changed"]
    assert changes == [{"from": "online", "to": "offline", "reason": "stale"}]
    assert agents.mark_stale_offline(timedelta(minutes=5), now=later) == []


def test_tag_filter_is_exact_across_both_stored_forms(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agents.register("a", tags=["gpu", "a100"])
    agents.register("b", tags=["gpu2"])
    agents.register("c", tags=["a100-gpu"])
    insert_legacy_agent(session, "legacy", tags='["gpu", "h100"]')
    insert_legacy_agent(session, "legacy-2", tags='["gpu2"]')
    insert_legacy_agent(session, "weird", tags="gpu_x, 50%")

    assert [a.name for a in agents.list(tag="gpu").items] == ["a", "legacy"]
    assert [a.name for a in agents.list(tag="gpu2").items] == ["b", "legacy-2"]
    assert [a.name for a in agents.list(tag="h100").items] == ["legacy"]
    assert [a.name for a in agents.list(tag="50%").items] == ["weird"]
    assert agents.list(tag="gp").items == []
    assert agents.list(tag="gpu_").items == []


def test_tags_are_written_comma_separated(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent = agents.register("a", tags=[" gpu ", "a100", "gpu"]).agent
    assert session.scalar(select(Agent.tags).where(Agent.id == agent.id)) == "gpu,a100"
    insert_legacy_agent(session, "legacy", tags='["x"]')
    updated = agents.update("legacy", tags=["x", "y"], notes="moved")
    assert updated.tags == ["x", "y"]
    assert session.scalar(select(Agent.tags).where(Agent.id == "legacy")) == "x,y"
    assert events_of(session, "legacy") == [("agent.updated", {"fields": ["notes", "tags"]})]


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, []),
        ("", []),
        ("gpu", ["gpu"]),
        ("gpu, a100 ,", ["gpu", "a100"]),
        ('["gpu", "a100"]', ["gpu", "a100"]),
        ("[not json", ["[not json"]),
    ],
)
def test_parse_tags(stored: str | None, expected: list[str]) -> None:
    assert parse_tags(stored) == expected


def test_legacy_rows_read_as_they_are(session: Session) -> None:
    insert_legacy_agent(
        session,
        "old",
        status="idle",
        tags='["gpu"]',
        token="plain",
        last_heartbeat="2024-01-01 10:00:00",
    )
    agents = on(AgentsRepository, session)
    agent = agents.get("old")
    assert agent.status == "idle"
    assert agent.tags == ["gpu"]
    assert agent.last_heartbeat is not None
    assert agent.last_heartbeat.isoformat() == "2024-01-01T10:00:00+00:00"
    assert [a.id for a in agents.list(status="idle").items] == ["old"]
    assert [a.id for a in agents.list(stale_after=timedelta(hours=1)).items] == ["old"]
    assert [a.id for a in agents.mark_stale_offline(timedelta(hours=1))] == ["old"]
    assert events_of(session, "old") == [
        ("agent.status_changed", {"from": "idle", "to": "offline", "reason": "stale"})
    ]


def test_retire_refuses_while_referenced_and_names_the_references(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent = agents.register("gpu-box-1").agent
    campaign = on(CampaignsRepository, session).create("nightly", agent_id=agent.id)
    test = on(QuickTestsRepository, session).dispatch(
        agent.id, model_path="m", engine_name="vllm", benchmark_name="throughput"
    )

    with pytest.raises(StillReferencedError) as refused:
        agents.retire(agent.id)
    message = str(refused.value)
    assert "web_campaigns" in message
    assert campaign.id in message
    assert "quick_tests" in message
    assert test.id in message
    assert agents.get(agent.id).name == "gpu-box-1"  # nothing lost
    assert [t for t, _ in events_of(session, agent.id)] == ["agent.registered"]


def test_retire_an_unreferenced_agent(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent = agents.register("gpu-box-1").agent
    agents.retire(agent.id)
    with pytest.raises(NotFoundError):
        agents.get(agent.id)
    assert [t for t, _ in events_of(session, agent.id)] == ["agent.registered", "agent.retired"]
    with pytest.raises(NotFoundError):
        agents.retire(agent.id)
