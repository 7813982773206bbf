"""A campaign as callers see it, how it is read, and the checks on what callers write."""

from __future__ import annotations

import builtins
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, func

from karr_db.errors import (
    FieldError,
)
from karr_db.models import WebCampaign
from karr_db.repositories._common import DTO, RowShape
from karr_db.repositories._validate import int32


class RunOutcome(StrEnum):
    """How one run of a campaign ended; names the counter it increments."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class CampaignDTO(DTO):
    """A campaign with its configuration parsed; counters read ``NULL`` as 0."""

    id: str
    name: str | None
    description: str | None
    config: Any
    status: str | None
    agent_id: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    total_runs: int
    succeeded: int
    failed: int
    skipped: int
    error: str | None

    @property
    def finished_runs(self) -> int:
        return self.succeeded + self.failed + self.skipped


def zero(count: int | None) -> int:
    return count or 0


#: How a campaign is read (counters of legacy rows may be ``NULL``: they read as 0).
SHAPE = RowShape(
    CampaignDTO,
    {
        "id": WebCampaign.id,
        "name": WebCampaign.name,
        "description": WebCampaign.description,
        "config": WebCampaign.config_json,
        "status": WebCampaign.status,
        "agent_id": WebCampaign.agent_id,
        "created_at": WebCampaign.created_at,
        "started_at": WebCampaign.started_at,
        "completed_at": WebCampaign.completed_at,
        "total_runs": WebCampaign.total_runs,
        "succeeded": WebCampaign.succeeded,
        "failed": WebCampaign.failed,
        "skipped": WebCampaign.skipped,
        "error": WebCampaign.error,
    },
    convert={name: zero for name in ("total_runs", "succeeded", "failed", "skipped")},
)


def finished() -> ColumnElement[int]:
    """``succeeded + failed + skipped`` in SQL (legacy ``NULL`` counts as 0)."""
    return (
        func.coalesce(WebCampaign.succeeded, 0)
        + func.coalesce(WebCampaign.failed, 0)
        + func.coalesce(WebCampaign.skipped, 0)
    )


def total_runs_problems(total_runs: int) -> builtins.list[FieldError]:
    problem = int32(total_runs)
    if problem is None and total_runs < 0:
        problem = "must not be negative"
    return [FieldError("total_runs", problem)] if problem else []
