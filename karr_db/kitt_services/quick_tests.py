"""The quick-test work of KITT 1.7's API, as a service over karr_db.

KITT has no quick-test service: its ``/api/v1/quicktest`` handlers issue their
own SQL on the app's ``sqlite3`` connection (queue a test, read one, page
through them, store and read log lines, take status reports from agents).
:class:`QuickTestService` does the same through
:class:`~karr_db.repositories.quick_tests.QuickTestsRepository` and
:class:`~karr_db.repositories.logs.QuickTestLogsRepository`, and answers with
the dicts those handlers return, so they become one call each.

Deliberately stricter than KITT's handlers:

- **Status reports follow the state machine**: ``running`` starts a test an
  agent claimed, ``completed`` finishes a running one and **must name the
  stored run** (``result_id``, :class:`ValidationError` otherwise), ``failed``
  stops a claimed or running one. Anything else raises
  :class:`InvalidTransitionError` and changes nothing (KITT writes any of the
  three over any status).
- The agent must exist when a test is queued (:class:`NotFoundError`), and a
  ``profile_id`` must name an engine profile.
- Ids and command ids are UUID strings; times are ISO 8601 in UTC with their
  offset.
"""

from __future__ import annotations

from typing import Any

from karr_db.errors import FieldError, ValidationError
from karr_db.kitt_services._base import Service, api_dict, iso, whole
from karr_db.repositories.quick_tests import QuickTestDTO
from karr_db.uow import UnitOfWork

__all__ = ["REPORTED_STATUSES", "QuickTestService", "quick_test_dict"]

#: The statuses an agent may report (KITT's ``POST /quicktest/<id>/status``).
REPORTED_STATUSES = ("running", "completed", "failed")


def quick_test_dict(test: QuickTestDTO) -> dict[str, Any]:
    """A quick test as KITT's API returns its row (``""`` for no profile)."""
    return {**api_dict(test), "profile_id": test.profile_id or ""}


class QuickTestService(Service):
    """The quick-test handlers' storage work (see the module docstring)."""

    def launch(
        self,
        agent_id: str,
        model_path: str,
        engine_name: str,
        benchmark_name: str = "throughput",
        suite_name: str = "quick",
        engine_mode: str = "docker",
        profile_id: str = "",
    ) -> dict[str, Any]:
        """Queue a test for the agent's next heartbeat: ``{"id", "status", "command_id"}``."""

        def work(uow: UnitOfWork) -> QuickTestDTO:
            return uow.quick_tests.dispatch(
                agent_id,
                model_path=model_path,
                engine_name=engine_name,
                benchmark_name=benchmark_name,
                suite_name=suite_name,
                engine_mode=engine_mode,
                profile_id=profile_id or None,
            )

        test = self._write(work, "queueing a quick test")
        command_id = test.command_id or test.id
        self._emit(
            "status", test.id, {"status": "queued", "test_id": test.id, "command_id": command_id}
        )
        return {"id": test.id, "status": "queued", "command_id": command_id}

    def get(self, test_id: str) -> dict[str, Any] | None:
        return self._found(lambda uow: uow.quick_tests.find(test_id), quick_test_dict)

    def list_tests(
        self, status: str = "", agent_name: str = "", page: int = 1, per_page: int = 20
    ) -> dict[str, Any]:
        """Newest first, each with its ``agent_name``: ``items``, ``total``, ``page``,
        ``pages`` (at least 1). ``per_page`` is kept to 1..100 and ``page`` to 1 or
        more, as KITT's handler does."""
        per_page = max(min(whole("quick test query", "per_page", per_page), 100), 1)
        page = max(whole("quick test query", "page", page), 1)
        with self._read() as uow:
            agent_id: str | None = None
            if agent_name:
                agent = uow.agents.find_by_name(agent_name)
                if agent is None:
                    return {"items": [], "total": 0, "page": page, "pages": 1}
                agent_id = agent.id
            found = uow.quick_tests.list(
                status=status or None, agent_id=agent_id, page=page, limit=per_page
            )
            names: dict[str | None, str | None] = {}
            for test in found.items:
                if test.agent_id not in names:
                    owner = uow.agents.find(test.agent_id) if test.agent_id else None
                    names[test.agent_id] = None if owner is None else owner.name
        return {
            "items": [{**quick_test_dict(t), "agent_name": names[t.agent_id]} for t in found.items],
            "total": found.total,
            "page": page,
            "pages": max(-(-(found.total or 0) // per_page), 1),
        }

    def append_log(self, test_id: str, line: str) -> bool:
        """Store one line an agent posted; ``False`` for an unknown test."""

        stored = self._changed(
            lambda uow: uow.quick_test_logs.append(test_id, [line]),
            "storing a quick test's log line",
        )
        if stored:
            self._emit("log", test_id, {"line": line, "test_id": test_id})
        return stored

    def get_logs(self, test_id: str) -> dict[str, Any] | None:
        """``{"lines": [{"line", "created_at"}, ...]}`` oldest first; ``None`` for an
        unknown test."""
        lines: list[dict[str, Any]] = []
        with self._read() as uow:
            if uow.quick_tests.find(test_id) is None:
                return None
            cursor = None
            while True:
                page = uow.quick_test_logs.list(test_id, cursor=cursor)
                lines += [{"line": x.line, "created_at": iso(x.created_at)} for x in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    return {"lines": lines}

    def update_status(
        self, test_id: str, status: str, error: str = "", result_id: str | None = None
    ) -> dict[str, Any] | None:
        """An agent's status report: ``{"ok": True, "status": status}``; ``None`` for an
        unknown test. See the module docstring for what may follow what."""
        if status not in REPORTED_STATUSES:
            raise ValidationError(
                "quick test status",
                [FieldError("status", f"must be one of {', '.join(REPORTED_STATUSES)}")],
            )
        if status == "completed" and not result_id:
            raise ValidationError(
                "quick test status",
                [FieldError("result_id", "a completed test names the run it stored")],
            )

        def work(uow: UnitOfWork) -> bool:
            uow.events.lock_log()
            if uow.quick_tests.find(test_id) is None:
                return False
            if status == "running":
                uow.quick_tests.start(test_id)
            elif status == "completed":
                assert result_id is not None
                uow.quick_tests.complete(test_id, result_id=result_id)
            else:
                uow.quick_tests.fail(test_id, error)
            return True

        if not self._write(work, "recording a quick test's status"):
            return None
        self._emit("status", test_id, {"status": status, "test_id": test_id})
        return {"ok": True, "status": status}
