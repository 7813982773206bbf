"""Campaigns: a guarded lifecycle and progress counters exact under concurrency.

Lifecycle: ``pending -> running -> completed | failed``; ``cancelled`` from
``pending`` or ``running``; a ``failed`` campaign can be restarted (back to
``running``, error cleared, counters reset because a rerun counts every run
again, finished ones as ``skipped``). Every transition is one conditional
UPDATE, so of two processes racing over a campaign exactly one wins.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from karr_db.documents import json_value_problems
from karr_db.errors import (
    CounterLimitError,
    FieldError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from karr_db.models import Agent, WebCampaign
from karr_db.models.types import dumps_json, utcnow
from karr_db.repositories._lifecycle import AssignedWork, transition
from karr_db.repositories._validate import checked, int32
from karr_db.repositories.base import DTO
from karr_db.repositories.events import EventType

__all__ = ["CampaignDTO", "CampaignStatus", "CampaignsRepository", "RunOutcome"]


class CampaignStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


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

    @classmethod
    def from_row(cls, row: WebCampaign) -> CampaignDTO:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            config=row.config_json,
            status=row.status,
            agent_id=row.agent_id,
            created_at=row.created_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            total_runs=row.total_runs or 0,
            succeeded=row.succeeded or 0,
            failed=row.failed or 0,
            skipped=row.skipped or 0,
            error=row.error,
        )

    @property
    def finished_runs(self) -> int:
        return self.succeeded + self.failed + self.skipped


def _finished() -> ColumnElement[int]:
    """``succeeded + failed + skipped`` in SQL (legacy ``NULL`` counts as 0)."""
    return (
        func.coalesce(WebCampaign.succeeded, 0)
        + func.coalesce(WebCampaign.failed, 0)
        + func.coalesce(WebCampaign.skipped, 0)
    )


def _total_runs_problems(total_runs: int) -> builtins.list[FieldError]:
    problem = int32(total_runs)
    if problem is None and total_runs < 0:
        problem = "must not be negative"
    return [FieldError("total_runs", problem)] if problem else []


@checked
class CampaignsRepository(AssignedWork[WebCampaign, CampaignDTO]):
    """Campaigns in the caller's transaction; every change appends its event."""

    model = WebCampaign
    entity = "campaign"

    def _dto(self, row: WebCampaign) -> CampaignDTO:
        return CampaignDTO.from_row(row)

    # --- creating and configuring ------------------------------------------------

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        agent_id: str | None = None,
        total_runs: int = 0,
    ) -> CampaignDTO:
        """A new ``pending`` campaign with zeroed counters."""
        errors: builtins.list[FieldError] = []
        if not name or not name.strip():
            errors.append(FieldError("name", "must not be empty"))
        if config is not None and not isinstance(config, Mapping):
            errors.append(FieldError("config", "must be a JSON object"))
        elif config is not None:
            errors.extend(json_value_problems(dict(config), "config"))
            if not errors:
                try:
                    dumps_json(dict(config))
                except (TypeError, ValueError) as exc:
                    errors.append(FieldError("config", f"not JSON-serialisable: {exc}"))
        errors.extend(_total_runs_problems(total_runs))
        if errors:
            raise ValidationError("campaign", errors)
        self._events.lock_log()
        if agent_id is not None:
            self._require_agent(agent_id)
        campaign_id = str(uuid.uuid4())
        try:
            with self.session.begin_nested():
                self.session.execute(
                    insert(WebCampaign).values(
                        id=campaign_id,
                        name=name,
                        description=description,
                        config_json=dict(config) if config is not None else None,
                        status=CampaignStatus.PENDING.value,
                        agent_id=agent_id,
                        created_at=utcnow(),
                        total_runs=total_runs,
                        succeeded=0,
                        failed=0,
                        skipped=0,
                    )
                )
        except IntegrityError:
            # Only the agent reference can fail: the agent went away.
            raise NotFoundError("agent", agent_id) from None
        self._events.append(
            EventType.CAMPAIGN_CREATED,
            source_id=campaign_id,
            data={"name": name, "agent_id": agent_id, "total_runs": total_runs},
        )
        return self.get(campaign_id)

    def set_total_runs(self, campaign_id: str, total_runs: int) -> CampaignDTO:
        """Change the planned number of runs while the campaign is not finished;
        never below the runs already counted."""
        problems = _total_runs_problems(total_runs)
        if problems:
            raise ValidationError("campaign", problems)
        self._events.lock_log()
        updated = self.session.execute(
            update(WebCampaign)
            .where(
                WebCampaign.id == campaign_id,
                WebCampaign.status.in_(
                    [CampaignStatus.PENDING.value, CampaignStatus.RUNNING.value]
                ),
                _finished() <= total_runs,
            )
            .values(total_runs=total_runs)
            .returning(WebCampaign.id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if updated is None:
            current = self.get(campaign_id)
            if current.status not in (CampaignStatus.PENDING, CampaignStatus.RUNNING):
                raise InvalidTransitionError(
                    "campaign", campaign_id, current.status, "a new total_runs"
                )
            raise CounterLimitError("campaign", campaign_id, total_runs, current.finished_runs)
        self._events.append(
            EventType.CAMPAIGN_UPDATED,
            source_id=campaign_id,
            data={"total_runs": total_runs},
        )
        return self.get(campaign_id)

    # --- lifecycle ---------------------------------------------------------------

    def start(self, campaign_id: str) -> CampaignDTO:
        """``pending -> running``; sets ``started_at``."""
        return self._move(
            campaign_id,
            (CampaignStatus.PENDING,),
            CampaignStatus.RUNNING,
            EventType.CAMPAIGN_STARTED,
            {"started_at": utcnow(), "completed_at": None, "error": None},
        )

    def restart(self, campaign_id: str) -> CampaignDTO:
        """``failed -> running``: error cleared, ``started_at`` renewed, counters reset."""
        return self._move(
            campaign_id,
            (CampaignStatus.FAILED,),
            CampaignStatus.RUNNING,
            EventType.CAMPAIGN_STARTED,
            {
                "started_at": utcnow(),
                "completed_at": None,
                "error": None,
                "succeeded": 0,
                "failed": 0,
                "skipped": 0,
            },
        )

    def complete(self, campaign_id: str) -> CampaignDTO:
        """``running -> completed``; sets ``completed_at``."""
        return self._move(
            campaign_id,
            (CampaignStatus.RUNNING,),
            CampaignStatus.COMPLETED,
            EventType.CAMPAIGN_COMPLETED,
            {"completed_at": utcnow()},
        )

    def fail(self, campaign_id: str, error: str) -> CampaignDTO:
        """``running -> failed`` with the error; sets ``completed_at``."""
        return self._move(
            campaign_id,
            (CampaignStatus.RUNNING,),
            CampaignStatus.FAILED,
            EventType.CAMPAIGN_FAILED,
            {"completed_at": utcnow(), "error": error},
            extra={"error": error},
        )

    def cancel(self, campaign_id: str) -> CampaignDTO:
        """``pending | running -> cancelled``; sets ``completed_at``."""
        return self._move(
            campaign_id,
            (CampaignStatus.PENDING, CampaignStatus.RUNNING),
            CampaignStatus.CANCELLED,
            EventType.CAMPAIGN_CANCELLED,
            {"completed_at": utcnow()},
        )

    def record_run(self, campaign_id: str, outcome: RunOutcome) -> CampaignDTO:
        """Count one finished run of a running campaign, atomically in SQL.

        ``SET <counter> = <counter> + 1 WHERE status = 'running' AND
        succeeded + failed + skipped < total_runs``: concurrent workers never
        lose an increment and never push the sum past ``total_runs``
        (:class:`CounterLimitError`); a campaign that is not running refuses
        with :class:`InvalidTransitionError`.
        """
        outcome = RunOutcome(outcome)  # the entry check allowed only its values
        column = getattr(WebCampaign, outcome.value)
        self._events.lock_log()
        updated = self.session.execute(
            update(WebCampaign)
            .where(
                WebCampaign.id == campaign_id,
                WebCampaign.status == CampaignStatus.RUNNING.value,
                _finished() < func.coalesce(WebCampaign.total_runs, 0),
            )
            .values({column: func.coalesce(column, 0) + 1})
            .returning(WebCampaign.id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if updated is None:
            current = self.get(campaign_id)
            if current.status != CampaignStatus.RUNNING:
                raise InvalidTransitionError(
                    "campaign", campaign_id, current.status, f"record a {outcome.value} run"
                )
            raise CounterLimitError(
                "campaign", campaign_id, current.total_runs, current.finished_runs + 1
            )
        campaign = self.get(campaign_id)
        self._events.append(
            EventType.CAMPAIGN_PROGRESSED,
            source_id=campaign_id,
            data={
                "outcome": outcome.value,
                "succeeded": campaign.succeeded,
                "failed": campaign.failed,
                "skipped": campaign.skipped,
                "total_runs": campaign.total_runs,
            },
        )
        return campaign

    # --- helpers --------------------------------------------------------------

    def _move(
        self,
        campaign_id: str,
        allowed_from: tuple[CampaignStatus, ...],
        to: CampaignStatus,
        event_type: EventType,
        values: dict[str, Any],
        *,
        extra: dict[str, Any] | None = None,
    ) -> CampaignDTO:
        self._events.lock_log()
        _, previous = transition(
            self.session,
            WebCampaign,
            "campaign",
            campaign_id,
            allowed_from=[s.value for s in allowed_from],
            to=to.value,
            values=values,
        )
        self._events.append(
            event_type,
            source_id=campaign_id,
            data={"from": previous, "to": to.value, **(extra or {})},
        )
        return self.get(campaign_id)

    def _require_agent(self, agent_id: str) -> None:
        if self.session.scalar(select(Agent.id).where(Agent.id == agent_id)) is None:
            raise NotFoundError("agent", agent_id)
