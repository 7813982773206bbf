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
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, insert, update

from karr_db.documents import json_object_problems
from karr_db.errors import (
    CounterLimitError,
    FieldError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from karr_db.models import CampaignLog, WebCampaign
from karr_db.models.types import utcnow
from karr_db.repositories._lifecycle import AssignedWork
from karr_db.repositories._validate import checked
from karr_db.repositories.campaigns.dto import (
    SHAPE,
    CampaignDTO,
    RunOutcome,
    finished,
    total_runs_problems,
)
from karr_db.repositories.campaigns.transitions import (
    BY_VERB,
    CAMPAIGN_STATUS_NOTES,
    CAMPAIGN_TRANSITIONS,
    CONFIG_EDITABLE,
    PLANNABLE,
    UNDELETABLE,
    CampaignStatus,
)
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

#: What a campaign run again (launched after a failure, or restarted) starts from:
#: no error, no end, and every run counted again.
_RUN_AGAIN: dict[str, Any] = {
    "completed_at": None,
    "error": None,
    "succeeded": 0,
    "failed": 0,
    "skipped": 0,
}


@checked
class CampaignsRepository(AssignedWork[WebCampaign, CampaignDTO]):
    """Campaigns in the caller's transaction; every change appends its event."""

    model = WebCampaign
    entity = "campaign"
    shape = SHAPE
    transitions = BY_VERB

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
            errors.extend(json_object_problems(config, "config"))
        errors.extend(total_runs_problems(total_runs))
        if errors:
            raise ValidationError("campaign", errors)
        self._events.lock_log()
        if agent_id is not None:
            self._require_agent(agent_id)
        return self._create(
            insert(WebCampaign).values(
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
            ),
            EventType.CAMPAIGN_CREATED,
            {"name": name, "agent_id": agent_id, "total_runs": total_runs},
            # Only the agent reference can fail: the agent went away.
            NotFoundError("agent", agent_id),
        )

    def set_total_runs(self, campaign_id: str, total_runs: int) -> CampaignDTO:
        """Change the planned number of runs while the campaign is not finished;
        never below the runs already counted."""
        problems = total_runs_problems(total_runs)
        if problems:
            raise ValidationError("campaign", problems)
        if not self._update_where(
            campaign_id,
            {"total_runs": total_runs},
            WebCampaign.status.in_([s.value for s in PLANNABLE]),
            finished() <= total_runs,
        ):
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
        errors = json_object_problems(config, "config")
        if errors:
            raise ValidationError("campaign", errors)
        if not self._update_where(
            campaign_id,
            {"config_json": dict(config)},
            WebCampaign.status.in_([s.value for s in CONFIG_EDITABLE]),
        ):
            current = self.get(campaign_id)
            raise InvalidTransitionError("campaign", campaign_id, current.status, "a new config")
        self._events.append(
            EventType.CAMPAIGN_UPDATED, source_id=campaign_id, data={"fields": ["config"]}
        )
        return self.get(campaign_id)

    # --- lifecycle (see CAMPAIGN_TRANSITIONS; fail and cancel: see AssignedWork) --

    def launch(self, campaign_id: str) -> CampaignDTO:
        """``draft | failed -> queued``: hand the campaign to the agents.

        A relaunch of a failed campaign clears its error and counts every run
        again, as :meth:`restart` does.
        """
        return self._move(campaign_id, "launch", _RUN_AGAIN)

    def start(self, campaign_id: str) -> CampaignDTO:
        """``draft | pending | queued -> running``; sets ``started_at``."""
        return self._move(
            campaign_id, "start", {"started_at": utcnow(), "completed_at": None, "error": None}
        )

    def restart(self, campaign_id: str) -> CampaignDTO:
        """``failed -> running``: error cleared, ``started_at`` renewed, counters reset."""
        return self._move(campaign_id, "restart", {"started_at": utcnow(), **_RUN_AGAIN})

    def complete(self, campaign_id: str) -> CampaignDTO:
        """``running -> completed``; sets ``completed_at``."""
        return self._move(campaign_id, "complete", {"completed_at": utcnow()})

    def delete(self, campaign_id: str) -> None:
        """Delete a campaign that is not running, and its log lines; its events stay
        in the log (``campaign.deleted`` counts the lines, ``log_lines``).

        A campaign that an agent starts concurrently is never deleted under it,
        nor its log (see :meth:`_delete_unless`).
        """
        campaign, lines = self._delete_unless(
            campaign_id, (UNDELETABLE.value,), CampaignLog, "campaign_id"
        )
        self._events.append(
            EventType.CAMPAIGN_DELETED,
            source_id=campaign_id,
            data={"name": campaign.name, "status": campaign.status, "log_lines": lines},
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
        if not self._update_where(
            campaign_id,
            {column: func.coalesce(column, 0) + 1},
            WebCampaign.status == CampaignStatus.RUNNING.value,
            finished() < func.coalesce(WebCampaign.total_runs, 0),
        ):
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

    def _update_where(self, campaign_id: str, values: Mapping[Any, Any], *where: Any) -> bool:
        """Change the campaign in one conditional UPDATE, under the event log's lock;
        ``False`` when ``where`` does not hold (or there is no such campaign), so of
        two processes racing over a campaign exactly one wins."""
        self._events.lock_log()
        updated = self.session.execute(
            update(WebCampaign)
            .where(WebCampaign.id == campaign_id, *where)
            .values(values)
            .returning(WebCampaign.id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        return updated is not None
