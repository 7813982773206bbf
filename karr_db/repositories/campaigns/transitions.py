"""The campaign state machine: statuses, what each means, and every transition.

:data:`CAMPAIGN_TRANSITIONS` is the whole machine, one row per verb;
``docs/database.md`` renders it.
"""

from __future__ import annotations

from enum import StrEnum

from karr_db.repositories._lifecycle import Transition
from karr_db.repositories.events import EventType


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
WAITING = (CampaignStatus.DRAFT, CampaignStatus.PENDING, CampaignStatus.QUEUED)


#: The campaign state machine, one row per repository verb.
CAMPAIGN_TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "launch",
        (CampaignStatus.DRAFT, CampaignStatus.FAILED),
        CampaignStatus.QUEUED,
        "error and completed_at cleared, counters reset (a relaunch counts every run again)",
        EventType.CAMPAIGN_LAUNCHED,
    ),
    Transition(
        "start", WAITING, CampaignStatus.RUNNING, "started_at set", EventType.CAMPAIGN_STARTED
    ),
    Transition(
        "restart",
        (CampaignStatus.FAILED,),
        CampaignStatus.RUNNING,
        "started_at renewed, error cleared, counters reset",
        EventType.CAMPAIGN_STARTED,
    ),
    Transition(
        "complete",
        (CampaignStatus.RUNNING,),
        CampaignStatus.COMPLETED,
        "completed_at set",
        EventType.CAMPAIGN_COMPLETED,
    ),
    Transition(
        "fail",
        (CampaignStatus.RUNNING,),
        CampaignStatus.FAILED,
        "error and completed_at set",
        EventType.CAMPAIGN_FAILED,
    ),
    Transition(
        "cancel",
        (*WAITING, CampaignStatus.RUNNING),
        CampaignStatus.CANCELLED,
        "completed_at set",
        EventType.CAMPAIGN_CANCELLED,
    ),
)
BY_VERB = {t.verb: t for t in CAMPAIGN_TRANSITIONS}

#: Statuses in which ``update_config`` is allowed (not a transition: the status stays).
CONFIG_EDITABLE = (CampaignStatus.DRAFT,)
#: Statuses in which ``set_total_runs`` is allowed.
PLANNABLE = (*WAITING, CampaignStatus.RUNNING)
#: The status in which ``delete`` is refused (an agent is working on it).
UNDELETABLE = CampaignStatus.RUNNING
