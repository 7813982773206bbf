"""KITT 1.7's ``AgentManager`` over karr_db: the same methods and return shapes.

What a heartbeat hands back, which commands a quick test becomes, when an
agent counts as stale: KITT's business logic, kept. Storage goes through
:class:`~karr_db.repositories.agents.AgentsRepository` and
:class:`~karr_db.repositories.quick_tests.QuickTestsRepository`, so every
change is one transaction with its event in the log, on SQLite and PostgreSQL.

Where karr_db is deliberately stricter than KITT's own manager:

- **Tokens are never stored in clear**, only as their SHA-256 hash;
  a weak or empty token is refused with :class:`ValidationError` naming
  ``token``. Every agent has a token (test agents get a generated one), and an
  agent without one (only legacy rows can lack it) never authenticates: KITT
  lets such an agent in.
- **A registration under a known name must present that agent's token**
  (:class:`InvalidTokenError` otherwise); KITT's API checks this before it
  calls ``register``, and KITT's manager would accept any.
- **A heartbeat claims the oldest queued quick test atomically**
  (``queued -> claimed``; KITT writes ``dispatched``), so two heartbeats,
  from any process, never hand out the same test.
- **An agent campaigns or quick tests still reference is not deleted**:
  ``delete_agent`` raises :class:`StillReferencedError` (KITT's database
  refuses the DELETE with a raw integrity error).
- **Statuses are checked**: a heartbeat's status must be one the layer knows
  (``idle``, ``running``, ``online``, ``offline``, ``busy``); a provisioned
  agent that never connected is ``offline`` (KITT: ``provisioned``).
- **hardware_details must be the JSON text of an object** (stored as one);
  other text is refused with :class:`ValidationError` naming the field. A
  re-registration's empty text fields leave the stored values (KITT blanks them).
- **An engine command's runtime config lives in an engine profile**
  (KITT writes the JSON into the test's ``profile_id``); see
  :meth:`AgentManager.queue_engine_command`.
- Ids are UUID strings (KITT: 16 hex characters); times are ISO 8601 in UTC
  with their offset; ``tags`` and ``hardware_details`` are JSON text, as KITT
  hands them out; a command's ``command_id`` is its own UUID.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from json import dumps
from typing import Any, Protocol

from pydantic import SecretStr

from karr_db.errors import FieldError, InvalidTokenError, NotFoundError, ValidationError
from karr_db.kitt_services._base import Service, iso, tags_text, text
from karr_db.limits import PAGE_LIMIT
from karr_db.repositories.agents import AgentDTO
from karr_db.repositories.engine_profiles import config_problems
from karr_db.repositories.quick_tests import QuickTestDTO
from karr_db.repositories.settings import AGENT_SETTING_DEFAULTS
from karr_db.uow import UnitOfWork

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "HEARTBEAT_TIMEOUT_S",
    "AgentManager",
    "Heartbeat",
    "Registration",
    "agent_dict",
    "command_for",
]

log = logging.getLogger(__name__)

#: Seconds without a heartbeat after which KITT shows an agent offline.
HEARTBEAT_TIMEOUT_S = 90
#: What KITT tells an agent at registration.
HEARTBEAT_INTERVAL_S = 30
#: The tag that marks KITT's simulated agents (always online, never stale).
TEST_TAG = "test"
#: Benchmarks whose quick-test rows are engine commands, not tests.
ENGINE_COMMANDS = ("install_engine", "start_engine", "stop_engine")
#: Where KITT queues a storage cleanup.
CLEANUP_ENGINE = "cleanup"


class Registration(Protocol):
    """What KITT's ``AgentRegistration`` carries (its pydantic model fits)."""

    name: str
    hostname: str
    port: int
    gpu_info: str
    gpu_count: int
    cpu_info: str
    ram_gb: int
    environment_type: str
    fingerprint: str
    kitt_version: str
    cpu_arch: str
    hardware_details: str


class Heartbeat(Protocol):
    """What KITT's ``AgentHeartbeat`` carries (its pydantic model fits): a status,
    and the engines the agent found (``engine``, ``installed``, ``running``,
    ``version``, ``binary_path``)."""

    status: str
    engines: list[dict[str, Any]]


def agent_dict(agent: AgentDTO) -> dict[str, Any]:
    """An agent as KITT's API returns it: its columns (``""`` and ``0`` where KITT's
    columns default to them and nothing is stored), never a token."""
    return {
        "id": agent.id,
        "name": agent.name,
        "hostname": agent.hostname or "",
        "port": agent.port or 0,
        "status": agent.status,
        "gpu_info": agent.gpu_info or "",
        "gpu_count": agent.gpu_count or 0,
        "cpu_info": agent.cpu_info or "",
        "ram_gb": agent.ram_gb or 0,
        "environment_type": agent.environment_type or "",
        "fingerprint": agent.fingerprint or "",
        "kitt_version": agent.kitt_version or "",
        "last_heartbeat": iso(agent.last_heartbeat) or "",
        "registered_at": iso(agent.registered_at),
        "notes": agent.notes or "",
        "tags": tags_text(agent.tags),
        "cpu_arch": agent.cpu_arch or "",
        "hardware_details": "" if agent.hardware_details is None else dumps(agent.hardware_details),
        "token_prefix": agent.token_prefix or "",
    }


def command_for(uow: UnitOfWork, test: QuickTestDTO) -> dict[str, Any]:
    """The command a queued quick test becomes in a heartbeat's answer (KITT's rules);
    an engine command carries its profile's ``runtime_config``."""
    if test.engine_name == CLEANUP_ENGINE:
        kind = "cleanup_storage"
    elif test.benchmark_name in ENGINE_COMMANDS:
        kind = str(test.benchmark_name)
    else:
        kind = "run_test"
    payload: dict[str, Any] = {
        "model_path": test.model_path,
        "engine_name": test.engine_name,
        "benchmark_name": test.benchmark_name,
        "suite_name": test.suite_name,
        "engine_mode": test.engine_mode,
        "profile_id": test.profile_id or "",
    }
    if kind in ENGINE_COMMANDS:
        profile = uow.engine_profiles.find(test.profile_id) if test.profile_id else None
        payload["runtime_config"] = {} if profile is None else profile.runtime_config
    return {
        "command_id": test.command_id or test.id,
        "test_id": test.id,
        "type": kind,
        "payload": payload,
    }


def _details(value: object) -> dict[str, Any] | None:
    """KITT's ``hardware_details`` text as the object karr_db stores (``None`` for none)."""
    if not value:
        return None
    try:
        parsed = json.loads(text("agent", "hardware_details", value))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
        parsed = None
    if not isinstance(parsed, dict):
        raise ValidationError(
            "agent", [FieldError("hardware_details", "must be the JSON text of an object")]
        )
    return parsed


def _engine_status(report: dict[str, Any]) -> str:
    """KITT's reading of an engine an agent reported: running, installed or not."""
    if report.get("running"):
        return "running"
    return "installed" if report.get("installed") else "not_installed"


def _config_name(engine: str, config: dict[str, Any]) -> str:
    """The name of the profile that carries an engine command's runtime config."""
    digest = hashlib.sha256(dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    return f"{engine}-native-{digest}"


def _empty(value: str | None) -> str | None:
    """KITT sends ``""`` for a field it does not know; karr_db stores nothing then."""
    return value or None


def _tags(value: Any) -> list[str]:
    """Tags as KITT's API passes them: a list, or JSON text of one."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        value = parsed
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ValidationError("agent", [FieldError("tags", "must be a list of strings")])
    return value


def _engine_reports(value: object) -> list[dict[str, Any]]:
    """The engines a heartbeat reports: a list of objects, each named by ``engine``."""
    if not isinstance(value, list):
        raise ValidationError("heartbeat", [FieldError("engines", "must be a list")])
    errors = [
        FieldError(f"engines.{index}", "must be an object with a string 'engine'")
        for index, report in enumerate(value)
        if not isinstance(report, dict) or not isinstance(report.get("engine", ""), str)
    ]
    if errors:
        raise ValidationError("heartbeat", errors)
    return value


class AgentManager(Service):
    """KITT's ``AgentManager`` over karr_db (see the module docstring)."""

    # --- registration ------------------------------------------------------------

    def provision(self, name: str, port: int = 8090) -> dict[str, Any]:
        """A new agent (or a known one with a new token): ``agent_id``, the
        ``token`` (shown this once) and its ``token_prefix``."""

        def work(uow: UnitOfWork) -> tuple[str, str]:
            uow.events.lock_log()  # the name is read and written under one lock
            existing = uow.agents.find_by_name(name)
            if existing is not None:
                credentials = uow.agents.rotate_token(existing.id)
                uow.agents.update(existing.id, port=port)
            else:
                credentials = uow.agents.register(name, hostname=name, port=port)
                uow.agents.set_status(credentials.agent.id, "offline")
            return credentials.agent.id, credentials.token.get_secret_value()

        agent_id, token = self._write(work, "provisioning an agent")
        return {"agent_id": agent_id, "token": token, "token_prefix": token[:8]}

    def create_test_agent(
        self,
        name: str,
        gpu_info: str = "NVIDIA RTX 4090 24GB",
        gpu_count: int = 1,
        cpu_info: str = "Intel Core i9-13900K",
        cpu_arch: str = "x86_64",
        ram_gb: int = 64,
        environment_type: str = "native_linux",
    ) -> dict[str, Any]:
        """A simulated agent, tagged ``test``: always online, never stale."""

        def work(uow: UnitOfWork) -> str:
            return uow.agents.register(
                name,
                hostname=f"test-{name}",
                tags=[TEST_TAG],
                cpu_arch=cpu_arch or None,
                gpu_info=gpu_info,
                gpu_count=gpu_count,
                cpu_info=cpu_info,
                ram_gb=ram_gb,
                environment_type=environment_type,
            ).agent.id

        return {"agent_id": self._write(work, "creating a test agent")}

    def is_test_agent(self, agent_id: str) -> bool:
        with self._read() as uow:
            agent = uow.agents.find(agent_id)
        return agent is not None and TEST_TAG in agent.tags

    def register(self, reg: Registration, token: str) -> dict[str, Any]:
        """Register an agent, or update the one of that name (its token must match):
        ``agent_id`` and ``heartbeat_interval_s``."""
        details = _details(reg.hardware_details)

        def work(uow: UnitOfWork) -> str:
            uow.events.lock_log()  # the token is checked and replaced under one lock
            existing = uow.agents.find_by_name(reg.name)
            if existing is not None and not uow.agents.verify_token(existing.id, token):
                raise InvalidTokenError(existing.id)
            return uow.agents.register(
                reg.name,
                hostname=reg.hostname,
                port=reg.port,
                token=token,
                replace=True,
                gpu_info=_empty(reg.gpu_info),
                gpu_count=reg.gpu_count,
                cpu_info=_empty(reg.cpu_info),
                ram_gb=reg.ram_gb,
                environment_type=_empty(reg.environment_type),
                fingerprint=_empty(reg.fingerprint),
                kitt_version=_empty(reg.kitt_version),
                cpu_arch=_empty(reg.cpu_arch),
                hardware_details=details,
            ).agent.id

        agent_id = self._write(work, "registering an agent")
        self._emit("agent_status", agent_id, {"name": reg.name, "status": "online"})
        return {"agent_id": agent_id, "heartbeat_interval_s": HEARTBEAT_INTERVAL_S}

    def heartbeat(self, agent_id: str, hb: Heartbeat) -> dict[str, Any]:
        """Record the heartbeat and the engines the agent reports (as ``native``),
        and hand the agent its oldest queued quick test as a command, with its
        settings: ``{"ack": True, "commands": [...], "settings": {...}}``. One
        transaction."""

        reports = _engine_reports(hb.engines)

        def work(uow: UnitOfWork) -> tuple[list[QuickTestDTO], dict[str, Any]]:
            uow.agents.heartbeat(agent_id, status=hb.status or "idle")
            for report in reports:
                engine = report.get("engine", "")
                if engine:
                    uow.agent_engines.report(
                        agent_id,
                        engine,
                        mode="native",
                        version=report.get("version") or "",
                        binary_path=report.get("binary_path") or "",
                        status=_engine_status(report),
                    )
            claimed = uow.quick_tests.claim_next(agent_id)
            tests = [] if claimed is None else [claimed]
            answer = {
                "ack": True,
                "commands": [command_for(uow, test) for test in tests],
                "settings": uow.agent_settings.get(agent_id).values,
            }
            return tests, answer

        claimed, answer = self._write(work, "recording a heartbeat")
        for test in claimed:
            self._emit("status", test.id, {"status": test.status, "test_id": test.id})
        if claimed:
            log.info("dispatched %d command(s) to agent %s", len(claimed), agent_id)
        return answer

    # --- reading ---------------------------------------------------------------------

    def get_agent(self, agent_id: str) -> dict[str, Any] | None:
        return self._found(lambda uow: uow.agents.find(agent_id), agent_dict)

    def get_agent_by_name(self, name: str) -> dict[str, Any] | None:
        return self._found(lambda uow: uow.agents.find_by_name(name), agent_dict)

    def list_agents(self) -> list[dict[str, Any]]:
        """Every agent by name, after marking the silent ones offline (KITT's rule:
        a heartbeat older than :data:`HEARTBEAT_TIMEOUT_S`; test agents and agents
        that never sent one are left alone)."""

        def work(uow: UnitOfWork) -> list[AgentDTO]:
            uow.events.lock_log()
            stale = _all(uow, stale_after=timedelta(seconds=HEARTBEAT_TIMEOUT_S))
            for agent in stale:
                if (
                    agent.status != "offline"
                    and agent.last_heartbeat is not None
                    and TEST_TAG not in agent.tags
                ):
                    uow.agents.set_status(agent.id, "offline")
            return _all(uow)

        return [agent_dict(a) for a in self._write(work, "listing agents")]

    # --- changing ------------------------------------------------------------------

    def delete_agent(self, agent_id: str) -> bool:
        """``False`` for an unknown agent; :class:`StillReferencedError` while
        campaigns or quick tests reference it (nothing is deleted)."""

        return self._changed(lambda uow: uow.agents.retire(agent_id), "deleting an agent")

    def update_agent(self, agent_id: str, updates: dict[str, Any]) -> bool:
        """Change ``notes`` and ``tags`` (other keys are ignored, as in KITT);
        ``False`` when there is nothing to change or no such agent."""
        notes = updates.get("notes")
        if notes is not None:
            text("agent", "notes", notes)
        tags = _tags(updates["tags"]) if "tags" in updates else None
        if "notes" not in updates and tags is None:
            return False

        return self._changed(
            lambda uow: uow.agents.update(agent_id, notes=notes, tags=tags), "updating an agent"
        )

    # --- tokens ----------------------------------------------------------------------

    def verify_token(self, agent_id: str, token: str) -> bool:
        """Whether ``token`` is the agent's (``False`` for an unknown agent); read
        from the primary, so a rotated token stops working at once."""
        with self._read(fresh=True) as uow:
            return uow.agents.verify_token(agent_id, token)

    def check_agent_auth(self, agent_id: str, token: str) -> tuple[bool, str | None, int]:
        """``(ok, error, http_status)`` as KITT's API uses it: 404 unknown agent,
        401 no token presented, 403 wrong token."""
        with self._read(fresh=True) as uow:
            agent = uow.agents.find(agent_id)
        if agent is None:
            return False, "Agent not found", 404
        return self._check(agent.id, token)

    def check_agent_auth_by_name(self, name: str, token: str) -> tuple[bool, str | None, int]:
        """As :meth:`check_agent_auth`, by name; an unknown name may register."""
        with self._read(fresh=True) as uow:
            agent = uow.agents.find_by_name(name)
        if agent is None:
            return True, None, 0
        return self._check(agent.id, token)

    def _check(self, agent_id: str, token: str) -> tuple[bool, str | None, int]:
        if not token:
            return False, "Missing authorization", 401
        if not self.verify_token(agent_id, token):
            return False, "Invalid token for this agent", 403
        return True, None, 0

    def rotate_token(self, agent_id: str) -> dict[str, Any] | None:
        """A new token (shown this once) and its prefix; ``None`` for an unknown agent."""

        def work(uow: UnitOfWork) -> SecretStr | None:
            try:
                return uow.agents.rotate_token(agent_id).token
            except NotFoundError:
                return None

        token = self._write(work, "rotating a token")
        if token is None:
            return None
        secret = token.get_secret_value()
        return {"token": secret, "token_prefix": secret[:8]}

    # --- settings and commands ----------------------------------------------------------

    def get_agent_settings(self, agent_id: str) -> dict[str, str]:
        """The agent's settings by key (``{}`` for an unknown agent, as KITT answers)."""
        with self._read() as uow:
            found = uow.agent_settings.find(agent_id)
        return {} if found is None else found.values

    def update_agent_settings(self, agent_id: str, updates: dict[str, Any]) -> bool:
        """Set the known settings among ``updates`` (values as text, other keys
        ignored, as in KITT); ``False`` when none is known or there is no such
        agent. A value an agent could not read (``heartbeat_interval_s`` that is
        not a number of seconds, ...) raises :class:`ValidationError` naming it."""
        if not isinstance(updates, dict):
            raise ValidationError("agent settings", [FieldError("updates", "must be an object")])
        known = {k: str(v) for k, v in updates.items() if k in AGENT_SETTING_DEFAULTS}
        if not known:
            return False

        return self._changed(
            lambda uow: uow.agent_settings.update(agent_id, known), "updating an agent's settings"
        )

    def queue_cleanup_command(self, agent_id: str, model_path: str = "") -> str:
        """Queue a storage cleanup, handed out by the agent's next heartbeat; its command id."""

        def work(uow: UnitOfWork) -> QuickTestDTO:
            return uow.quick_tests.dispatch(
                agent_id,
                model_path=model_path or "__cleanup__",
                engine_name=CLEANUP_ENGINE,
                benchmark_name="cleanup_storage",
                suite_name="quick",
            )

        return self._command(work, "queueing a cleanup")

    def queue_engine_command(
        self,
        agent_id: str,
        engine_name: str,
        command: str,
        runtime_config: dict[str, Any] | None = None,
        model_path: str = "",
    ) -> str:
        """Queue ``install_engine``, ``start_engine`` or ``stop_engine`` (native mode),
        handed out by the agent's next heartbeat; its command id.

        KITT keeps ``runtime_config`` as JSON text in the test's ``profile_id``;
        karr_db's ``profile_id`` names a real profile, so a runtime config is
        kept in an engine profile named ``<engine>-native-<digest>`` (made once
        per distinct config, then reused), and the heartbeat hands the agent
        that profile's ``runtime_config``, as KITT's does.
        """
        if command not in ENGINE_COMMANDS:
            raise ValidationError(
                "engine command", [FieldError("command", f"must be one of {ENGINE_COMMANDS}")]
            )
        if runtime_config:
            problems = config_problems("runtime_config", runtime_config)
            if problems:
                raise ValidationError("engine command", problems)

        def work(uow: UnitOfWork) -> QuickTestDTO:
            profile_id = None
            if runtime_config:
                name = _config_name(engine_name, runtime_config)
                profile = uow.engine_profiles.find_by_name(name) or uow.engine_profiles.create(
                    name,
                    engine_name,
                    mode="native",
                    description="runtime configuration of an engine command",
                    runtime_config=runtime_config,
                )
                profile_id = profile.id
            return uow.quick_tests.dispatch(
                agent_id,
                model_path=model_path or "__engine__",
                engine_name=engine_name,
                benchmark_name=command,
                suite_name="quick",
                engine_mode="native",
                profile_id=profile_id,
            )

        return self._command(work, "queueing an engine command")

    def _command(self, work: Callable[[UnitOfWork], QuickTestDTO], operation: str) -> str:
        queued = self._write(work, operation)
        return queued.command_id or queued.id


def _all(uow: UnitOfWork, *, stale_after: timedelta | None = None) -> list[AgentDTO]:
    """Every agent (by name), page after page."""
    agents: list[AgentDTO] = []
    cursor: str | None = None
    while True:
        page = uow.agents.list(stale_after=stale_after, limit=PAGE_LIMIT, cursor=cursor)
        agents += page.items
        cursor = page.next_cursor
        if cursor is None:
            return agents
