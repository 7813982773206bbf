"""Agents: registration, hashed tokens, heartbeats, staleness and retirement.

Split by concern: ``dto`` (statuses, tag forms, DTOs), ``reading``
(lookups and pages), ``credentials`` (tokens) and ``heartbeats``; the repository here adds
registration, updates and retirement and inherits the rest. Every public name
is importable from here as it was from the single module.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr
from sqlalchemy import delete, func, insert, select, update

from karr_db import tokens
from karr_db.errors import (
    AlreadyExistsError,
    FieldError,
    StillReferencedError,
    ValidationError,
)
from karr_db.limits import text_problem
from karr_db.models import Agent, QuickTest, WebCampaign
from karr_db.models.types import utcnow
from karr_db.repositories._validate import checked
from karr_db.repositories.agents.credentials import AgentTokens, stored_token
from karr_db.repositories.agents.dto import (
    AGENT_STATUS_NOTES,
    AGENT_STATUSES,
    NAMED_REFERENCES,
    AgentCredentials,
    AgentDTO,
    check_columns,
    column_problems,
    format_tags,
    hardware_problems,
    parse_tags,
    passed_fields,
    stored_details,
)
from karr_db.repositories.agents.heartbeats import AgentHeartbeats
from karr_db.repositories.events import EventType
from karr_db.repositories.settings import add_defaults

__all__ = [
    "AGENT_STATUSES",
    "AGENT_STATUS_NOTES",
    "AgentCredentials",
    "AgentDTO",
    "AgentsRepository",
    "format_tags",
    "parse_tags",
]


@checked
class AgentsRepository(AgentTokens, AgentHeartbeats):
    """Agents in the caller's transaction; every change appends its event."""

    # --- registration -----------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        hostname: str | None = None,
        port: int | None = None,
        token: str | SecretStr | None = None,
        replace: bool = False,
        tags: Iterable[str] | None = None,
        notes: str | None = None,
        gpu_info: str | None = None,
        gpu_count: int | None = None,
        cpu_info: str | None = None,
        ram_gb: int | None = None,
        environment_type: str | None = None,
        fingerprint: str | None = None,
        kitt_version: str | None = None,
        cpu_arch: str | None = None,
        hardware_details: Mapping[str, Any] | None = None,
    ) -> AgentCredentials:
        """Create an agent (``online``, heartbeat now) with its token and the
        default settings (:data:`~karr_db.repositories.settings.AGENT_SETTING_DEFAULTS`).

        ``token``: the secret the agent generated and will send (KITT's agents
        do); it is stored only as its hash and refused, with the field named,
        when empty or too weak (see :func:`karr_db.tokens.token_problem`).
        Without it a token is generated and returned this once.

        ``replace``: an agent of that name already registered is updated
        instead of refused with :class:`AlreadyExistsError` -- the explicit
        upsert of an agent that re-registers after a restart. Its id,
        ``registered_at`` and history stay; ``hostname``, ``port`` and any other
        field passed are updated (``None`` leaves one as it is), the token is
        replaced (the old one stops verifying at commit), the status becomes
        ``online`` and the heartbeat now. Either way one ``agent.registered``
        event is appended (``"replaced": true`` for an update). Two processes
        registering the same name are serialised by the event-log lock, so
        exactly one creates the agent.
        """
        errors: builtins.list[FieldError] = []
        if not name or not name.strip():
            errors.append(FieldError("name", "must not be empty"))
        if not errors:
            problem = text_problem(name, indexed=True)
            if problem:
                errors.append(FieldError("name", problem))
        errors.extend(column_problems(port=port, gpu_count=gpu_count, ram_gb=ram_gb))
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if secret is not None:
            problem = tokens.token_problem(secret)
            if problem:
                errors.append(FieldError("token", problem))
        errors.extend(hardware_problems(hardware_details))
        if errors:
            raise ValidationError("agent", errors)
        stored_tags = format_tags(tags) if tags is not None else None
        secret = secret if secret is not None else tokens.generate_token()
        hardware = passed_fields(
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
        described = passed_fields(hostname=hostname, port=port, notes=notes)
        if tags is not None:
            described["tags"] = stored_tags
        self._events.lock_log()
        existing = self.session.scalar(select(Agent.id).where(Agent.name == name))
        if existing is not None and not replace:
            raise AlreadyExistsError("agent", name)
        now = utcnow()
        if existing is None:
            agent_id = str(uuid.uuid4())
            if self._refused(
                insert(Agent).values(
                    id=agent_id,
                    name=name,
                    hostname=hostname,
                    port=port,
                    **stored_token(secret),
                    status="online",
                    last_heartbeat=now,
                    registered_at=now,
                    notes=notes,
                    tags=stored_tags,
                    **hardware,
                )
            ):
                # An insert by a writer that does not take the event-log lock.
                existing = self.session.scalar(select(Agent.id).where(Agent.name == name))
                if existing is None or not replace:
                    raise AlreadyExistsError("agent", name)
        if existing is not None:
            agent_id = existing
            self.session.execute(
                update(Agent)
                .where(Agent.id == agent_id)
                .values(
                    **stored_token(secret),
                    status="online",
                    last_heartbeat=now,
                    **described,
                    **hardware,
                )
                .execution_options(synchronize_session=False)
            )
        add_defaults(self.session, agent_id)
        agent = self.get(agent_id)
        data: dict[str, Any] = {
            "name": name,
            "hostname": agent.hostname,
            "port": agent.port,
            "tags": agent.tags,
        }
        if existing is not None:
            data["replaced"] = True
        self._events.append(EventType.AGENT_REGISTERED, source_id=agent_id, data=data)
        return AgentCredentials(agent=agent, token=SecretStr(secret))

    def update(
        self,
        agent_id: str,
        *,
        hostname: str | None = None,
        port: int | None = None,
        notes: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> AgentDTO:
        """Change descriptive fields; ``None`` leaves a field as it is."""
        check_columns(port=port)
        values: dict[str, Any] = passed_fields(hostname=hostname, port=port, notes=notes)
        if tags is not None:
            values["tags"] = format_tags(tags)
        self._events.lock_log()
        self.get(agent_id)
        if values:
            self.session.execute(update(Agent).where(Agent.id == agent_id).values(**values))
            self._events.append(
                EventType.AGENT_UPDATED, source_id=agent_id, data={"fields": sorted(values)}
            )
        return self.get(agent_id)

    # --- retirement -------------------------------------------------------------

    def retire(self, agent_id: str) -> None:
        """Delete an agent that nothing references any more.

        Campaigns and quick tests keep their agent: while any reference it,
        :class:`StillReferencedError` names them and nothing is deleted.
        """
        self._events.lock_log()
        agent = self.get(agent_id)
        self._refuse_if_referenced(agent_id)
        if self._refused(delete(Agent).where(Agent.id == agent_id)):
            # A reference written by something other than this layer.
            self._refuse_if_referenced(agent_id)
            raise StillReferencedError("agent", agent_id, ["another table"])
        self._events.append(EventType.AGENT_RETIRED, source_id=agent_id, data={"name": agent.name})

    def _refuse_if_referenced(self, agent_id: str) -> None:
        referenced_by: list[str] = []
        for table, model in (("web_campaigns", WebCampaign), ("quick_tests", QuickTest)):
            count = self.session.scalar(
                select(func.count()).select_from(model).where(model.agent_id == agent_id)
            )
            if count:
                ids = self.session.scalars(
                    select(model.id)
                    .where(model.agent_id == agent_id)
                    .order_by(model.id)
                    .limit(NAMED_REFERENCES)
                ).all()
                more = ", ..." if count > len(ids) else ""
                referenced_by.append(f"{count} {table} ({', '.join(ids)}{more})")
        if referenced_by:
            raise StillReferencedError("agent", agent_id, referenced_by)
