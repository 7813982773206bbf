"""Operations commands: agents, campaigns, quick-tests, events (with --follow)."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import partial
from typing import Annotated, Any

import typer

from karr_db.cli._app import DatabaseOption, JsonOption, ReplicaOption, app, open_database
from karr_db.cli._output import fmt, paged_items, print_json, say, show, state, table
from karr_db.database import Database
from karr_db.limits import PAGE_LIMIT
from karr_db.repositories.agents import AGENT_STATUSES
from karr_db.repositories.campaigns import CampaignStatus
from karr_db.repositories.events import EventDTO, EventType
from karr_db.repositories.quick_tests import QuickTestStatus
from karr_db.uow import UnitOfWork

Limit = Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")]


def _only_status(statuses: Iterable[str]) -> str:
    """``--status`` help listing the statuses the code defines (read from its enum or
    constants, so a status added there shows up here)."""
    return f"Only this status: {', '.join(statuses)}."


AgentStatusOption = Annotated[
    str | None, typer.Option("--status", metavar="STATUS", help=_only_status(AGENT_STATUSES))
]
CampaignStatusOption = Annotated[
    str | None,
    typer.Option("--status", metavar="STATUS", help=_only_status(s.value for s in CampaignStatus)),
]
QuickTestStatusOption = Annotated[
    str | None,
    typer.Option("--status", metavar="STATUS", help=_only_status(s.value for s in QuickTestStatus)),
]


def check_status(
    status: str | None,
    known: Iterable[str],
    stored: Callable[[str], int],
    *,
    what: str = "status",
    option: str = "--status",
) -> None:
    """A usage error (exit 2) for a status (or event type) the code does not define
    and no row holds.

    Values an older database (or another writer) stored are still accepted when
    rows have them, so filtering on a legacy value keeps working; a typo is caught.
    """
    valid = list(known)
    if status is None or status in valid or stored(status) > 0:
        return
    close = difflib.get_close_matches(status, valid, 1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise typer.BadParameter(
        f"unknown {what} {status!r}: use one of {', '.join(valid)}{hint}", param_hint=option
    )


AgentId = Annotated[str | None, typer.Option("--agent", help="Only work of this agent id.")]


@app.command("agents")
def agents_command(
    status: AgentStatusOption = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only agents with this tag.")] = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List registered agents by name (tokens are never shown).

    Example: karr-db agents --status online --tag gpu
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        check_status(
            status, AGENT_STATUSES, lambda s: len(uow.agents.list(status=s, limit=1).items)
        )
        agents = paged_items(partial(uow.agents.list, status=status, tag=tag), None)
    if as_json:
        print_json(agents)
        return
    rows = table("name", "id", "status", "address", "gpus", "last heartbeat", "tags")
    for agent in agents:
        address = f"{fmt(agent.hostname)}:{agent.port}" if agent.port else fmt(agent.hostname)
        gpus = f"{agent.gpu_count} x {fmt(agent.gpu_info)}" if agent.gpu_count else agent.gpu_info
        rows.add_row(
            fmt(agent.name),
            agent.id,
            fmt(agent.status),
            address,
            fmt(gpus),
            fmt(agent.last_heartbeat),
            fmt(agent.tags),
        )
    show(rows)
    say(f"{len(agents)} agent(s)")


def _assigned_work(
    database: str | None,
    replica: str | None,
    repository: Callable[[UnitOfWork], Any],
    statuses: Iterable[StrEnum],
    status: str | None,
    agent: str | None,
    limit: int,
) -> list[Any]:
    """Up to ``limit`` campaigns or quick tests (``repository`` picks which), newest
    first, after checking ``--status`` against ``statuses``."""
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        work = repository(uow)
        check_status(status, (s.value for s in statuses), lambda s: work.count(status=s))
        return paged_items(partial(work.list, status=status, agent_id=agent), limit)


@app.command("campaigns")
def campaigns_command(
    status: CampaignStatusOption = None,
    agent: AgentId = None,
    limit: Limit = 50,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List campaigns, newest first, with their progress.

    Example: karr-db campaigns --status running
    """
    campaigns = _assigned_work(
        database, replica, lambda uow: uow.campaigns, CampaignStatus, status, agent, limit
    )
    if as_json:
        print_json(campaigns)
        return
    rows = table(
        "id", "name", "status", "done/total", "ok", "failed", "skipped", "agent", "created"
    )
    for c in campaigns:
        rows.add_row(
            c.id,
            fmt(c.name),
            fmt(c.status),
            f"{c.finished_runs}/{c.total_runs}",
            str(c.succeeded),
            str(c.failed),
            str(c.skipped),
            fmt(c.agent_id),
            fmt(c.created_at),
        )
    show(rows)
    say(f"{len(campaigns)} campaign(s)")


@app.command("quick-tests")
def quick_tests_command(
    status: QuickTestStatusOption = None,
    agent: AgentId = None,
    limit: Limit = 50,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List quick tests, newest first.

    Example: karr-db quick-tests --status queued
    """
    tests = _assigned_work(
        database, replica, lambda uow: uow.quick_tests, QuickTestStatus, status, agent, limit
    )
    if as_json:
        print_json(tests)
        return
    rows = table("id", "benchmark", "model", "engine", "status", "agent", "result", "created")
    for t in tests:
        rows.add_row(
            t.id,
            fmt(t.benchmark_name),
            fmt(t.model_path),
            fmt(t.engine_name),
            fmt(t.status),
            fmt(t.agent_id),
            fmt(t.result_id),
            fmt(t.created_at),
        )
    show(rows)
    say(f"{len(tests)} quick test(s)")


def _event_data(event: EventDTO) -> str:
    return json.dumps(event.data, ensure_ascii=False, separators=(",", ":"), default=str)


def _event_line(event: EventDTO) -> str:
    data = _event_data(event)
    return (
        f"{event.id:>6}  {fmt(event.created_at)}  {fmt(event.event_type):<24} "
        f"{fmt(event.source_id)}  {data}"
    )


class _Reader:
    """Reads the log after a position, each time in a fresh transaction (so new
    commits are visible)."""

    def __init__(self, db: Database, types: list[str] | None, source: str | None) -> None:
        self.db = db
        self.types = types
        self.source = source

    def last_id(self) -> int:
        with self.db.unit_of_work(readonly=True) as uow:
            return uow.events.last_id()

    def after(self, after_id: int, limit: int = PAGE_LIMIT) -> tuple[list[EventDTO], bool]:
        with self.db.unit_of_work(readonly=True) as uow:
            page = uow.events.list(
                after_id, event_types=self.types, source_id=self.source, limit=limit
            )
        return list(page.items), page.has_more


@app.command("events")
def events_command(
    after: Annotated[
        int | None, typer.Option("--after", min=0, help="Start after this event id.")
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            help=f"Only this event type (repeatable): {', '.join(EventType)}.",
        ),
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source id.")] = None,
    limit: Limit = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until interrupted.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.05, hidden=True)] = 1.0,
    max_events: Annotated[int | None, typer.Option("--max-events", min=1, hidden=True)] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0, hidden=True)] = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the event log (the last --limit events), or tail it with --follow.

    With --follow and --json, one JSON object per line.

    Example: karr-db events --follow --type run.saved
    """
    with open_database(database, replica=replica) as db:
        with db.unit_of_work(readonly=True) as uow:
            for name in event_type or []:
                check_status(
                    name,
                    (t.value for t in EventType),
                    lambda t: len(uow.events.list(event_types=[t], limit=1).items),
                    what="event type",
                    option="--type",
                )
        reader = _Reader(db, event_type or None, source)
        start = after if after is not None else max(0, reader.last_id() - limit)
        backlog, _ = reader.after(start, min(limit, PAGE_LIMIT))
        if not follow:
            if as_json:
                print_json(backlog)
                return
            if not backlog:
                say("no events")
                return
            rows = table("id", "time", "type", "source", "data")
            for column in rows.columns[:4]:
                column.no_wrap = True  # a timestamp on one line; the data wraps
            rows.columns[4].overflow = "fold"
            cells = [
                (
                    str(event.id),
                    fmt(event.created_at),
                    fmt(event.event_type),
                    fmt(event.source_id),
                    _event_data(event),
                )
                for event in backlog
            ]
            natural = sum(max(len(c[i]) for c in cells) for i in range(5)) + 3 * 5 + 1
            if natural > state.out.width:
                # A source is a run or agent id: its start (a prefix `show` takes) says
                # enough on a narrow terminal, and leaves the data room.
                rows.columns[3].overflow = "ellipsis"
                rows.columns[3].max_width = 18
            for values in cells:
                rows.add_row(*values)
            show(rows)
            say(f"{len(backlog)} event(s); --follow tails the log")
            return
        _follow(reader, backlog, start, interval, max_events, timeout, as_json)


def _follow(
    reader: _Reader,
    backlog: list[EventDTO],
    start: int,
    interval: float,
    max_events: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Print events as they are appended; Ctrl-C (or the hidden limits) ends it normally."""
    deadline = None if timeout is None else time.monotonic() + timeout
    printed = 0
    position = start
    events = backlog
    try:
        while True:
            for event in events:
                if as_json:
                    print_json(event, indent=None)
                else:
                    say(_event_line(event))
                position = event.id
                printed += 1
                if max_events is not None and printed >= max_events:
                    return
            if not events:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                time.sleep(interval)
            events, _ = reader.after(position)
    except KeyboardInterrupt:
        return
