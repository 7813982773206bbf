"""KITT 1.7's ``CampaignService`` over karr_db: the same methods and return shapes.

Storage goes through :class:`~karr_db.repositories.campaigns.CampaignsRepository`:
every change is one transaction with its event in the log, and every status
change is a guarded transition (the state machine is in ``docs/database.md``).

Where karr_db is deliberately stricter than KITT's own service:

- **update_status moves only along the state machine**: ``queued`` launches
  (from ``draft`` or ``failed``), ``running`` starts (or restarts a failed
  campaign), ``completed``/``failed`` finish a running one, ``cancelled``
  stops one not yet finished. A move the machine does not allow raises
  :class:`InvalidTransitionError` and changes nothing (KITT writes any
  status); ``False`` still means "no such campaign".
- **Counters only grow, and never past total_runs**: ``succeeded``,
  ``failed`` and ``skipped`` passed to ``update_status`` are reached by
  counting runs (each an event); a smaller value raises
  :class:`CounterLimitError`.
- **A running campaign is not deleted**: ``delete`` raises
  :class:`InvalidTransitionError` (KITT deletes it under its agent).
- Ids are UUID strings; times are ISO 8601 in UTC with their offset; an
  empty ``agent_id`` or ``description`` is stored as nothing (NULL) and
  handed out as ``""``, as KITT does.

Beyond KITT's class: :meth:`CampaignService.append_log` and
:meth:`CampaignService.get_logs`, the ``campaign_logs`` reads and writes KITT's
API and campaign executor issue on their own ``sqlite3`` connection.
"""

from __future__ import annotations

from typing import Any

from karr_db.errors import CounterLimitError, InvalidTransitionError, NotFoundError
from karr_db.kitt_services._base import Service, iso, whole
from karr_db.repositories.campaigns import CampaignDTO, RunOutcome
from karr_db.uow import UnitOfWork

__all__ = ["CampaignService", "campaign_dict"]

#: The counters KITT's ``update_status`` may set, in the order they are counted.
COUNTERS = ("succeeded", "failed", "skipped")


def campaign_dict(campaign: CampaignDTO, *, with_config: bool = True) -> dict[str, Any]:
    """A campaign as KITT's API returns it (``config`` parsed, as its ``get`` does)."""
    out: dict[str, Any] = {
        "id": campaign.id,
        "name": campaign.name,
        "description": campaign.description or "",
        "status": campaign.status,
        "agent_id": campaign.agent_id or "",
        "created_at": iso(campaign.created_at),
        "started_at": iso(campaign.started_at),
        "completed_at": iso(campaign.completed_at),
        "total_runs": campaign.total_runs,
        "succeeded": campaign.succeeded,
        "failed": campaign.failed,
        "skipped": campaign.skipped,
        "error": campaign.error,
    }
    if with_config:
        out["config"] = campaign.config if campaign.config is not None else {}
    return out


def _move(uow: UnitOfWork, campaign: CampaignDTO, status: str, error: str) -> None:
    """One step along the state machine towards ``status`` (none if already there)."""
    if campaign.status == status:
        return
    campaigns = uow.campaigns
    if status == "queued":
        campaigns.launch(campaign.id)
    elif status == "running":
        if campaign.status == "failed":
            campaigns.restart(campaign.id)
        else:
            campaigns.start(campaign.id)
    elif status == "completed":
        campaigns.complete(campaign.id)
    elif status == "failed":
        campaigns.fail(campaign.id, error)
    elif status == "cancelled":
        campaigns.cancel(campaign.id)
    else:
        raise InvalidTransitionError("campaign", campaign.id, campaign.status, status)


def _count_up(uow: UnitOfWork, campaign_id: str, counters: dict[str, int]) -> None:
    """Count runs until each counter reaches the value asked for."""
    current = uow.campaigns.get(campaign_id)
    for name in COUNTERS:
        if name not in counters:
            continue
        have, want = getattr(current, name), counters[name]
        if want < have:
            raise CounterLimitError("campaign", campaign_id, current.total_runs, want)
        for _ in range(want - have):
            uow.campaigns.record_run(campaign_id, RunOutcome(name))


class CampaignService(Service):
    """KITT's ``CampaignService`` over karr_db (see the module docstring)."""

    def create(
        self,
        name: str,
        config_json: dict[str, Any],
        description: str = "",
        agent_id: str = "",
    ) -> str:
        """A new ``draft`` campaign; its id."""

        def work(uow: UnitOfWork) -> str:
            return uow.campaigns.create(
                name,
                config=config_json,
                description=description or None,
                agent_id=agent_id or None,
            ).id

        campaign_id = self._write(work, "creating a campaign")
        self._emit("campaign_created", campaign_id, {"name": name})
        return campaign_id

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        return self._found(lambda uow: uow.campaigns.find(campaign_id), campaign_dict)

    def list_campaigns(self, status: str = "", page: int = 1, per_page: int = 25) -> dict[str, Any]:
        """Newest first: ``items`` (no config), ``total``, ``page``, ``per_page``, ``pages``."""
        with self._read() as uow:
            found = uow.campaigns.list(status=status or None, page=page, limit=per_page)
        return {
            "items": [campaign_dict(c, with_config=False) for c in found.items],
            "total": found.total,
            "page": page,
            "per_page": per_page,
            "pages": -(-(found.total or 0) // per_page),
        }

    def update_status(self, campaign_id: str, status: str, error: str = "", **kwargs: Any) -> bool:
        """Move the campaign to ``status`` and set ``total_runs`` and the counters
        passed; ``False`` for an unknown campaign. All in one transaction, which
        reads the status under the log's lock: of two concurrent launches one
        launches and the other finds it queued, a no-op."""
        total_runs = kwargs.get("total_runs")
        if total_runs is not None:
            whole("campaign", "total_runs", total_runs)
        counters = {
            name: whole("campaign", name, kwargs[name]) for name in COUNTERS if name in kwargs
        }

        def work(uow: UnitOfWork) -> bool:
            uow.events.lock_log()  # read the status other writers committed last
            campaign = uow.campaigns.find(campaign_id)
            if campaign is None:
                return False
            if status == "running":
                _move(uow, campaign, status, error)
            if total_runs is not None:
                uow.campaigns.set_total_runs(campaign_id, total_runs)
            if counters:
                _count_up(uow, campaign_id, counters)
            if status != "running":
                _move(uow, uow.campaigns.get(campaign_id), status, error)
            return True

        changed = self._write(work, "updating a campaign's status")
        if changed:
            self._emit("status", campaign_id, {"status": status, "error": error})
        return changed

    def delete(self, campaign_id: str) -> bool:
        """``False`` for an unknown campaign; a running one raises
        :class:`InvalidTransitionError`. Its events stay in the log."""

        return self._changed(lambda uow: uow.campaigns.delete(campaign_id), "deleting a campaign")

    def update_config(self, campaign_id: str, config: dict[str, Any]) -> bool:
        """Replace the config of a ``draft`` campaign; ``False`` when there is no such
        campaign or it is no longer a draft (as KITT answers)."""

        return self._changed(
            lambda uow: uow.campaigns.update_config(campaign_id, config),
            "updating a campaign's config",
            refused=(NotFoundError, InvalidTransitionError),
        )

    # --- the campaign's log (KITT's API and executor use its connection for these) ---

    def append_log(self, campaign_id: str, lines: str | list[str]) -> list[int]:
        """Append output lines (KITT's ``campaign_logs``); their ids, ascending."""
        batch = [lines] if isinstance(lines, str) else lines

        def work(uow: UnitOfWork) -> list[int]:
            return uow.campaign_logs.append(campaign_id, batch)

        return self._write(work, "appending to a campaign's log")

    def get_logs(self, campaign_id: str, after_id: int = 0) -> dict[str, Any]:
        """``{"lines": [{"line", "created_at"}, ...]}`` oldest first, as KITT's
        ``GET /api/v1/campaigns/<id>/logs`` answers, plus ``last_id`` to ask for
        the lines after it. An unknown campaign has no lines."""
        lines: list[dict[str, Any]] = []
        last_id = after_id
        with self._read() as uow:
            if uow.campaigns.find(campaign_id) is None:
                return {"lines": [], "last_id": after_id}
            while True:
                page = uow.campaign_logs.list(campaign_id, after_id=last_id)
                lines += [{"line": x.line, "created_at": iso(x.created_at)} for x in page.items]
                last_id = page.items[-1].id if page.items else last_id
                if not page.has_more:
                    return {"lines": lines, "last_id": last_id}
