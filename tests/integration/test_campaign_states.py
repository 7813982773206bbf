"""One campaign state machine: every status the earlier system wrote is usable.

The earlier system created campaigns ``draft``, launched them to ``queued``
(from ``draft`` or ``failed``) and cancelled them from ``queued`` or
``running``; the reference names ``pending``. Each is exercised on a database
the earlier system built and then adopted, and on a native one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from karr_db import migrations
from karr_db.cli import docs
from karr_db.database import Database, UnitOfWork
from karr_db.errors import InvalidTransitionError, ValidationError
from karr_db.repositories.agents import AGENT_STATUS_NOTES, AGENT_STATUSES
from karr_db.repositories.campaigns import (
    CAMPAIGN_STATUS_NOTES,
    CAMPAIGN_TRANSITIONS,
    CampaignStatus,
)
from tests.support.legacy import build_legacy
from tests.support.reference import FACTS

#: Campaigns as the earlier system (or a writer outside the layer) left them.
LEFT_BEHIND = {
    "c-draft": "draft",
    "c-queued": "queued",
    "c-failed": "failed",
    "c-pending": "pending",
    "c-running": "running",
}


def _inserts() -> list[str]:
    return [
        "INSERT INTO web_campaigns (id, name, config_json, status, created_at, total_runs, "
        f"succeeded, failed, skipped) VALUES ('{key}', '{key}', '{{\"models\": [\"m\"]}}', "
        f"'{status}', '2026-02-01 00:00:00', 2, 1, 1, 0)"
        for key, status in LEFT_BEHIND.items()
    ]


@pytest.fixture(params=["adopted", "native"])
def db(request: pytest.FixtureRequest, empty_url: str, samples_dir: Path) -> Iterator[Database]:
    """A database holding the campaigns of :data:`LEFT_BEHIND`, adopted or native."""
    if request.param == "adopted":
        build_legacy(empty_url, 2, samples_dir, extra=_inserts())
        migrations.upgrade(empty_url)
    else:
        migrations.upgrade(empty_url)
    with Database(empty_url) as database:
        if request.param == "native":
            with database.unit_of_work(immediate=True) as uow:
                for statement in _inserts():
                    uow.session.connection().exec_driver_sql(statement)
        yield database


def _events(uow: UnitOfWork, source_id: str) -> list[tuple[str | None, object]]:
    page = uow.events.list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


def test_a_waiting_campaign_can_be_started(db: Database) -> None:
    for key in ("c-draft", "c-queued", "c-pending"):
        with db.unit_of_work(immediate=True) as uow:
            started = uow.campaigns.start(key)
        assert started.status == "running"
        assert started.started_at is not None
        with db.unit_of_work() as uow:
            assert _events(uow, key)[-1] == (
                "campaign.started",
                {"from": LEFT_BEHIND[key], "to": "running"},
            )


def test_a_waiting_or_running_campaign_can_be_cancelled(db: Database) -> None:
    for key in ("c-draft", "c-queued", "c-pending", "c-running"):
        with db.unit_of_work(immediate=True) as uow:
            cancelled = uow.campaigns.cancel(key)
        assert cancelled.status == "cancelled"
        assert cancelled.completed_at is not None
    with db.unit_of_work(immediate=True) as uow, pytest.raises(InvalidTransitionError):
        uow.campaigns.cancel("c-failed")


def test_launch_queues_a_draft_or_failed_campaign(db: Database) -> None:
    for key in ("c-draft", "c-failed"):
        with db.unit_of_work(immediate=True) as uow:
            queued = uow.campaigns.launch(key)
        assert queued.status == "queued"
        assert queued.error is None
        assert queued.completed_at is None
        with db.unit_of_work() as uow:
            assert _events(uow, key)[-1] == (
                "campaign.launched",
                {"from": LEFT_BEHIND[key], "to": "queued"},
            )
        with db.unit_of_work(immediate=True) as uow:
            assert uow.campaigns.start(key).status == "running"


def test_relaunching_a_failed_campaign_counts_every_run_again(db: Database) -> None:
    with db.unit_of_work(immediate=True) as uow:
        relaunched = uow.campaigns.launch("c-failed")
    assert (relaunched.succeeded, relaunched.failed, relaunched.skipped) == (0, 0, 0)
    assert relaunched.total_runs == 2


def test_launch_is_refused_once_launched(db: Database) -> None:
    for key in ("c-queued", "c-pending", "c-running"):
        with db.unit_of_work(immediate=True) as uow, pytest.raises(InvalidTransitionError):
            uow.campaigns.launch(key)
        with db.unit_of_work() as uow:
            assert uow.campaigns.get(key).status == LEFT_BEHIND[key]


def test_config_is_editable_in_draft_only(db: Database) -> None:
    with db.unit_of_work(immediate=True) as uow:
        edited = uow.campaigns.update_config("c-draft", {"models": ["a", "b"]})
    assert edited.config == {"models": ["a", "b"]}
    for key in ("c-queued", "c-failed", "c-pending", "c-running"):
        with db.unit_of_work(immediate=True) as uow, pytest.raises(InvalidTransitionError):
            uow.campaigns.update_config(key, {"models": ["x"]})
    with db.unit_of_work() as uow:
        assert uow.campaigns.get("c-queued").config == {"models": ["m"]}
        assert _events(uow, "c-draft")[-1] == ("campaign.updated", {"fields": ["config"]})
    with db.unit_of_work(immediate=True) as uow, pytest.raises(ValidationError) as bad:
        uow.campaigns.update_config("c-draft", ["not", "an", "object"])  # type: ignore[arg-type]
    assert bad.value.fields == ["config"]


def test_new_campaigns_start_in_draft(db: Database) -> None:
    with db.unit_of_work(immediate=True) as uow:
        created = uow.campaigns.create("fresh")
    assert created.status == "draft"


def test_idle_and_running_agents_are_accepted(db: Database) -> None:
    with db.unit_of_work(immediate=True) as uow:
        agent = uow.agents.register("box").agent
        assert uow.agents.heartbeat(agent.id, status="idle").status == "idle"
        assert uow.agents.heartbeat(agent.id, status="running").status == "running"
        assert [a.name for a in uow.agents.list(status="running").items] == ["box"]
        with pytest.raises(ValidationError) as bad:
            uow.agents.heartbeat(agent.id, status="sleeping")
        assert bad.value.fields == ["status"]


def test_an_adopted_idle_agent_works(empty_url: str, samples_dir: Path) -> None:
    build_legacy(empty_url, 2, samples_dir)  # agent-2 is 'idle', as its heartbeat left it
    migrations.upgrade(empty_url)
    with Database(empty_url) as database, database.unit_of_work(immediate=True) as uow:
        assert [a.id for a in uow.agents.list(status="idle").items] == ["agent-2"]
        last = uow.events.last_id()
        assert uow.agents.heartbeat("agent-2", status="idle").status == "idle"
        assert uow.events.list(last).items == []  # no change, no event
        assert uow.agents.heartbeat("agent-2", status="running").status == "running"
        assert uow.agents.set_status("agent-2", "idle").status == "idle"


def test_every_status_has_a_way_in_and_the_table_names_only_known_statuses() -> None:
    targets = {t.to for t in CAMPAIGN_TRANSITIONS}
    sources = {s for t in CAMPAIGN_TRANSITIONS for s in t.allowed_from}
    assert targets | sources <= set(CampaignStatus)
    # Every status but the initial ones is reachable, and every written status is usable.
    assert set(CampaignStatus) - targets == {CampaignStatus.DRAFT, CampaignStatus.PENDING}
    for status in ("draft", "queued", "pending", "failed"):
        assert status in sources


def _reference_statuses(table: str) -> set[str]:
    """The statuses the schema reference lists in ``table``'s status column (its facts)."""
    return set(json.loads(FACTS.read_text(encoding="utf-8"))["statuses"][table])


@pytest.mark.parametrize(
    ("table", "notes"),
    [("web_campaigns", CAMPAIGN_STATUS_NOTES), ("agents", AGENT_STATUS_NOTES)],
)
def test_statuses_beyond_the_reference_are_marked_in_code_and_docs(
    table: str, notes: dict[Any, tuple[bool, str]]
) -> None:
    in_reference = {str(s) for s, (listed, _) in notes.items() if listed}
    assert in_reference == _reference_statuses(table)
    text = docs.render()
    section = text.split(f"**`{table}.status`**", 1)[1].split("**`", 1)[0]
    for status, (listed, _) in notes.items():
        row = next(line for line in section.splitlines() if line.startswith(f"| `{status}`"))
        assert ("beyond the reference" in row) is (not listed), row
    if table == "web_campaigns":
        for t in CAMPAIGN_TRANSITIONS:
            assert f"| `{t.verb}` | {', '.join(f'`{s}`' for s in t.allowed_from)} |" in section
    assert set(notes) >= (set(CampaignStatus) if table == "web_campaigns" else set(AGENT_STATUSES))
