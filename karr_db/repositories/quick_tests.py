"""Quick tests: a work queue each agent claims from, safe across processes.

Lifecycle: ``queued -> claimed -> running -> completed | failed``; ``claimed``
can also fail (the agent could not start it); ``cancelled`` from ``queued``;
``requeue`` puts a claimed or running test whose agent went silent back in the
queue. ``started_at`` is set when a test is claimed (the schema has no
separate claim time) and is what staleness is measured from.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from karr_db.errors import FieldError, NotFoundError, ValidationError
from karr_db.limits import earlier, moment_problem
from karr_db.models import EngineProfile, QuickTest, QuickTestLog, Run
from karr_db.models.types import utcnow
from karr_db.repositories._common import DTO, RowShape
from karr_db.repositories._lifecycle import AssignedWork, Transition
from karr_db.repositories._validate import checked, fields
from karr_db.repositories.engine_profiles import mode_problem
from karr_db.repositories.events import EventType

__all__ = [
    "QUICK_TEST_STATUS_NOTES",
    "QUICK_TEST_TRANSITIONS",
    "QuickTestDTO",
    "QuickTestStatus",
    "QuickTestsRepository",
]


class QuickTestStatus(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses in which an agent holds the test.
_HELD = (QuickTestStatus.CLAIMED.value, QuickTestStatus.RUNNING.value)
#: Statuses in which a test is not deleted: held, or handed to an agent by KITT's
#: own heartbeat on a shared database (which writes ``dispatched``).
_UNDELETABLE = (*_HELD, "dispatched")

#: What each status means. The reference names no quick-test statuses, so all
#: are beyond it; ``queued`` is the earlier system's initial status too.
QUICK_TEST_STATUS_NOTES: dict[QuickTestStatus, str] = {
    QuickTestStatus.QUEUED: "dispatched, waiting for its agent to claim it",
    QuickTestStatus.CLAIMED: "its agent took it (started_at set)",
    QuickTestStatus.RUNNING: "its agent is running the benchmark",
    QuickTestStatus.COMPLETED: "finished; result_id links the stored run",
    QuickTestStatus.FAILED: "stopped with an error",
    QuickTestStatus.CANCELLED: "withdrawn before an agent claimed it",
}

#: The quick-test state machine, one row per repository verb.
QUICK_TEST_TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "claim_next",
        (QuickTestStatus.QUEUED,),
        QuickTestStatus.CLAIMED,
        "the agent's oldest queued test, started_at set",
        EventType.QUICK_TEST_CLAIMED,
    ),
    Transition(
        "start",
        (QuickTestStatus.CLAIMED,),
        QuickTestStatus.RUNNING,
        "",
        EventType.QUICK_TEST_STARTED,
    ),
    Transition(
        "complete",
        (QuickTestStatus.RUNNING,),
        QuickTestStatus.COMPLETED,
        "result_id linked",
        EventType.QUICK_TEST_COMPLETED,
    ),
    Transition(
        "fail",
        (QuickTestStatus.CLAIMED, QuickTestStatus.RUNNING),
        QuickTestStatus.FAILED,
        "error set",
        EventType.QUICK_TEST_FAILED,
    ),
    Transition(
        "cancel",
        (QuickTestStatus.QUEUED,),
        QuickTestStatus.CANCELLED,
        "",
        EventType.QUICK_TEST_CANCELLED,
    ),
    Transition(
        "requeue",
        (QuickTestStatus.CLAIMED, QuickTestStatus.RUNNING),
        QuickTestStatus.QUEUED,
        "started_at cleared, for a test whose agent went silent",
        EventType.QUICK_TEST_REQUEUED,
    ),
)
_BY_VERB = {t.verb: t for t in QUICK_TEST_TRANSITIONS}


class QuickTestDTO(DTO):
    """A quick test; ``status`` is returned as stored, whatever an older database holds."""

    id: str
    agent_id: str | None
    model_path: str | None
    engine_name: str | None
    benchmark_name: str | None
    suite_name: str | None
    status: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    result_id: str | None
    error: str | None
    #: The id of the command an agent's heartbeat receives for this test (KITT's).
    command_id: str | None = None
    #: How the engine runs: ``docker`` or ``native``.
    engine_mode: str | None = None
    #: The engine profile the test runs with; ``''`` or ``None`` for none.
    profile_id: str | None = None


#: How a quick test is read: its columns, in the DTO's fields' order.
_SHAPE = RowShape(
    QuickTestDTO, {name: getattr(QuickTest, name) for name in QuickTestDTO.model_fields}
)


@checked
class QuickTestsRepository(AssignedWork[QuickTest, QuickTestDTO]):
    """Quick tests in the caller's transaction; every change appends its event.
    A test is cancelled only while queued: once an agent holds it, fail it instead."""

    model = QuickTest
    entity = "quick test"
    shape = _SHAPE
    transitions = _BY_VERB
    events_name_agent = True

    def find_stale(
        self, older_than: timedelta, *, now: datetime | None = None
    ) -> builtins.list[QuickTestDTO]:
        """Claimed or running tests held longer than ``older_than`` (oldest first):
        candidates for :meth:`requeue` or :meth:`fail`. Reading never writes."""
        fields("quick test query", [("now", None if now is None else moment_problem(now))])
        cutoff = earlier(now or utcnow(), older_than)
        rows = self.session.execute(
            select(*_SHAPE.columns)
            .where(
                QuickTest.status.in_(_HELD),
                or_(QuickTest.started_at.is_(None), QuickTest.started_at < cutoff),
            )
            .order_by(QuickTest.started_at, QuickTest.id)
        )
        return _SHAPE.many(rows.all())

    # --- the queue ---------------------------------------------------------------

    def dispatch(
        self,
        agent_id: str,
        *,
        model_path: str,
        engine_name: str,
        benchmark_name: str,
        suite_name: str | None = None,
        engine_mode: str = "docker",
        profile_id: str | None = None,
    ) -> QuickTestDTO:
        """Queue a test for an agent, with a new ``command_id`` for its heartbeat.

        ``profile_id`` names an engine profile (:class:`NotFoundError` when there
        is none); the test keeps the id even if the profile is deleted later.
        """
        errors = [
            FieldError(field, "must not be empty")
            for field, value in (
                ("model_path", model_path),
                ("engine_name", engine_name),
                ("benchmark_name", benchmark_name),
            )
            if not value or not value.strip()
        ]
        problem = mode_problem(engine_mode)
        if problem:
            errors.append(FieldError("engine_mode", problem))
        if errors:
            raise ValidationError("quick test", errors)
        self._events.lock_log()
        self._require_agent(agent_id)
        if profile_id and (
            self.session.scalar(select(EngineProfile.id).where(EngineProfile.id == profile_id))
            is None
        ):
            raise NotFoundError("engine profile", profile_id)
        return self._create(
            insert(QuickTest).values(
                agent_id=agent_id,
                model_path=model_path,
                engine_name=engine_name,
                benchmark_name=benchmark_name,
                suite_name=suite_name,
                status=QuickTestStatus.QUEUED.value,
                created_at=utcnow(),
                command_id=str(uuid.uuid4()),
                engine_mode=engine_mode,
                profile_id=profile_id or "",
            ),
            EventType.QUICK_TEST_DISPATCHED,
            {
                "agent_id": agent_id,
                "model_path": model_path,
                "engine_name": engine_name,
                "benchmark_name": benchmark_name,
                "suite_name": suite_name,
                "engine_mode": engine_mode,
                "profile_id": profile_id or "",
            },
            # Only the agent reference can fail: the agent went away.
            NotFoundError("agent", agent_id),
        )

    def claim_next(self, agent_id: str) -> QuickTestDTO | None:
        """Atomically take the agent's oldest queued test (``queued -> claimed``).

        One UPDATE whose subquery picks the row. PostgreSQL: the subquery locks
        it ``FOR UPDATE SKIP LOCKED``, so a concurrent claimer moves on to the
        next test instead of queueing behind this one and finding it taken.
        SQLite: the statement runs under the database's single write lock.
        Either way no two claimers ever receive the same test. ``None`` when
        the agent has nothing queued.
        """
        rule = _BY_VERB["claim_next"]
        waiting = [str(s) for s in rule.allowed_from]
        self._events.lock_log()
        oldest = (
            select(QuickTest.id)
            .where(
                QuickTest.agent_id == agent_id,
                QuickTest.status.in_(waiting),
            )
            .order_by(QuickTest.created_at.nulls_first(), QuickTest.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claimed = self.session.execute(
            update(QuickTest)
            .where(QuickTest.id == oldest, QuickTest.status.in_(waiting))
            .values(status=str(rule.to), started_at=utcnow())
            .returning(QuickTest.id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if claimed is None:
            return None
        test_id = claimed[0]
        self._events.append(
            rule.event,
            source_id=test_id,
            data={"from": waiting[0], "to": str(rule.to), "agent_id": agent_id},
        )
        return self.get(test_id)

    # --- lifecycle (fail and cancel: see AssignedWork) ----------------------------

    def start(self, test_id: str) -> QuickTestDTO:
        """``claimed -> running``: the agent began the benchmark."""
        return self._move(test_id, "start", {})

    def complete(self, test_id: str, *, result_id: str) -> QuickTestDTO:
        """``running -> completed``, linking the stored run."""
        self._events.lock_log()
        if self.session.scalar(select(Run.id).where(Run.id == result_id)) is None:
            raise NotFoundError("run", result_id)
        try:
            with self.session.begin_nested():
                return self._move(
                    test_id,
                    "complete",
                    {"completed_at": utcnow(), "result_id": result_id},
                    extra={"result_id": result_id},
                )
        except IntegrityError:
            raise NotFoundError("run", result_id) from None

    def requeue(self, test_id: str) -> QuickTestDTO:
        """``claimed | running -> queued``, for a test whose agent went silent."""
        return self._move(test_id, "requeue", {"started_at": None})

    def delete(self, test_id: str) -> None:
        """Delete a test no agent has (not ``claimed``, ``running`` or KITT's
        ``dispatched``), and its log lines; its events stay (``quick_test.deleted``
        counts the lines).

        An agent claiming the test concurrently either wins (and the deletion is
        refused with :class:`InvalidTransitionError`) or finds it gone; either
        way nothing is half deleted (see :meth:`_delete_unless`).
        """
        current, lines = self._delete_unless(test_id, _UNDELETABLE, QuickTestLog, "test_id")
        self._events.append(
            EventType.QUICK_TEST_DELETED,
            source_id=test_id,
            data={"status": current.status, "agent_id": current.agent_id, "log_lines": lines},
        )
