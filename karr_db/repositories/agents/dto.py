"""What an agent looks like to callers, and the forms its fields are stored in.

Statuses: the reference's ``online``, ``offline`` and ``busy``, and beyond it
the ``idle`` and ``running`` that KITT's agents send with their heartbeats (the
earlier system stored whatever a heartbeat said, ``idle`` by default). Anything
else an older database holds is returned as it is. Tags are stored
comma-separated as the reference says; rows written by the earlier system may
hold a JSON list, and both read the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import and_, func, or_

from karr_db.documents import json_object_problems
from karr_db.errors import (
    FieldError,
    ValidationError,
)
from karr_db.limits import MAX_CONFIG_BYTES, moment_problem, text_problem
from karr_db.models import Agent
from karr_db.models.types import utcnow
from karr_db.repositories._common import (
    DTO,
    RowShape,
)
from karr_db.repositories._validate import fields, int32

__all__ = [
    "AGENT_STATUSES",
    "AGENT_STATUS_NOTES",
    "AgentCredentials",
    "AgentDTO",
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
NAMED_REFERENCES = 5


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
    cpu_arch: str | None = None
    #: The agent's detailed hardware report (a JSON object), ``None`` when it sent none.
    hardware_details: dict[str, Any] | None = None
    #: The first characters of the agent's token, to tell tokens apart on a screen.
    token_prefix: str | None = None

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


def parse_details(value: Any) -> dict[str, Any] | None:
    """An agent's hardware details as an object; ``None`` when it reported none
    (KITT's ``''``) or the stored JSON is not an object."""
    return value if isinstance(value, dict) else None


def stored_details(details: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Hardware details as stored (a JSON object); ``None`` leaves them as they are."""
    return None if details is None else dict(details)


def hardware_problems(hardware_details: Mapping[str, Any] | None) -> list[FieldError]:
    """Why a hardware report cannot be stored (``None``: none sent, nothing to refuse)."""
    if hardware_details is None:
        return []
    return json_object_problems(hardware_details, "hardware_details", max_bytes=MAX_CONFIG_BYTES)


#: How an agent is read: tags parsed from either stored form, hardware details
#: only when they are an object, and of the token only whether there is one.
SHAPE = RowShape(
    AgentDTO,
    {
        **{
            name: getattr(Agent, name)
            for name in AgentDTO.model_fields
            if name not in ("tags", "has_token")
        },
        "tags": Agent.tags,
        "has_token": func.coalesce(func.nullif(Agent.token_hash, ""), Agent.token),
    },
    convert={"tags": parse_tags, "has_token": bool, "hardware_details": parse_details},
)


def read_name_key(payload: Any) -> tuple[str | None, str]:
    name, key = payload
    if not isinstance(key, str) or not (name is None or isinstance(name, str)):
        raise ValueError("bad cursor fields")
    return name, key


def passed_fields(**values: Any) -> dict[str, Any]:
    """The hardware fields a caller actually passed (``None`` means unchanged)."""
    return {name: value for name, value in values.items() if value is not None}


def column_problems(
    *, port: int | None = None, gpu_count: int | None = None, ram_gb: int | None = None
) -> list[FieldError]:
    """The integer fields' bounds: a port's, and 32 bits for the others, which INTEGER
    columns hold on PostgreSQL (SQLite would keep 64, so both refuse more)."""
    return [
        FieldError(field, problem)
        for field, problem in (
            ("port", None if port is None or 0 < port < 65536 else "must be between 1 and 65535"),
            ("gpu_count", None if gpu_count is None else int32(gpu_count)),
            ("ram_gb", None if ram_gb is None else int32(ram_gb)),
        )
        if problem
    ]


def check_columns(
    *, port: int | None = None, gpu_count: int | None = None, ram_gb: int | None = None
) -> None:
    """Refuse the integer fields given out of their bounds (see :func:`column_problems`)."""
    problems = column_problems(port=port, gpu_count=gpu_count, ram_gb=ram_gb)
    if problems:
        raise ValidationError("agent", problems)


def check_now(now: datetime | None) -> None:
    fields("agent query", [("now", None if now is None else moment_problem(now))])


def after_name(name: str | None, agent_id: str) -> Any:
    """Agents strictly after (name, id) in the (name NULLS FIRST, id) order."""
    if name is None:
        return or_(Agent.name.is_not(None), and_(Agent.name.is_(None), Agent.id > agent_id))
    return or_(Agent.name > name, and_(Agent.name == name, Agent.id > agent_id))
