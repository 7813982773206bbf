"""The operations repositories over a database the earlier system built, once adopted."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from karr_db import migrations
from karr_db.database import Database
from karr_db.errors import InvalidTransitionError, StillReferencedError
from karr_db.models import Agent
from karr_db.tokens import hash_token
from tests.support.legacy import build_legacy


def test_legacy_rows_read_and_work_after_adoption(empty_url: str, samples_dir: Path) -> None:
    build_legacy(empty_url, 2, samples_dir)
    migrations.upgrade(empty_url)

    with Database(empty_url) as db:
        with db.unit_of_work() as uow:
            spark = uow.agents.get("agent-2")
            assert spark.status == "idle"  # a legacy status, returned as it is
            assert spark.tags == ["gpu2", "arm"]
            assert spark.last_heartbeat is None  # '' meant unknown
            assert not spark.has_token
            dgx = uow.agents.get("agent-1")
            assert dgx.tags == ["gpu", "h100"]  # legacy JSON list
            assert [a.id for a in uow.agents.list(tag="gpu").items] == ["agent-1"]
            assert [a.id for a in uow.agents.list(tag="gpu2").items] == ["agent-2"]
            assert [a.id for a in uow.agents.list(status="idle").items] == ["agent-2"]

            campaign = uow.campaigns.get("camp-1")
            assert campaign.status == "draft"
            assert campaign.config == {"models": ["a", "b"], "engines": ["vllm"], "repeat": 2}
            assert (campaign.total_runs, campaign.succeeded) == (4, 1)
            assert uow.quick_tests.get("qt-1").status == "completed"
            legacy_events = uow.events.list(0).items
            assert legacy_events
            last_legacy = max(e.id for e in legacy_events)

        with db.unit_of_work(immediate=True) as uow:
            assert uow.agents.verify_token("agent-1", "plain-secret-token")
            with pytest.raises(StillReferencedError, match="camp-1"):
                uow.agents.retire("agent-1")
            # The earlier system's initial status is part of the one state machine.
            assert uow.campaigns.launch("camp-1").status == "queued"
            with pytest.raises(InvalidTransitionError, match="'queued'"):
                uow.campaigns.update_config("camp-1", {"models": []})
            uow.agents.heartbeat("agent-2")

        with db.unit_of_work() as uow:
            stored = uow.session.scalar(select(Agent.token_hash).where(Agent.id == "agent-1"))
            assert stored == hash_token("plain-secret-token")
            assert uow.agents.verify_token("agent-1", "plain-secret-token")
            assert uow.agents.get("agent-2").status == "online"
            new = uow.events.list(last_legacy).items
            assert [(e.event_type, e.source_id, e.data) for e in new] == [
                ("campaign.launched", "camp-1", {"from": "draft", "to": "queued"}),
                (
                    "agent.status_changed",
                    "agent-2",
                    {"from": "idle", "to": "online", "reason": "heartbeat"},
                ),
            ]
