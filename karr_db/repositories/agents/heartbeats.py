"""Agent heartbeats, status changes and marking stale agents offline."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from karr_db.errors import (
    NotFoundError,
    ValidationError,
)
from karr_db.models import Agent
from karr_db.models.types import utcnow
from karr_db.repositories.agents.dto import (
    AgentDTO,
    check_columns,
    check_now,
    hardware_problems,
    passed_fields,
    stored_details,
)
from karr_db.repositories.agents.reading import AgentReads


class AgentHeartbeats(AgentReads):
    """Liveness: every status change appends its ``agent.status_changed`` event."""

    # --- heartbeats and status -----------------------------------------------------

    def heartbeat(
        self,
        agent_id: str,
        *,
        status: str = "online",
        gpu_info: str | None = None,
        gpu_count: int | None = None,
        cpu_info: str | None = None,
        ram_gb: int | None = None,
        environment_type: str | None = None,
        fingerprint: str | None = None,
        kitt_version: str | None = None,
        cpu_arch: str | None = None,
        hardware_details: Mapping[str, Any] | None = None,
    ) -> AgentDTO:
        """Record a heartbeat: ``last_heartbeat`` (now, UTC), status and the
        hardware fields passed, in one UPDATE; a status change is also an event."""
        self._check_status(status)
        check_columns(gpu_count=gpu_count, ram_gb=ram_gb)
        problems = hardware_problems(cpu_arch=cpu_arch, hardware_details=hardware_details)
        if problems:
            raise ValidationError("agent", problems)
        self._events.lock_log()
        previous = self.session.scalar(
            select(Agent.status).where(Agent.id == agent_id).with_for_update()
        )
        values = passed_fields(
            gpu_info=gpu_info,
            gpu_count=gpu_count,
            cpu_info=cpu_info,
            ram_gb=ram_gb,
            environment_type=environment_type,
            fingerprint=fingerprint,
            kitt_version=kitt_version,
            cpu_arch=cpu_arch,
            hardware_details=stored_details(hardware_details),
        )
        updated = self.session.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(last_heartbeat=utcnow(), status=status, **values)
            .returning(Agent.id)
        ).one_or_none()
        if updated is None:
            raise NotFoundError("agent", agent_id)
        if previous != status:
            self._status_event(agent_id, previous, status, reason="heartbeat")
        return self.get(agent_id)

    def set_status(self, agent_id: str, status: str) -> AgentDTO:
        """Set the status without a heartbeat (for example ``busy`` while it runs work)."""
        self._check_status(status)
        self._events.lock_log()
        previous = self.get(agent_id).status
        if previous != status:
            self.session.execute(update(Agent).where(Agent.id == agent_id).values(status=status))
            self._status_event(agent_id, previous, status, reason="set")
        return self.get(agent_id)

    def mark_stale_offline(
        self, threshold: timedelta, *, now: datetime | None = None
    ) -> builtins.list[AgentDTO]:
        """Mark agents whose heartbeat is older than ``threshold`` offline.

        Returns the agents it changed (already-offline agents are left alone),
        each with an ``agent.status_changed`` event.
        """
        check_now(now)
        self._events.lock_log()
        stale = self._stale_clause(threshold, now)
        candidates = self.session.execute(
            select(Agent.id, Agent.status).where(
                stale, or_(Agent.status.is_(None), Agent.status != "offline")
            )
        ).all()
        changed: builtins.list[AgentDTO] = []
        for agent_id, previous in candidates:
            self.session.execute(
                update(Agent).where(Agent.id == agent_id, stale).values(status="offline")
            )
            self._status_event(agent_id, previous, "offline", reason="stale")
            changed.append(self.get(agent_id))
        return sorted(changed, key=lambda a: (a.name or "", a.id))
