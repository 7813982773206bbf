"""Which inference engines each agent has, in which mode, and in what state.

KITT's schema 11 (``agent_engines``): one row per agent, engine and mode, upserted
each time the agent reports (:meth:`AgentEnginesRepository.report`). Read by agent
(:meth:`~AgentEnginesRepository.for_agent`, at most
:data:`~karr_db.limits.MAX_AGENT_ENGINES` rows) or across agents as the status
matrix KITT's engines page shows (:meth:`~AgentEnginesRepository.list`, by agent,
engine and mode). The rows go with their agent: retiring it deletes them
(``ON DELETE CASCADE``). ``status`` is whatever the agent said (KITT's agents
send ``unknown`` when they could not tell).
"""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import Table, func, select

from karr_db.dialects import for_connection
from karr_db.errors import FieldError, NotFoundError, ValidationError
from karr_db.limits import MAX_AGENT_ENGINES, PAGE_LIMIT, text_problem
from karr_db.models import Agent, AgentEngine
from karr_db.models.types import utcnow
from karr_db.repositories._base import Repository
from karr_db.repositories._common import (
    DTO,
    Page,
    RowShape,
    found,
)
from karr_db.repositories._validate import checked, fields, int32
from karr_db.repositories.engine_profiles import mode_problem
from karr_db.repositories.events import EventType

__all__ = ["AgentEngineDTO", "AgentEnginesRepository"]


class AgentEngineDTO(DTO):
    """One engine of one agent, in one mode, as last reported."""

    id: int
    agent_id: str
    engine: str
    mode: str
    version: str
    binary_path: str
    status: str
    last_checked: datetime | None


def _text(value: str | None) -> str:
    return value or ""


_TABLE: Table = AgentEngine.__table__  # type: ignore[assignment]

SHAPE = RowShape(
    AgentEngineDTO,
    {name: getattr(AgentEngine, name) for name in AgentEngineDTO.model_fields},
    convert={"version": _text, "binary_path": _text, "status": _text},
)


@checked
class AgentEnginesRepository(Repository):
    """Agents' engines in the caller's transaction; every report appends its event."""

    def find(self, engine_id: int) -> AgentEngineDTO | None:
        """The row with this id, or ``None``."""
        fields("agent engine", [("engine_id", int32(engine_id))])
        return self._one(SHAPE, AgentEngine.id == engine_id)

    def get(self, engine_id: int) -> AgentEngineDTO:
        """The row with this id; :class:`NotFoundError` naming it."""
        return found("agent engine", engine_id, self.find(engine_id))

    def find_for(self, agent_id: str, engine: str, mode: str = "docker") -> AgentEngineDTO | None:
        """The agent's row for this engine and mode, or ``None``."""
        return self._one(
            SHAPE,
            AgentEngine.agent_id == agent_id,
            AgentEngine.engine == engine,
            AgentEngine.mode == mode,
        )

    def for_agent(self, agent_id: str) -> builtins.list[AgentEngineDTO]:
        """The agent's engines by engine and mode (an unknown agent has none)."""
        rows = self.session.execute(
            select(*SHAPE.columns)
            .where(AgentEngine.agent_id == agent_id)
            .order_by(AgentEngine.engine, AgentEngine.mode)
            .limit(MAX_AGENT_ENGINES)
        ).all()
        return SHAPE.many(rows)

    def list(
        self,
        *,
        engine: str | None = None,
        limit: int = PAGE_LIMIT,
        cursor: str | None = None,
    ) -> Page[AgentEngineDTO]:
        """The status matrix: every agent's engines, by agent id, engine and mode,
        optionally of one engine only, one page at a time."""
        return self._page_by(
            SHAPE,
            (AgentEngine.agent_id, AgentEngine.engine, AgentEngine.mode),
            *([] if engine is None else [AgentEngine.engine == engine]),
            limit=limit,
            cursor=cursor,
        )

    def report(
        self,
        agent_id: str,
        engine: str,
        *,
        mode: str = "docker",
        version: str = "",
        binary_path: str = "",
        status: str = "unknown",
        checked_at: datetime | None = None,
    ) -> AgentEngineDTO:
        """Insert or replace the agent's row for ``engine`` in ``mode`` (KITT's upsert
        on agent, engine and mode); ``last_checked`` is ``checked_at``, else now.

        An agent has at most :data:`~karr_db.limits.MAX_AGENT_ENGINES` rows: a
        new engine beyond them is refused, naming ``engine``.
        """
        errors = [
            FieldError(field, problem)
            for field, problem in (
                ("engine", "must not be empty" if not engine.strip() else None),
                ("engine", text_problem(engine, indexed=True)),
                ("mode", mode_problem(mode)),
                ("status", "must not be empty" if not status.strip() else None),
                ("checked_at", _naive(checked_at)),
            )
            if problem
        ]
        if errors:
            raise ValidationError("agent engine", errors)
        self._events.lock_log()
        if self.session.scalar(select(Agent.id).where(Agent.id == agent_id)) is None:
            raise NotFoundError("agent", agent_id)
        previous = self.find_for(agent_id, engine, mode)
        if previous is None:
            count = self.session.scalar(
                select(func.count())
                .select_from(AgentEngine)
                .where(AgentEngine.agent_id == agent_id)
            )
            if (count or 0) >= MAX_AGENT_ENGINES:
                raise ValidationError(
                    "agent engine",
                    [
                        FieldError(
                            "engine", f"is new, and the agent has {MAX_AGENT_ENGINES} already"
                        )
                    ],
                )
        values = {
            "version": version,
            "binary_path": binary_path,
            "status": status,
            "last_checked": checked_at or utcnow(),
        }
        statement = for_connection(self.session.connection()).upsert(_TABLE)
        self.session.execute(
            statement.values(
                agent_id=agent_id, engine=engine, mode=mode, **values
            ).on_conflict_do_update(
                index_elements=[AgentEngine.agent_id, AgentEngine.engine, AgentEngine.mode],
                set_=values,
            )
        )
        self._events.append(
            EventType.AGENT_ENGINE_REPORTED,
            source_id=agent_id,
            data={
                "engine": engine,
                "mode": mode,
                "from": None if previous is None else previous.status,
                "to": status,
                "version": version,
            },
        )
        row = self.find_for(agent_id, engine, mode)
        assert row is not None
        return row


def _naive(moment: datetime | None) -> str | None:
    if moment is not None and moment.utcoffset() is None:
        return "must be a timezone-aware datetime"
    return None
