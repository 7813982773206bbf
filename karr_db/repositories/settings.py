"""Settings KITT's dashboard keeps: the web UI's key-value settings, and each agent's.

Web settings (``web_settings``, KITT's schema 3) are free keys with text values;
KITT's own defaults for keys it never stored (``devon_tab_visible``) belong to
KITT's settings service, not to the data layer, so :meth:`WebSettingsRepository.find`
answers ``None`` for them.

Agent settings (``agent_settings``, KITT's schema 8) are the six keys of
:data:`AGENT_SETTING_DEFAULTS`, which every agent gets when it registers (and
every agent adopted from an older KITT database, by the schema 8 revision); an
agent's heartbeat hands them to it. They go with the agent: retiring it deletes
them (``ON DELETE CASCADE``). Values are text, as KITT stores them; the two that
KITT's agents parse (``auto_cleanup``, ``heartbeat_interval_s``) are checked so
that an agent never receives one it cannot read.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from karr_db.dialects import for_connection
from karr_db.errors import FieldError, NotFoundError, ValidationError
from karr_db.limits import MAX_SETTING_BYTES, MAX_WEB_SETTINGS, sized_text_problem, text_problem
from karr_db.models import AGENT_SETTING_DEFAULTS as _DEFAULTS
from karr_db.models import Agent, AgentSetting, WebSetting
from karr_db.repositories._base import Repository
from karr_db.repositories._common import (
    DTO,
    PAGE_LIMIT,
    Page,
    RowShape,
    found,
)
from karr_db.repositories._validate import checked, fields
from karr_db.repositories.events import EventType

__all__ = [
    "AGENT_SETTING_DEFAULTS",
    "AgentSettingsDTO",
    "AgentSettingsRepository",
    "WebSettingDTO",
    "WebSettingsRepository",
]

#: The settings every agent has, with the values a new agent starts with (KITT's);
#: a read-only view of the models' table, which the schema 8 revision uses too.
AGENT_SETTING_DEFAULTS: Mapping[str, str] = MappingProxyType(_DEFAULTS)
#: The longest heartbeat interval an agent may be told, in seconds (a day).
MAX_HEARTBEAT_INTERVAL_S = 86_400


class WebSettingDTO(DTO):
    """One web UI setting."""

    key: str
    value: str


class AgentSettingsDTO(DTO):
    """An agent's settings as stored, by key."""

    agent_id: str
    values: dict[str, str]


_WEB_TABLE: Table = WebSetting.__table__  # type: ignore[assignment]
_AGENT_TABLE: Table = AgentSetting.__table__  # type: ignore[assignment]

_WEB_SHAPE = RowShape(WebSettingDTO, {"key": WebSetting.key, "value": WebSetting.value})


def _value_problem(value: object) -> str | None:
    return sized_text_problem(value, MAX_SETTING_BYTES)


@checked
class WebSettingsRepository(Repository):
    """Web UI settings in the caller's transaction; every change appends its event."""

    def find(self, key: str) -> WebSettingDTO | None:
        """The setting stored under ``key``, or ``None``."""
        return self._one(_WEB_SHAPE, WebSetting.key == key)

    def get(self, key: str) -> WebSettingDTO:
        """The setting stored under ``key``; :class:`NotFoundError` naming it."""
        return found("web setting", key, self.find(key))

    def all(self) -> dict[str, str]:
        """Every stored setting by key (at most :data:`~karr_db.limits.MAX_WEB_SETTINGS`)."""
        rows = self.session.execute(
            select(WebSetting.key, WebSetting.value).order_by(WebSetting.key)
        )
        return {key: value for key, value in rows}

    def list(self, *, limit: int = PAGE_LIMIT, cursor: str | None = None) -> Page[WebSettingDTO]:
        """Settings by key, one page at a time."""
        return self._page_by(_WEB_SHAPE, (WebSetting.key,), limit=limit, cursor=cursor)

    def set(self, key: str, value: str) -> WebSettingDTO:
        """Store ``value`` under ``key`` (insert or replace).

        The event says only when the value changed; a new key beyond
        :data:`~karr_db.limits.MAX_WEB_SETTINGS` is refused, naming ``key``.
        """
        fields(
            "web setting",
            [
                (
                    "key",
                    "must not be empty" if not key.strip() else text_problem(key, indexed=True),
                ),
                ("value", _value_problem(value)),
            ],
        )
        self._events.lock_log()
        previous = self.find(key)
        if previous is not None and previous.value == value:
            return previous
        if previous is None:
            count = self.session.scalar(select(func.count()).select_from(WebSetting)) or 0
            if count >= MAX_WEB_SETTINGS:
                raise ValidationError(
                    "web setting",
                    [FieldError("key", f"is new, and {MAX_WEB_SETTINGS} settings exist already")],
                )
        statement = for_connection(self.session.connection()).upsert(_WEB_TABLE)
        self.session.execute(
            statement.values(key=key, value=value).on_conflict_do_update(
                index_elements=[WebSetting.key], set_={"value": value}
            )
        )
        self._events.append(
            EventType.WEB_SETTING_CHANGED,
            source_id=key,
            data={"from": None if previous is None else previous.value, "to": value},
        )
        return WebSettingDTO(key=key, value=value)

    def delete(self, key: str) -> None:
        """Remove the setting (KITT then falls back to its default); NotFoundError if none."""
        self._events.lock_log()
        gone = self.session.execute(
            delete(WebSetting).where(WebSetting.key == key).returning(WebSetting.value)
        ).one_or_none()
        if gone is None:
            raise NotFoundError("web setting", key)
        self._events.append(EventType.WEB_SETTING_DELETED, source_id=key, data={"from": gone[0]})


def agent_setting_problems(values: object) -> builtins.list[FieldError]:
    """Why ``values`` cannot become agent settings: unknown keys, text KITT's agents cannot read."""
    if not isinstance(values, Mapping):
        return [FieldError("values", "must be a mapping of setting names to text")]
    errors: builtins.list[FieldError] = []
    for key, value in values.items():
        where = f"values.{key}"
        if key not in AGENT_SETTING_DEFAULTS:
            known = ", ".join(AGENT_SETTING_DEFAULTS)
            errors.append(FieldError(f"values.{key!s}", f"is not an agent setting ({known})"))
            continue
        problem = _value_problem(value)
        if problem is None and key == "auto_cleanup" and value not in ("true", "false"):
            problem = "must be 'true' or 'false'"
        if problem is None and key == "heartbeat_interval_s":
            number = int(value) if value.isascii() and value.isdigit() else 0
            if not 1 <= number <= MAX_HEARTBEAT_INTERVAL_S:
                problem = f"must be a whole number of seconds from 1 to {MAX_HEARTBEAT_INTERVAL_S}"
        if problem:
            errors.append(FieldError(where, problem))
    return errors


@checked
class AgentSettingsRepository(Repository):
    """Agents' settings in the caller's transaction; every change appends its event."""

    def find(self, agent_id: str) -> AgentSettingsDTO | None:
        """The agent's stored settings, or ``None`` when there is no such agent."""
        if self.session.scalar(select(Agent.id).where(Agent.id == agent_id)) is None:
            return None
        rows = self.session.execute(
            select(AgentSetting.key, AgentSetting.value)
            .where(AgentSetting.agent_id == agent_id)
            .order_by(AgentSetting.key)
        )
        return AgentSettingsDTO(agent_id=agent_id, values={key: value for key, value in rows})

    def get(self, agent_id: str) -> AgentSettingsDTO:
        """The agent's stored settings; :class:`NotFoundError` naming an unknown agent."""
        return found("agent", agent_id, self.find(agent_id))

    def update(self, agent_id: str, values: Mapping[str, str]) -> AgentSettingsDTO:
        """Set some of the agent's settings; keys not given keep their values.

        Unknown keys and unreadable values are refused with every field named,
        and nothing is written.
        """
        errors = agent_setting_problems(values)
        if errors:
            raise ValidationError("agent settings", errors)
        self._events.lock_log()
        current = self.get(agent_id)
        changed = {k: v for k, v in values.items() if current.values.get(k) != v}
        if changed:
            self._upsert(agent_id, changed)
            self._events.append(
                EventType.AGENT_SETTINGS_CHANGED,
                source_id=agent_id,
                data={"changed": changed},
            )
        return self.get(agent_id)

    def ensure_defaults(self, agent_id: str) -> AgentSettingsDTO:
        """Give the agent every default setting it lacks (what registration does);
        stored values stay. An event names the keys added, if any."""
        self._events.lock_log()
        current = self.get(agent_id)
        missing = {k: v for k, v in AGENT_SETTING_DEFAULTS.items() if k not in current.values}
        if missing:
            add_defaults(self.session, agent_id, missing)
            self._events.append(
                EventType.AGENT_SETTINGS_CHANGED,
                source_id=agent_id,
                data={"changed": missing, "defaults": True},
            )
        return self.get(agent_id)

    def _upsert(self, agent_id: str, values: Mapping[str, str]) -> None:
        statement = for_connection(self.session.connection()).upsert(_AGENT_TABLE)
        statement = statement.values(
            [{"agent_id": agent_id, "key": k, "value": v} for k, v in values.items()]
        )
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[AgentSetting.agent_id, AgentSetting.key],
                set_={"value": statement.excluded.value},
            )
        )


def add_defaults(
    session: Session, agent_id: str, values: Mapping[str, str] = AGENT_SETTING_DEFAULTS
) -> None:
    """Insert the default settings an agent lacks, keeping any it has (no event:
    the caller's own event covers it)."""
    statement = for_connection(session.connection()).upsert(_AGENT_TABLE)
    session.execute(
        statement.values(
            [{"agent_id": agent_id, "key": k, "value": v} for k, v in values.items()]
        ).on_conflict_do_nothing(index_elements=[AgentSetting.agent_id, AgentSetting.key])
    )
