"""Agents: registration, hashed tokens, heartbeats, staleness and retirement.

Statuses: the reference's ``online``, ``offline`` and ``busy``, and beyond it
the ``idle`` and ``running`` that KITT's agents send with their heartbeats (the
earlier system stored whatever a heartbeat said, ``idle`` by default). Anything
else an older database holds is returned as it is. Tags are stored
comma-separated as the reference says; rows written by the earlier system may
hold a JSON list, and both read the same.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, InternalError, OperationalError
from sqlalchemy.orm import Session

from karr_db import tokens
from karr_db.errors import (
    AlreadyExistsError,
    FieldError,
    InvalidTokenError,
    NotFoundError,
    StillReferencedError,
    ValidationError,
)
from karr_db.limits import earlier, moment_problem, text_problem
from karr_db.models import Agent, QuickTest, WebCampaign
from karr_db.models.types import utcnow
from karr_db.repositories._common import (
    DTO,
    PAGE_LIMIT,
    Page,
    RowShape,
    check_limit,
    decode_cursor,
    encode_cursor,
    found,
)
from karr_db.repositories._validate import checked, fields, int32
from karr_db.repositories.events import EventsRepository, EventType

__all__ = [
    "AGENT_STATUSES",
    "AGENT_STATUS_NOTES",
    "AgentCredentials",
    "AgentDTO",
    "AgentsRepository",
    "format_tags",
    "parse_tags",
]

#: The statuses this layer writes: the reference's three, then (beyond the
#: reference) the ones KITT's agents report in heartbeats.
AGENT_STATUSES = ("online", "offline", "busy", "idle", "running")
#: What each status means, and whether the reference names it.
AGENT_STATUS_NOTES: dict[str, tuple[bool, str]] = {
    "online": (True, "registered (or re-registered) and heartbeating"),
    "offline": (True, "marked so when its heartbeat went stale"),
    "busy": (True, "working, set by the layer's caller"),
    "idle": (False, "heartbeat says: waiting for work (KITT's default)"),
    "running": (False, "heartbeat says: running a benchmark"),
}
#: How many referencing ids a :class:`StillReferencedError` names per table.
_NAMED_REFERENCES = 5


def parse_tags(value: str | None) -> list[str]:
    """Tags from either stored form: ``gpu,a100`` or the legacy ``["gpu", "a100"]``."""
    if value is None or not value.strip():
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(item).strip() for item in items if str(item).strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


def format_tags(tags: Iterable[str]) -> str | None:
    """The stored (comma-separated) form; duplicates dropped, order kept."""
    clean: list[str] = []
    errors: list[FieldError] = []
    if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        raise ValidationError("agent", [FieldError("tags", "must be a list of strings")])
    for index, tag in enumerate(tags):
        stripped = tag.strip() if isinstance(tag, str) else ""
        problem = text_problem(tag) if isinstance(tag, str) else None
        if problem:
            errors.append(FieldError(f"tags.{index}", problem))
        elif not stripped:
            errors.append(FieldError(f"tags.{index}", "must be a non-empty string"))
        elif "," in stripped:
            errors.append(FieldError(f"tags.{index}", "must not contain a comma"))
        elif stripped not in clean:
            clean.append(stripped)
    if errors:
        raise ValidationError("agent", errors)
    return ",".join(clean) if clean else None


class AgentDTO(DTO):
    """An agent as callers see it: never its token, only whether it has one."""

    id: str
    name: str | None
    hostname: str | None
    port: int | None
    status: str | None
    gpu_info: str | None
    gpu_count: int | None
    cpu_info: str | None
    ram_gb: int | None
    environment_type: str | None
    fingerprint: str | None
    kitt_version: str | None
    last_heartbeat: datetime | None
    registered_at: datetime | None
    notes: str | None
    tags: list[str]
    has_token: bool

    def is_stale(self, threshold: timedelta, *, now: datetime | None = None) -> bool:
        """No heartbeat at all, or none within ``threshold`` of ``now``."""
        if self.last_heartbeat is None:
            return True
        return self.last_heartbeat < (now or utcnow()) - threshold


class AgentCredentials(DTO):
    """An agent with its new token: the only time the secret leaves the layer.

    ``token`` is a :class:`~pydantic.SecretStr`, so ``repr``, ``str`` and
    ``model_dump`` show ``**********``; call ``token.get_secret_value()``.
    """

    agent: AgentDTO
    token: SecretStr


#: How an agent is read: tags parsed from either stored form, and of the token
#: only whether there is one.
_SHAPE = RowShape(
    AgentDTO,
    {
        **{
            name: getattr(Agent, name)
            for name in AgentDTO.model_fields
            if name not in ("tags", "has_token")
        },
        "tags": Agent.tags,
        "has_token": Agent.token,
    },
    convert={"tags": parse_tags, "has_token": bool},
)


def _read_name_key(payload: Any) -> tuple[str | None, str]:
    name, key = payload
    if not isinstance(key, str) or not (name is None or isinstance(name, str)):
        raise ValueError("bad cursor fields")
    return name, key


def _hardware(**values: Any) -> dict[str, Any]:
    """The hardware fields a caller actually passed (``None`` means unchanged)."""
    return {name: value for name, value in values.items() if value is not None}


def _check_columns(
    *, port: int | None = None, gpu_count: int | None = None, ram_gb: int | None = None
) -> None:
    """INTEGER columns hold 32 bits on PostgreSQL; SQLite would keep 64, so both refuse more."""
    fields(
        "agent",
        [
            ("port", None if port is None or 0 < port < 65536 else "must be between 1 and 65535"),
            ("gpu_count", None if gpu_count is None else int32(gpu_count)),
            ("ram_gb", None if ram_gb is None else int32(ram_gb)),
        ],
    )


def _check_now(now: datetime | None) -> None:
    fields("agent query", [("now", None if now is None else moment_problem(now))])


def _after_name(name: str | None, agent_id: str) -> Any:
    """Agents strictly after (name, id) in the (name NULLS FIRST, id) order."""
    if name is None:
        return or_(Agent.name.is_not(None), and_(Agent.name.is_(None), Agent.id > agent_id))
    return or_(Agent.name > name, and_(Agent.name == name, Agent.id > agent_id))


@checked
class AgentsRepository:
    """Agents in the caller's transaction; every change appends its event."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._events = EventsRepository(session)

    # --- reading ---------------------------------------------------------------

    def find(self, agent_id: str) -> AgentDTO | None:
        """The agent with this id, or ``None``."""
        row = self.session.execute(
            select(*_SHAPE.columns).where(Agent.id == agent_id)
        ).one_or_none()
        return None if row is None else _SHAPE.one(row)

    def get(self, agent_id: str) -> AgentDTO:
        """The agent with this id; :class:`NotFoundError` naming it when there is none."""
        return found("agent", agent_id, self.find(agent_id))

    def find_by_name(self, name: str) -> AgentDTO | None:
        """The agent registered under ``name``, or ``None``."""
        row = self.session.execute(select(*_SHAPE.columns).where(Agent.name == name)).one_or_none()
        return None if row is None else _SHAPE.one(row)

    def get_by_name(self, name: str) -> AgentDTO:
        """The agent registered under ``name``; :class:`NotFoundError` naming it."""
        return found("agent", name, self.find_by_name(name))

    def list(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        stale_after: timedelta | None = None,
        now: datetime | None = None,
        limit: int = PAGE_LIMIT,
        cursor: str | None = None,
    ) -> Page[AgentDTO]:
        """Agents by name (nameless legacy rows first), one page at a time;
        filters: exact status, exact tag, and staleness.

        With ``stale_after``, only agents whose last heartbeat is missing or
        older than ``now - stale_after``. Reading never writes: marking stale
        agents offline is :meth:`mark_stale_offline`. ``limit`` defaults to the
        largest page because this returned every agent before it returned
        pages; a fleet beyond that pages on with ``cursor=page.next_cursor``.
        """
        _check_now(now)
        check_limit(limit)
        conditions: builtins.list[Any] = []
        if status is not None:
            conditions.append(Agent.status == status)
        wanted = None if tag is None else tag.strip()
        if wanted is not None:
            # Narrow in SQL; the exact match (``gpu`` is not ``gpu2``) happens
            # below, because the column may hold either stored form.
            conditions.append(Agent.tags.contains(wanted, autoescape=True))
        if stale_after is not None:
            conditions.append(self._stale_clause(stale_after, now))
        after = None if cursor is None else decode_cursor(cursor, _read_name_key)
        items: builtins.list[AgentDTO] = []
        while True:
            query = select(*_SHAPE.columns).where(*conditions)
            if after is not None:
                query = query.where(_after_name(*after))
            rows = self.session.execute(
                query.order_by(Agent.name.asc().nulls_first(), Agent.id).limit(limit + 1)
            ).all()
            for row in rows:
                agent = _SHAPE.one(row)
                if wanted is not None and wanted not in agent.tags:
                    after = (agent.name, agent.id)
                    continue
                if len(items) == limit:
                    last = items[-1]
                    return Page[AgentDTO](
                        items=items, next_cursor=encode_cursor([last.name, last.id])
                    )
                items.append(agent)
                after = (agent.name, agent.id)
            if len(rows) <= limit:
                return Page[AgentDTO](items=items)

    @staticmethod
    def _stale_clause(threshold: timedelta, now: datetime | None) -> Any:
        # last_heartbeat is fixed-width UTC text on both dialects, so comparing
        # the text compares the times.
        cutoff = earlier(now or utcnow(), threshold)
        return or_(Agent.last_heartbeat.is_(None), Agent.last_heartbeat < cutoff)

    # --- registration and tokens -------------------------------------------------

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
    ) -> AgentCredentials:
        """Create an agent (``online``, heartbeat now) with its token.

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
        if port is not None and not 0 < port < 65536:
            errors.append(FieldError("port", "must be between 1 and 65535"))
        errors.extend(
            FieldError(field, problem)
            for field, problem in (
                ("gpu_count", None if gpu_count is None else int32(gpu_count)),
                ("ram_gb", None if ram_gb is None else int32(ram_gb)),
            )
            if problem
        )
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if secret is not None:
            problem = tokens.token_problem(secret)
            if problem:
                errors.append(FieldError("token", problem))
        if errors:
            raise ValidationError("agent", errors)
        stored_tags = format_tags(tags) if tags is not None else None
        secret = secret if secret is not None else tokens.generate_token()
        hardware = _hardware(
            gpu_info=gpu_info,
            gpu_count=gpu_count,
            cpu_info=cpu_info,
            ram_gb=ram_gb,
            environment_type=environment_type,
            fingerprint=fingerprint,
            kitt_version=kitt_version,
        )
        described = _hardware(hostname=hostname, port=port, notes=notes)
        if tags is not None:
            described["tags"] = stored_tags
        self._events.lock_log()
        existing = self.session.scalar(select(Agent.id).where(Agent.name == name))
        if existing is not None and not replace:
            raise AlreadyExistsError("agent", name)
        now = utcnow()
        if existing is None:
            agent_id = str(uuid.uuid4())
            try:
                with self.session.begin_nested():
                    self.session.execute(
                        insert(Agent).values(
                            id=agent_id,
                            name=name,
                            hostname=hostname,
                            port=port,
                            token=tokens.hash_token(secret),
                            status="online",
                            last_heartbeat=now,
                            registered_at=now,
                            notes=notes,
                            tags=stored_tags,
                            **hardware,
                        )
                    )
            except IntegrityError:
                # An insert by a writer that does not take the event-log lock.
                existing = self.session.scalar(select(Agent.id).where(Agent.name == name))
                if existing is None or not replace:
                    raise AlreadyExistsError("agent", name) from None
        if existing is not None:
            agent_id = existing
            self.session.execute(
                update(Agent)
                .where(Agent.id == agent_id)
                .values(
                    token=tokens.hash_token(secret),
                    status="online",
                    last_heartbeat=now,
                    **described,
                    **hardware,
                )
                .execution_options(synchronize_session=False)
            )
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

    def rotate_token(self, agent_id: str) -> AgentCredentials:
        """Replace the agent's token; the old one stops verifying at commit."""
        self._events.lock_log()
        token = tokens.generate_token()
        updated = self.session.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(token=tokens.hash_token(token))
            .returning(Agent.id)
        ).one_or_none()
        if updated is None:
            raise NotFoundError("agent", agent_id)
        self._events.append(EventType.AGENT_TOKEN_ROTATED, source_id=agent_id, data={})
        return AgentCredentials(agent=self.get(agent_id), token=SecretStr(token))

    def verify_token(self, agent_id: str, token: str) -> bool:
        """Whether ``token`` is the agent's; upgrades a legacy plaintext token on success."""
        stored = self.session.scalar(select(Agent.token).where(Agent.id == agent_id))
        if not tokens.matches(stored, token):
            return False
        assert stored is not None
        if not tokens.is_hashed(stored):
            self._upgrade_legacy_token(agent_id, stored)
        return True

    def authenticate(self, agent_id: str, token: str) -> AgentDTO:
        """The agent, if ``token`` is its own; else :class:`InvalidTokenError`.

        An unknown agent fails the same way, so a caller cannot probe for ids.
        """
        if not self.verify_token(agent_id, token):
            raise InvalidTokenError(agent_id)
        return self.get(agent_id)

    def _upgrade_legacy_token(self, agent_id: str, stored: str) -> None:
        # Conditional on the value just compared, so a rotation that committed
        # in between is never overwritten. Best effort: if SQLite cannot
        # upgrade this transaction's read lock (or the unit of work is read
        # only), the next use tries again.
        try:
            self._events.lock_log()  # the one lock order, even for this quiet write
            with self.session.begin_nested():
                self.session.execute(
                    update(Agent)
                    .where(Agent.id == agent_id, Agent.token == stored)
                    .values(token=tokens.hash_token(stored))
                )
        except (OperationalError, InternalError):  # InternalError: PostgreSQL READ ONLY
            pass

    def hash_legacy_tokens(self) -> int:
        """Replace every plaintext token left by the earlier system with its hash.

        For use right after adopting an older database; returns how many
        tokens were replaced. Verification keeps working either way.
        """
        self._events.lock_log()
        legacy = self.session.execute(
            select(Agent.id, Agent.token).where(
                Agent.token.is_not(None),
                Agent.token != "",
                ~Agent.token.startswith(tokens.HASH_PREFIX, autoescape=True),
            )
        ).all()
        for agent_id, stored in legacy:
            assert stored is not None
            self.session.execute(
                update(Agent)
                .where(Agent.id == agent_id, Agent.token == stored)
                .values(token=tokens.hash_token(stored))
            )
        return len(legacy)

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
    ) -> AgentDTO:
        """Record a heartbeat: ``last_heartbeat`` (now, UTC), status and the
        hardware fields passed, in one UPDATE; a status change is also an event."""
        self._check_status(status)
        _check_columns(gpu_count=gpu_count, ram_gb=ram_gb)
        self._events.lock_log()
        previous = self.session.scalar(
            select(Agent.status).where(Agent.id == agent_id).with_for_update()
        )
        values = _hardware(
            gpu_info=gpu_info,
            gpu_count=gpu_count,
            cpu_info=cpu_info,
            ram_gb=ram_gb,
            environment_type=environment_type,
            fingerprint=fingerprint,
            kitt_version=kitt_version,
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
        _check_now(now)
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
        _check_columns(port=port)
        values: dict[str, Any] = _hardware(hostname=hostname, port=port, notes=notes)
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
        try:
            with self.session.begin_nested():
                self.session.execute(delete(Agent).where(Agent.id == agent_id))
        except IntegrityError:
            # A reference written by something other than this layer.
            self._refuse_if_referenced(agent_id)
            raise StillReferencedError("agent", agent_id, ["another table"]) from None
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
                    .limit(_NAMED_REFERENCES)
                ).all()
                more = ", ..." if count > len(ids) else ""
                referenced_by.append(f"{count} {table} ({', '.join(ids)}{more})")
        if referenced_by:
            raise StillReferencedError("agent", agent_id, referenced_by)

    # --- helpers --------------------------------------------------------------

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in AGENT_STATUSES:
            raise ValidationError(
                "agent status",
                [FieldError("status", f"must be one of {', '.join(AGENT_STATUSES)}")],
            )

    def _status_event(self, agent_id: str, previous: str | None, status: str, reason: str) -> None:
        self._events.append(
            EventType.AGENT_STATUS_CHANGED,
            source_id=agent_id,
            data={"from": previous, "to": status, "reason": reason},
        )
