"""Quick-test and campaign logs (KITT's schemas 7 and 10), and what deleting their owner does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from karr_db.errors import (
    InvalidQueryError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from karr_db.limits import MAX_LOG_LINE_BYTES, PAGE_LIMIT
from karr_db.models import CampaignLog, QuickTestLog
from karr_db.repositories._common import encode_cursor
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository
from karr_db.repositories.events import EventsRepository, wait_for_events
from karr_db.repositories.logs import CampaignLogsRepository, LogLines, QuickTestLogsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from tests.support.repositories import on


def events_of(session: Session, source_id: str) -> list[tuple[str | None, Any]]:
    page = EventsRepository(session).list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


@pytest.fixture
def agent_id(session: Session) -> str:
    return on(AgentsRepository, session).register("gpu-box-1").agent.id


@pytest.fixture
def test_id(session: Session, agent_id: str) -> str:
    return (
        on(QuickTestsRepository, session)
        .dispatch(agent_id, model_path="m", engine_name="vllm", benchmark_name="throughput")
        .id
    )


@pytest.fixture
def campaign_id(session: Session, agent_id: str) -> str:
    return on(CampaignsRepository, session).create("nightly", agent_id=agent_id).id


@pytest.fixture(params=["quick test", "campaign"])
def owner(
    request: pytest.FixtureRequest, session: Session, test_id: str, campaign_id: str
) -> tuple[LogLines, str]:
    if request.param == "quick test":
        return on(QuickTestLogsRepository, session), test_id
    return on(CampaignLogsRepository, session), campaign_id


def test_lines_come_back_in_the_order_appended(owner: tuple[LogLines, str]) -> None:
    logs, owner_id = owner
    first = logs.append(owner_id, ["pulling image", "starting engine"])
    second = logs.append(owner_id, ["ünïcode ✓", ""])
    assert first == sorted(first)
    assert second[0] > first[-1]
    page = logs.list(owner_id)
    assert [line.line for line in page.items] == [
        "pulling image",
        "starting engine",
        "ünïcode ✓",
        "",
    ]
    assert [line.id for line in page.items] == first + second
    assert {line.owner_id for line in page.items} == {owner_id}
    assert all(line.created_at is not None for line in page.items)
    assert (page.has_more, page.next_cursor) == (False, None)
    assert logs.count(owner_id) == 4
    assert logs.get(first[1]).line == "starting engine"


def test_reading_after_an_id_pages_on(owner: tuple[LogLines, str]) -> None:
    logs, owner_id = owner
    ids = logs.append(owner_id, [f"line {n}" for n in range(5)])
    page = logs.list(owner_id, after_id=ids[1], limit=2)
    assert [line.line for line in page.items] == ["line 2", "line 3"]
    assert page.has_more
    rest = logs.list(owner_id, cursor=page.next_cursor)
    assert [line.line for line in rest.items] == ["line 4"]
    assert rest.items == logs.list(owner_id, after_id=page.items[-1].id).items
    caught_up = logs.list(owner_id, after_id=ids[-1])
    assert (caught_up.items, caught_up.has_more) == ([], False)


def test_each_append_is_one_event_naming_the_ids(
    session: Session, owner: tuple[LogLines, str]
) -> None:
    logs, owner_id = owner
    ids = logs.append(owner_id, ["a", "b", "c"])
    assert logs.append(owner_id, []) == []
    logged = [data for kind, data in events_of(session, owner_id) if str(kind).endswith("logged")]
    assert logged == [{"first_id": ids[0], "last_id": ids[-1], "lines": 3}]


def test_logs_of_two_owners_stay_apart(
    session: Session, test_id: str, campaign_id: str, agent_id: str
) -> None:
    tests = on(QuickTestLogsRepository, session)
    other = (
        on(QuickTestsRepository, session)
        .dispatch(agent_id, model_path="m", engine_name="e", benchmark_name="b")
        .id
    )
    tests.append(test_id, ["mine"])
    tests.append(other, ["theirs"])
    on(CampaignLogsRepository, session).append(campaign_id, ["campaign's"])
    assert [line.line for line in tests.list(test_id).items] == ["mine"]
    assert [line.line for line in tests.list(other).items] == ["theirs"]


@pytest.mark.parametrize(
    ("lines", "fields"),
    [
        (["ok", "nul\x00"], ["lines.1"]),
        (["\ud800"], ["lines.0"]),
        (["x" * (MAX_LOG_LINE_BYTES + 1)], ["lines.0"]),
        (["ok"] * (PAGE_LIMIT + 1), ["lines"]),
        ("one string", ["lines"]),
        ([1], ["lines.0"]),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_written(
    owner: tuple[LogLines, str], lines: Any, fields: list[str]
) -> None:
    logs, owner_id = owner
    with pytest.raises(ValidationError) as refused:
        logs.append(owner_id, lines)
    assert refused.value.fields == fields
    assert logs.count(owner_id) == 0


def test_an_unknown_owner_is_not_found(owner: tuple[LogLines, str]) -> None:
    logs, _ = owner
    with pytest.raises(NotFoundError, match="no-such"):
        logs.append("no-such", ["x"])
    with pytest.raises(NotFoundError, match="no-such"):
        logs.list("no-such")
    with pytest.raises(NotFoundError):
        logs.get(2_000_000_000)
    with pytest.raises(ValidationError) as refused:
        logs.list("no-such", after_id=2**31)
    assert refused.value.fields == ["after_id"]


def test_lines_kitt_wrote_read_back(session: Session, test_id: str) -> None:
    # KITT inserts only test_id and line; created_at comes from the column default.
    session.execute(
        text("INSERT INTO quick_test_logs (test_id, line) VALUES (:id, 'from kitt')"),
        {"id": test_id},
    )
    (line,) = on(QuickTestLogsRepository, session).list(test_id).items
    assert line.line == "from kitt"
    assert line.created_at is not None


# --- deleting the owner --------------------------------------------------------------


def _lines(session: Session, model: Any, column: Any, owner_id: str) -> int:
    query = select(func.count()).select_from(model).where(column == owner_id)
    return int(session.scalar(query) or 0)


def test_deleting_a_campaign_deletes_its_logs(session: Session, campaign_id: str) -> None:
    on(CampaignLogsRepository, session).append(campaign_id, ["a", "b"])
    on(CampaignsRepository, session).delete(campaign_id)
    assert _lines(session, CampaignLog, CampaignLog.campaign_id, campaign_id) == 0
    assert events_of(session, campaign_id)[-1] == (
        "campaign.deleted",
        {"name": "nightly", "status": "draft", "log_lines": 2},
    )


def test_a_running_campaign_keeps_its_logs(session: Session, campaign_id: str) -> None:
    on(CampaignLogsRepository, session).append(campaign_id, ["a"])
    on(CampaignsRepository, session).start(campaign_id)
    with pytest.raises(InvalidTransitionError):
        on(CampaignsRepository, session).delete(campaign_id)
    assert _lines(session, CampaignLog, CampaignLog.campaign_id, campaign_id) == 1


def test_deleting_a_quick_test_deletes_its_logs(
    session: Session, test_id: str, agent_id: str
) -> None:
    on(QuickTestLogsRepository, session).append(test_id, ["a", "b", "c"])
    tests = on(QuickTestsRepository, session)
    tests.delete(test_id)
    assert tests.find(test_id) is None
    assert _lines(session, QuickTestLog, QuickTestLog.test_id, test_id) == 0
    assert events_of(session, test_id)[-1] == (
        "quick_test.deleted",
        {"status": "queued", "agent_id": agent_id, "log_lines": 3},
    )
    with pytest.raises(NotFoundError):
        tests.delete(test_id)


@pytest.mark.parametrize("held", ["claimed", "running", "dispatched"])
def test_a_test_its_agent_holds_is_not_deleted(
    session: Session, test_id: str, agent_id: str, held: str
) -> None:
    tests = on(QuickTestsRepository, session)
    if held == "dispatched":  # what KITT's heartbeat writes on a shared database
        session.execute(
            text("UPDATE quick_tests SET status = 'dispatched' WHERE id = :id"), {"id": test_id}
        )
    else:
        tests.claim_next(agent_id)
    if held == "running":
        tests.start(test_id)
    on(QuickTestLogsRepository, session).append(test_id, ["a"])
    with pytest.raises(InvalidTransitionError):
        tests.delete(test_id)
    assert tests.get(test_id).status == held
    assert _lines(session, QuickTestLog, QuickTestLog.test_id, test_id) == 1


def test_deleting_its_work_lets_an_agent_retire(
    session: Session, test_id: str, campaign_id: str, agent_id: str
) -> None:
    on(QuickTestLogsRepository, session).append(test_id, ["a"])
    on(QuickTestsRepository, session).delete(test_id)
    on(CampaignsRepository, session).delete(campaign_id)
    on(AgentsRepository, session).retire(agent_id)
    assert on(AgentsRepository, session).find(agent_id) is None


FORGED_IDS = ([-1], [2**31], [True], ["7"], [1, 2])


def test_a_forged_cursor_id_is_malformed(owner: tuple[LogLines, str]) -> None:
    """Log lines and events read the same ``[id]`` cursor: an id no row can have (negative,
    beyond the 32-bit column, not an integer) is a malformed cursor on both."""
    logs, owner_id = owner
    for forged in FORGED_IDS:
        with pytest.raises(InvalidQueryError, match="malformed cursor"):
            logs.list(owner_id, cursor=encode_cursor(forged))
    assert logs.list(owner_id, cursor=encode_cursor([2**31 - 1])).items == []


def test_a_forged_event_cursor_id_is_malformed(session: Session) -> None:
    events = on(EventsRepository, session)
    for forged in FORGED_IDS:
        with pytest.raises(InvalidQueryError, match="malformed cursor"):
            events.list(cursor=encode_cursor(forged))
    assert events.list(cursor=encode_cursor([2**31 - 1])).items == []


def test_an_after_id_no_row_can_follow_is_refused_alike(
    owner: tuple[LogLines, str], session: Session
) -> None:
    """Log lines, events and the wait for events take ``after_id`` by one rule: a
    negative id, or one beyond the 32-bit id column, is a validation error naming
    ``after_id`` on all three."""
    logs, owner_id = owner
    events = on(EventsRepository, session)
    engine = session.get_bind().engine
    for bad in (-1, 2**31, "7", True):
        with pytest.raises(ValidationError) as refused:
            logs.list(owner_id, after_id=bad)  # type: ignore[arg-type]
        assert refused.value.fields == ["after_id"]
        with pytest.raises(ValidationError) as refused:
            events.list(after_id=bad)  # type: ignore[arg-type]
        assert refused.value.fields == ["after_id"]
        with pytest.raises(ValidationError) as refused:
            wait_for_events(engine, bad, timeout=0.1)  # type: ignore[arg-type]
        assert refused.value.fields == ["after_id"]
