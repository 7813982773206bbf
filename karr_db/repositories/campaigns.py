"""Campaigns: one guarded state machine and progress counters exact under concurrency.

The statuses are those of the reference (``pending``, ``running``,
``completed``, ``failed``) and, beyond it, those the earlier system wrote and
KITT's campaign service uses: ``draft`` (where a campaign is created and its
configuration may change), ``queued`` (launched, waiting for an agent) and
``cancelled``. :data:`CAMPAIGN_TRANSITIONS` is the whole machine, one row per
verb; ``docs/database.md`` renders it. ``pending`` is the reference's name for
a campaign waiting to run and behaves like ``queued``; rows in it keep working.

Every transition is one conditional UPDATE, so of two processes racing over a
campaign exactly one wins.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
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
from karr_db.repositories._common import DTO, RowShape
from karr_db.repositories._lifecycle import AssignedWork, Transition, transition
from karr_db.repositories._validate import checked, int32
from karr_db.repositories.events import EventType

__all__ = [
    "CAMPAIGN_STATUS_NOTES",
    "CAMPAIGN_TRANSITIONS",
    "CONFIG_EDITABLE",
    "PLANNABLE",
    "UNDELETABLE",
    "CampaignDTO",
    "CampaignStatus",
    "CampaignsRepository",
    "RunOutcome",
]


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: What each status means, and whether the reference names it (``True``) or
#: the layer goes beyond it (``False``: the earlier system wrote it).
CAMPAIGN_STATUS_NOTES: dict[CampaignStatus, tuple[bool, str]] = {
    CampaignStatus.DRAFT: (False, "created, not launched; the only status whose config may change"),
    CampaignStatus.PENDING: (True, "waiting to run; behaves like queued"),
    CampaignStatus.QUEUED: (False, "launched, waiting for an agent to start it"),
    CampaignStatus.RUNNING: (True, "an agent is running it; counters move"),
    CampaignStatus.COMPLETED: (True, "finished; final"),
    CampaignStatus.FAILED: (True, "stopped with an error; may be launched or restarted again"),
    CampaignStatus.CANCELLED: (False, "stopped by a user; final"),
}

#: Statuses in which a campaign waits to be started.
_WAITING = (CampaignStatus.DRAFT, CampaignStatus.PENDING, CampaignStatus.QUEUED)


#: The campaign state machine, one row per repository verb.
CAMPAIGN_TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "launch",
        (CampaignStatus.DRAFT, CampaignStatus.FAILED),
        CampaignStatus.QUEUED,
        "error and completed_at cleared, counters reset (a relaunch counts every run again)",
    ),
    Transition("start", _WAITING, CampaignStatus.RUNNING, "started_at set"),
    Transition(
        "restart",
        (CampaignStatus.FAILED,),
        CampaignStatus.RUNNING,
        "started_at renewed, error cleared, counters reset",
    ),
    Transition("complete", (CampaignStatus.RUNNING,), CampaignStatus.COMPLETED, "completed_at set"),
    Transition(
        "fail", (CampaignStatus.RUNNING,), CampaignStatus.FAILED, "error and completed_at set"
    ),
    Transition(
        "cancel",
        (*_WAITING, CampaignStatus.RUNNING),
        CampaignStatus.CANCELLED,
        "completed_at set",
    ),
)
_BY_VERB = {t.verb: t for t in CAMPAIGN_TRANSITIONS}

#: Statuses in which ``update_config`` is allowed (not a transition: the status stays).
CONFIG_EDITABLE = (CampaignStatus.DRAFT,)
#: Statuses in which ``set_total_runs`` is allowed.
PLANNABLE = (*_WAITING, CampaignStatus.RUNNING)
#: The status in which ``delete`` is refused (an agent is working on it).
UNDELETABLE = CampaignStatus.RUNNING


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


def _zero(count: int | None) -> int:
    return count or 0


#: How a campaign is read (counters of legacy rows may be ``NULL``: they read as 0).
_SHAPE = RowShape(
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
    convert={name: _zero for name in ("total_runs", "succeeded", "failed", "skipped")},
)


def _config_errors(config: Any) -> builtins.list[FieldError]:
    if not isinstance(config, Mapping):
        return [FieldError("config", "must be a JSON object")]
    problems = json_value_problems(dict(config), "config")  # surrogates, depth, huge ints
    if problems:
        return problems
    try:
        dumps_json(dict(config))
    except (TypeError, ValueError) as exc:
        return [FieldError("config", f"not JSON-serialisable: {exc}")]
    return []


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
    shape = _SHAPE

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
        """A new ``draft`` campaign with zeroed counters (as KITT's campaign service
        creates them; :meth:`launch` or :meth:`start` moves it on)."""
        errors: builtins.list[FieldError] = []
        if not name or not name.strip():
            errors.append(FieldError("name", "must not be empty"))
        if config is not None:
            errors.extend(_config_errors(config))
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
                        status=CampaignStatus.DRAFT.value,
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
                WebCampaign.status.in_([s.value for s in PLANNABLE]),
                _finished() <= total_runs,
            )
            .values(total_runs=total_runs)
            .returning(WebCampaign.id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if updated is None:
            current = self.get(campaign_id)
            if current.status not in PLANNABLE:
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

    def update_config(self, campaign_id: str, config: Mapping[str, Any]) -> CampaignDTO:
        """Replace the configuration of a ``draft`` campaign.

        Conditional on the status in the UPDATE itself, so a launch that
        commits first wins and the edit is refused with
        :class:`InvalidTransitionError`: what an agent runs is never changed
        under it.
        """
        errors = _config_errors(config)
        if errors:
            raise ValidationError("campaign", errors)
        self._events.lock_log()
        updated = self.session.execute(
            update(WebCampaign)
            .where(
                WebCampaign.id == campaign_id,
                WebCampaign.status.in_([s.value for s in CONFIG_EDITABLE]),
            )
            .values(config_json=dict(config))
            .returning(WebCampaign.id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if updated is None:
            current = self.get(campaign_id)
            raise InvalidTransitionError("campaign", campaign_id, current.status, "a new config")
        self._events.append(
            EventType.CAMPAIGN_UPDATED, source_id=campaign_id, data={"fields": ["config"]}
        )
        return self.get(campaign_id)

    # --- lifecycle (see CAMPAIGN_TRANSITIONS) ------------------------------------

    def launch(self, campaign_id: str) -> CampaignDTO:
        """``draft | failed -> queued``: hand the campaign to the agents.

        A relaunch of a failed campaign clears its error and counts every run
        again, as :meth:`restart` does.
        """
        return self._move(
            campaign_id,
            "launch",
            EventType.CAMPAIGN_LAUNCHED,
            {
                "completed_at": None,
                "error": None,
                "succeeded": 0,
                "failed": 0,
                "skipped": 0,
            },
        )

    def start(self, campaign_id: str) -> CampaignDTO:
        """``draft | pending | queued -> running``; sets ``started_at``."""
        return self._move(
            campaign_id,
            "start",
            EventType.CAMPAIGN_STARTED,
            {"started_at": utcnow(), "completed_at": None, "error": None},
        )

    def restart(self, campaign_id: str) -> CampaignDTO:
        """``failed -> running``: error cleared, ``started_at`` renewed, counters reset."""
        return self._move(
            campaign_id,
            "restart",
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
            campaign_id, "complete", EventType.CAMPAIGN_COMPLETED, {"completed_at": utcnow()}
        )

    def fail(self, campaign_id: str, error: str) -> CampaignDTO:
        """``running -> failed`` with the error; sets ``completed_at``."""
        return self._move(
            campaign_id,
            "fail",
            EventType.CAMPAIGN_FAILED,
            {"completed_at": utcnow(), "error": error},
            extra={"error": error},
        )

    def cancel(self, campaign_id: str) -> CampaignDTO:
        """``draft | pending | queued | running -> cancelled``; sets ``completed_at``."""
        return self._move(
            campaign_id, "cancel", EventType.CAMPAIGN_CANCELLED, {"completed_at": utcnow()}
        )

    def delete(self, campaign_id: str) -> None:
        """Delete a campaign that is not running; its events stay in the log.

        One conditional DELETE (``WHERE status IS DISTINCT FROM 'running'``), so
        a campaign that an agent starts concurrently is never deleted under it:
        the loser gets :class:`InvalidTransitionError`.
        """
        self._events.lock_log()
        deleted = self.session.execute(
            delete(WebCampaign)
            .where(
                WebCampaign.id == campaign_id,
                or_(WebCampaign.status.is_(None), WebCampaign.status != UNDELETABLE.value),
            )
            .returning(WebCampaign.name, WebCampaign.status)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if deleted is None:
            current = self.get(campaign_id)  # NotFoundError when there is none
            raise InvalidTransitionError("campaign", campaign_id, current.status, "deleted")
        self._events.append(
            EventType.CAMPAIGN_DELETED,
            source_id=campaign_id,
            data={"name": deleted.name, "status": deleted.status},
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
        verb: str,
        event_type: EventType,
        values: dict[str, Any],
        *,
        extra: dict[str, Any] | None = None,
    ) -> CampaignDTO:
        rule = _BY_VERB[verb]
        self._events.lock_log()
        _, previous = transition(
            self.session,
            WebCampaign,
            "campaign",
            campaign_id,
            # Plain text, not the enum: drivers adapt Enum members by name.
            allowed_from=[str(s) for s in rule.allowed_from],
            to=str(rule.to),
            values=values,
        )
        self._events.append(
            event_type,
            source_id=campaign_id,
            data={"from": previous, "to": str(rule.to), **(extra or {})},
        )
        return self.get(campaign_id)

    def _require_agent(self, agent_id: str) -> None:
        if self.session.scalar(select(Agent.id).where(Agent.id == agent_id)) is None:
            raise NotFoundError("agent", agent_id)
