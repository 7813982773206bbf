"""KITT 1.7's services over karr_db, called as KITT's API handlers call them, both dialects.

The registration and heartbeat payloads below carry the fields of KITT's own
pydantic models (``kitt.web.models.agent``); the services read them by
attribute, as they read KITT's. Where karr_db is deliberately stricter than
KITT, the test says so and asserts the layer's answer.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from karr_db.database import Database
from karr_db.engine import make_engine
from karr_db.errors import (
    AlreadyExistsError,
    ConnectionLostError,
    CounterLimitError,
    InvalidTokenError,
    InvalidTransitionError,
    NotFoundError,
    SchemaError,
    StillReferencedError,
    ValidationError,
)
from karr_db.kitt import KarrResultStore
from karr_db.kitt_services import (
    AgentManager,
    CampaignService,
    EngineService,
    QuickTestService,
    ResultService,
    SettingsService,
    open_services,
)
from karr_db.models import Agent
from karr_db.models.types import utcnow
from tests.support.documents import minimal


class Registration(BaseModel):
    """The fields and defaults of KITT 1.7's ``AgentRegistration``."""

    name: str
    hostname: str
    port: int = 8090
    gpu_info: str = ""
    gpu_count: int = 0
    cpu_info: str = ""
    cpu_arch: str = ""
    ram_gb: int = 0
    environment_type: str = ""
    fingerprint: str = ""
    kitt_version: str = ""
    capabilities: list[str] = Field(default_factory=list)
    hardware_details: str = ""


class Heartbeat(BaseModel):
    """The fields and defaults of KITT 1.7's ``AgentHeartbeat``."""

    status: str = "idle"
    current_task: str = ""
    gpu_utilization_pct: float = 0.0
    gpu_memory_used_gb: float = 0.0
    storage_gb_free: float = 0.0
    uptime_s: float = 0.0
    engines: list[dict[str, Any]] = Field(default_factory=list)


class Published:
    """Stands in for KITT's event bus: records what the services publish."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, event_type: str, source_id: str, data: dict[str, Any]) -> None:
        self.events.append((event_type, source_id, data))


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def services(migrated_url: str, published: Published) -> Iterator[dict[str, Any]]:
    """KITT's service registry, as ``open_services`` builds it."""
    built = open_services(migrated_url, publish=published)
    yield built
    built["database"].close()


@pytest.fixture
def agents(services: dict[str, Any]) -> AgentManager:
    manager: AgentManager = services["agent_manager"]
    return manager


@pytest.fixture
def campaigns(services: dict[str, Any]) -> CampaignService:
    service: CampaignService = services["campaign_service"]
    return service


def _token() -> str:
    return secrets.token_hex(32)  # what KITT's provisioning generates


def _register(agents: AgentManager, name: str = "dgx-01", **fields: Any) -> tuple[str, str]:
    token = _token()
    reg = Registration(name=name, hostname=fields.pop("hostname", "10.0.0.5"), **fields)
    return agents.register(reg, token)["agent_id"], token


def _dispatch(services: dict[str, Any], agent_id: str, model: str = "/m/llama") -> str:
    """A quick test queued the way KITT's quick-test API queues one."""
    database: Database = services["database"]
    with database.unit_of_work() as uow:
        return uow.quick_tests.dispatch(
            agent_id,
            model_path=model,
            engine_name="vllm",
            benchmark_name="throughput",
            suite_name="quick",
        ).id


def _age_heartbeat(services: dict[str, Any], agent_id: str, seconds: int) -> None:
    """Set the agent's last heartbeat ``seconds`` in the past (no clock to wait for)."""
    database: Database = services["database"]
    with database.unit_of_work() as uow:
        uow.session.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(last_heartbeat=utcnow() - timedelta(seconds=seconds))
        )


# --- agents: registration and authentication ----------------------------------------


def test_register_answers_as_kitt_and_stores_only_a_hash(
    services: dict[str, Any], agents: AgentManager, published: Published
) -> None:
    token = _token()
    details = {"gpus": [{"name": "H100", "vram_gb": 80}]}
    reg = Registration(
        name="dgx-01",
        hostname="10.0.0.5",
        gpu_info="8x H100",
        gpu_count=8,
        cpu_arch="x86_64",
        ram_gb=2048,
        kitt_version="1.7.0",
        hardware_details=json.dumps(details),
    )
    answer = agents.register(reg, token)
    assert set(answer) == {"agent_id", "heartbeat_interval_s"}
    assert answer["heartbeat_interval_s"] == 30
    agent = agents.get_agent(answer["agent_id"])
    assert agent is not None
    assert "token" not in agent
    assert "token_hash" not in agent
    assert (agent["name"], agent["hostname"], agent["port"], agent["status"]) == (
        "dgx-01",
        "10.0.0.5",
        8090,
        "online",
    )
    assert (agent["gpu_count"], agent["cpu_arch"], agent["ram_gb"]) == (8, "x86_64", 2048)
    assert json.loads(agent["hardware_details"]) == details
    assert agent["tags"] == "[]"
    assert agent["token_prefix"] == token[:8]
    assert agent["last_heartbeat"].endswith("+00:00")
    assert agents.get_agent_by_name("dgx-01") == agent
    assert agents.get_agent("nope") is None
    assert agents.get_agent_by_name("nope") is None
    with services["database"].unit_of_work(readonly=True) as uow:
        row = uow.session.execute(
            select(Agent.__table__).where(Agent.id == answer["agent_id"])
        ).one()
    stored = " ".join(str(value) for value in row)
    assert token not in stored  # never in clear, whatever column holds the hash
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert agents.get_agent_settings(answer["agent_id"]) == {
        "model_storage_dir": "~/.kitt/models",
        "model_share_source": "",
        "model_share_mount": "",
        "auto_cleanup": "true",
        "heartbeat_interval_s": "30",
        "kitt_image": "",
    }
    assert published.events == [
        ("agent_status", answer["agent_id"], {"name": "dgx-01", "status": "online"})
    ]


def test_authentication_answers_kitts_status_codes(agents: AgentManager) -> None:
    agent_id, token = _register(agents)
    assert agents.verify_token(agent_id, token) is True
    assert agents.verify_token(agent_id, _token()) is False
    assert agents.verify_token("nope", token) is False
    assert agents.check_agent_auth(agent_id, token) == (True, None, 0)
    assert agents.check_agent_auth(agent_id, "") == (False, "Missing authorization", 401)
    assert agents.check_agent_auth(agent_id, _token()) == (
        False,
        "Invalid token for this agent",
        403,
    )
    assert agents.check_agent_auth("nope", token) == (False, "Agent not found", 404)
    assert agents.check_agent_auth_by_name("dgx-01", token) == (True, None, 0)
    assert agents.check_agent_auth_by_name("dgx-01", "")[2] == 401
    assert agents.check_agent_auth_by_name("new-box", "") == (True, None, 0)


def test_reregistering_keeps_the_agent_and_needs_its_token(agents: AgentManager) -> None:
    """Stricter than KITT's manager: another token cannot take over a known name."""
    agent_id, token = _register(agents, hostname="old")
    again = agents.register(Registration(name="dgx-01", hostname="new", port=9000), token)
    assert again["agent_id"] == agent_id
    agent = agents.get_agent(agent_id)
    assert agent is not None
    assert (agent["hostname"], agent["port"]) == ("new", 9000)
    assert (agent["gpu_info"], agent["notes"], agent["cpu_arch"]) == ("", "", "")  # as KITT
    with pytest.raises(InvalidTokenError):
        agents.register(Registration(name="dgx-01", hostname="evil"), _token())
    unchanged = agents.get_agent(agent_id)
    assert unchanged is not None
    assert unchanged["hostname"] == "new"
    assert agents.verify_token(agent_id, token)


@pytest.mark.parametrize(
    ("field", "value"),
    [("token", "short"), ("hardware_details", "not json"), ("hardware_details", "[1, 2]")],
)
def test_bad_registrations_are_refused_by_field(
    agents: AgentManager, field: str, value: str
) -> None:
    token = value if field == "token" else _token()
    reg = Registration(name="dgx-01", hostname="h", **({field: value} if field != "token" else {}))
    with pytest.raises(ValidationError) as refused:
        agents.register(reg, token)
    assert refused.value.fields == [field]
    assert agents.list_agents() == []


def test_provision_then_register_with_the_provisioned_token(agents: AgentManager) -> None:
    provisioned = agents.provision("spark", port=8091)
    assert set(provisioned) == {"agent_id", "token", "token_prefix"}
    assert provisioned["token_prefix"] == provisioned["token"][:8]
    agent = agents.get_agent(provisioned["agent_id"])
    assert agent is not None
    assert (agent["hostname"], agent["port"], agent["status"]) == ("spark", 8091, "offline")
    registered = agents.register(
        Registration(name="spark", hostname="10.0.0.9"), provisioned["token"]
    )
    assert registered["agent_id"] == provisioned["agent_id"]

    again = agents.provision("spark", port=8092)  # a known name: a new token
    assert again["agent_id"] == provisioned["agent_id"]
    assert not agents.verify_token(again["agent_id"], provisioned["token"])
    assert agents.verify_token(again["agent_id"], again["token"])


def test_rotate_token(agents: AgentManager) -> None:
    agent_id, token = _register(agents)
    rotated = agents.rotate_token(agent_id)
    assert rotated is not None
    assert rotated["token_prefix"] == rotated["token"][:8]
    assert not agents.verify_token(agent_id, token)
    assert agents.verify_token(agent_id, rotated["token"])
    agent = agents.get_agent(agent_id)
    assert agent is not None
    assert agent["token_prefix"] == rotated["token_prefix"]
    assert agents.rotate_token("nope") is None


def test_token_checks_read_the_primary_not_a_lagging_replica(
    migrated_url: str, copy_database: Any
) -> None:
    """A rotated token stops working at once, however far the standby lags: the
    replica here is a copy taken before the rotation (a standby frozen then)."""
    with Database(migrated_url) as database:
        manager = AgentManager(database)
        agent_id, old = _register(manager)
        database.engine.dispose()  # PostgreSQL copies a database nobody is connected to
        database.replica = make_engine(copy_database(migrated_url))  # frozen before rotation
        new = manager.rotate_token(agent_id)
        assert new is not None
        assert manager.verify_token(agent_id, old) is False
        assert manager.verify_token(agent_id, new["token"]) is True
        assert manager.check_agent_auth(agent_id, old)[2] == 403
        assert manager.check_agent_auth_by_name("dgx-01", old)[2] == 403
        late_id, late_token = _register(manager, name="late")  # not on the replica at all
        assert manager.check_agent_auth(late_id, late_token) == (True, None, 0)
        assert manager.check_agent_auth_by_name("late", "")[2] == 401


# --- agents: heartbeats and commands ---------------------------------------------------


def test_heartbeat_hands_out_one_queued_test_at_a_time(
    services: dict[str, Any], agents: AgentManager, published: Published
) -> None:
    agent_id, _ = _register(agents)
    idle = agents.heartbeat(agent_id, Heartbeat())
    assert idle == {"ack": True, "commands": [], "settings": agents.get_agent_settings(agent_id)}
    first = _dispatch(services, agent_id, "/m/first")
    second = _dispatch(services, agent_id, "/m/second")

    answer = agents.heartbeat(agent_id, Heartbeat(status="running"))
    [command] = answer["commands"]
    assert command["test_id"] == first
    assert command["type"] == "run_test"
    assert command["command_id"]
    assert command["command_id"] != first
    assert command["payload"] == {
        "model_path": "/m/first",
        "engine_name": "vllm",
        "benchmark_name": "throughput",
        "suite_name": "quick",
        "engine_mode": "docker",
        "profile_id": "",
    }
    agent = agents.get_agent(agent_id)
    assert agent is not None
    assert agent["status"] == "running"
    with services["database"].unit_of_work(readonly=True) as uow:
        assert uow.quick_tests.get(first).status == "claimed"  # KITT: "dispatched"
        assert uow.quick_tests.get(second).status == "queued"
    assert ("status", first, {"status": "claimed", "test_id": first}) in published.events

    [next_command] = agents.heartbeat(agent_id, Heartbeat())["commands"]
    assert next_command["test_id"] == second
    assert agents.heartbeat(agent_id, Heartbeat())["commands"] == []


def test_heartbeat_records_the_engines_the_agent_reports(
    services: dict[str, Any], agents: AgentManager
) -> None:
    agent_id, _ = _register(agents)
    agents.heartbeat(
        agent_id,
        Heartbeat(
            engines=[
                {"engine": "llama_cpp", "installed": True, "version": "b4000", "binary_path": "/x"},
                {"engine": "ollama", "installed": True, "running": True},
                {"engine": "vllm", "installed": False},
                {"engine": "", "installed": True},  # nameless: ignored, as KITT does
            ]
        ),
    )
    engines: EngineService = services["engine_service"]
    reported = engines.get_agent_engines(agent_id)
    assert [(e["engine"], e["mode"], e["status"]) for e in reported] == [
        ("llama_cpp", "native", "installed"),
        ("ollama", "native", "running"),
        ("vllm", "native", "not_installed"),
    ]
    assert (reported[0]["version"], reported[0]["binary_path"]) == ("b4000", "/x")


def test_heartbeat_settings_follow_updates(agents: AgentManager) -> None:
    agent_id, _ = _register(agents)
    assert agents.update_agent_settings(agent_id, {"heartbeat_interval_s": 60, "x": "y"})
    assert agents.heartbeat(agent_id, Heartbeat())["settings"]["heartbeat_interval_s"] == "60"
    assert agents.update_agent_settings(agent_id, {"unknown": "1"}) is False
    assert agents.update_agent_settings("nope", {"auto_cleanup": "false"}) is False
    with pytest.raises(ValidationError) as refused:
        agents.update_agent_settings(agent_id, {"heartbeat_interval_s": "soon"})
    assert refused.value.fields == ["values.heartbeat_interval_s"]
    assert agents.get_agent_settings("nope") == {}


def test_cleanup_and_engine_commands_reach_the_agent_by_heartbeat(
    services: dict[str, Any], agents: AgentManager
) -> None:
    agent_id, _ = _register(agents)
    cleanup_id = agents.queue_cleanup_command(agent_id)
    [cleanup] = agents.heartbeat(agent_id, Heartbeat())["commands"]
    assert (cleanup["command_id"], cleanup["type"]) == (cleanup_id, "cleanup_storage")
    assert cleanup["payload"]["model_path"] == "__cleanup__"

    config = {"port": 8081, "ctx_size": 8192}
    start_id = agents.queue_engine_command(
        agent_id, "llama_cpp", "start_engine", runtime_config=config, model_path="/m/q4.gguf"
    )
    [start] = agents.heartbeat(agent_id, Heartbeat())["commands"]
    assert (start["command_id"], start["type"]) == (start_id, "start_engine")
    assert start["payload"]["runtime_config"] == config
    assert start["payload"]["engine_mode"] == "native"
    # The config is kept in a profile, reused for the same config.
    agents.queue_engine_command(agent_id, "llama_cpp", "start_engine", runtime_config=config)
    engines: EngineService = services["engine_service"]
    assert len(engines.list_profiles(engine="llama_cpp")) == 1

    agents.queue_engine_command(agent_id, "ollama", "stop_engine")
    [again, stop] = [
        c for _ in range(2) for c in agents.heartbeat(agent_id, Heartbeat())["commands"]
    ]
    assert (again["type"], again["payload"]["runtime_config"]) == ("start_engine", config)
    assert (stop["type"], stop["payload"]["runtime_config"]) == ("stop_engine", {})
    with pytest.raises(ValidationError):
        agents.queue_engine_command(agent_id, "ollama", "format_disk")


# --- agents: listing, test agents, changes ------------------------------------------------


def test_list_agents_marks_silent_agents_offline_but_not_test_agents(
    services: dict[str, Any], agents: AgentManager
) -> None:
    live, _ = _register(agents, "b-live")
    silent, _ = _register(agents, "a-silent")
    simulated = agents.create_test_agent("c-sim")["agent_id"]
    assert agents.is_test_agent(simulated)
    assert not agents.is_test_agent(live)
    assert not agents.is_test_agent("nope")
    _age_heartbeat(services, silent, 120)
    _age_heartbeat(services, simulated, 3600)
    _age_heartbeat(services, live, 30)
    listed = agents.list_agents()
    assert [(a["name"], a["status"]) for a in listed] == [
        ("a-silent", "offline"),
        ("b-live", "online"),
        ("c-sim", "online"),
    ]
    sim = listed[2]
    assert (sim["hostname"], json.loads(sim["tags"]), sim["cpu_arch"]) == (
        "test-c-sim",
        ["test"],
        "x86_64",
    )


def test_update_agent_changes_notes_and_tags_only(agents: AgentManager) -> None:
    agent_id, _ = _register(agents)
    assert agents.update_agent(agent_id, {"notes": "rack 4", "tags": ["gpu", "h100"], "port": 1})
    agent = agents.get_agent(agent_id)
    assert agent is not None
    assert (agent["notes"], json.loads(agent["tags"]), agent["port"]) == (
        "rack 4",
        ["gpu", "h100"],
        8090,
    )
    assert agents.update_agent(agent_id, {"tags": '["a"]'})
    updated = agents.get_agent(agent_id)
    assert updated is not None
    assert json.loads(updated["tags"]) == ["a"]
    assert agents.update_agent(agent_id, {"port": 1}) is False
    assert agents.update_agent("nope", {"notes": "x"}) is False


def test_delete_agent_is_refused_while_referenced(
    services: dict[str, Any], agents: AgentManager
) -> None:
    """Stricter than KITT: an agent quick tests point to is not deleted."""
    busy, _ = _register(agents, "busy")
    free, _ = _register(agents, "free")
    _dispatch(services, busy)
    with pytest.raises(StillReferencedError):
        agents.delete_agent(busy)
    assert agents.get_agent(busy) is not None
    assert agents.delete_agent(free) is True
    assert agents.get_agent(free) is None
    assert agents.delete_agent(free) is False


# --- campaigns -----------------------------------------------------------------------------


def test_campaign_crud_answers_as_kitt(
    agents: AgentManager, campaigns: CampaignService, published: Published
) -> None:
    agent_id, _ = _register(agents)
    config = {"models": [{"name": "llama"}], "engines": [{"name": "vllm"}]}
    campaign_id = campaigns.create("nightly", config, description="every night", agent_id=agent_id)
    got = campaigns.get(campaign_id)
    assert got is not None
    assert (got["name"], got["status"], got["agent_id"], got["config"]) == (
        "nightly",
        "draft",
        agent_id,
        config,
    )
    assert "config_json" not in got
    assert (got["total_runs"], got["succeeded"], got["failed"], got["skipped"]) == (0, 0, 0, 0)
    assert campaigns.get("nope") is None
    assert ("campaign_created", campaign_id, {"name": "nightly"}) in published.events

    assert campaigns.update_config(campaign_id, {"models": []}) is True
    got = campaigns.get(campaign_id)
    assert got is not None
    assert got["config"] == {"models": []}
    assert campaigns.update_config("nope", {}) is False

    others = [campaigns.create(f"c{i}", {}) for i in range(3)]
    listed = campaigns.list_campaigns(per_page=2)
    assert {k: listed[k] for k in ("total", "page", "per_page", "pages")} == {
        "total": 4,
        "page": 1,
        "per_page": 2,
        "pages": 2,
    }
    assert [c["id"] for c in listed["items"]] == [others[2], others[1]]
    assert all("config" not in c and "config_json" not in c for c in listed["items"])
    assert campaigns.list_campaigns(status="draft", page=2, per_page=3)["items"][0]["id"] == (
        campaign_id
    )
    assert campaigns.list_campaigns(status="running")["total"] == 0


def test_campaign_runs_through_update_status_as_kitts_executor_drives_it(
    campaigns: CampaignService, published: Published
) -> None:
    campaign_id = campaigns.create("nightly", {})
    fresh = campaigns.get(campaign_id)
    assert fresh is not None
    assert (fresh["agent_id"], fresh["description"], fresh["error"]) == ("", "", None)  # KITT's
    assert campaigns.update_status(campaign_id, "queued") is True
    assert campaigns.update_config(campaign_id, {"late": True}) is False  # launched
    assert campaigns.update_status(campaign_id, "running", total_runs=4) is True
    assert campaigns.update_status(campaign_id, "running", succeeded=2, failed=1) is True
    assert campaigns.update_status(campaign_id, "completed", succeeded=3, failed=1) is True
    got = campaigns.get(campaign_id)
    assert got is not None
    assert (got["status"], got["total_runs"], got["succeeded"], got["failed"]) == (
        "completed",
        4,
        3,
        1,
    )
    assert got["started_at"] is not None
    assert got["completed_at"] is not None
    assert ("status", campaign_id, {"status": "completed", "error": ""}) in published.events

    failing = campaigns.create("broken", {})
    campaigns.update_status(failing, "running")
    assert campaigns.update_status(failing, "failed", error="engine crashed") is True
    failed = campaigns.get(failing)
    assert failed is not None
    assert (failed["status"], failed["error"]) == ("failed", "engine crashed")
    assert campaigns.update_status(failing, "queued") is True  # KITT relaunches failed ones
    assert campaigns.update_status("nope", "queued") is False


def test_update_status_refuses_what_the_state_machine_forbids(campaigns: CampaignService) -> None:
    """Stricter than KITT: a finished campaign does not run again, counters never shrink."""
    campaign_id = campaigns.create("c", {})
    campaigns.update_status(campaign_id, "running", total_runs=2, succeeded=2)
    with pytest.raises(CounterLimitError):
        campaigns.update_status(campaign_id, "running", succeeded=1)
    with pytest.raises(CounterLimitError):
        campaigns.update_status(campaign_id, "running", failed=1)  # past total_runs
    campaigns.update_status(campaign_id, "completed")
    before = campaigns.get(campaign_id)
    for status in ("running", "draft", "queued", "cancelled"):
        with pytest.raises(InvalidTransitionError):
            campaigns.update_status(campaign_id, status)
    assert campaigns.get(campaign_id) == before


def test_campaign_delete(campaigns: CampaignService) -> None:
    """Stricter than KITT: a running campaign is not deleted under its agent."""
    running = campaigns.create("running", {})
    campaigns.update_status(running, "running")
    with pytest.raises(InvalidTransitionError):
        campaigns.delete(running)
    assert campaigns.get(running) is not None
    draft = campaigns.create("draft", {})
    assert campaigns.delete(draft) is True
    assert campaigns.get(draft) is None
    assert campaigns.delete(draft) is False


def test_campaign_logs(campaigns: CampaignService) -> None:
    campaign_id = campaigns.create("c", {})
    assert campaigns.get_logs(campaign_id)["lines"] == []
    campaigns.append_log(campaign_id, "starting")
    campaigns.append_log(campaign_id, ["model 1/2", "model 2/2"])
    logs = campaigns.get_logs(campaign_id)
    assert [x["line"] for x in logs["lines"]] == ["starting", "model 1/2", "model 2/2"]
    assert all(x["created_at"] for x in logs["lines"])
    tail = campaigns.get_logs(campaign_id, after_id=logs["last_id"])
    assert tail["lines"] == []
    campaigns.append_log(campaign_id, "done")
    assert [x["line"] for x in campaigns.get_logs(campaign_id, logs["last_id"])["lines"]] == [
        "done"
    ]
    assert campaigns.get_logs("nope")["lines"] == []


# --- results -------------------------------------------------------------------------------


def _document(model: str, engine: str, passed: bool, tps: float, day: int) -> dict[str, Any]:
    return {
        "model": model,
        "engine": engine,
        "suite_name": "quick",
        "timestamp": f"2026-02-{day:02d}T10:00:00",
        "passed": passed,
        "total_benchmarks": 1,
        "passed_count": int(passed),
        "failed_count": int(not passed),
        "total_time_seconds": 10.0,
        "kitt_version": "1.7.0",
        "results": [{"test_name": "throughput", "passed": passed, "metrics": {"avg_tps": tps}}],
    }


def test_result_service_pages_summaries_and_comparisons(
    services: dict[str, Any], tmp_path: Path
) -> None:
    results: ResultService = services["result_service"]
    ids = [
        results._store.save_result(_document(*args))  # as KITT's agents API saves
        for args in [
            ("llama", "vllm", True, 100.0, 1),
            ("llama", "llama_cpp", True, 40.0, 2),
            ("qwen", "vllm", False, 60.0, 3),
        ]
    ]
    page = results.list_results(engine="vllm", per_page=1)
    assert (page["total"], page["page"], page["per_page"], page["pages"]) == (2, 1, 1, 2)
    assert [r["id"] for r in page["items"]] == [ids[2]]  # newest first
    assert [r["id"] for r in results.list_results(page=2, per_page=2)["items"]] == [ids[0]]
    assert [r["id"] for r in results.get_recent(limit=2)] == [ids[2], ids[1]]
    summary = results.get_summary()
    assert {k: summary[k] for k in ("total_results", "total_passed", "pass_rate")} == {
        "total_results": 3,
        "total_passed": 2,
        "pass_rate": 67,
    }
    assert (summary["engine_count"], summary["model_count"]) == (2, 2)
    by_engine = {g["engine"]: g for g in results.aggregate("engine", ["avg_tps"])}
    assert by_engine["vllm"]["avg_tps_avg"] == pytest.approx(80.0)
    assert [r["id"] for r in results.compare_results([ids[1], "nope", ids[0]])] == [
        ids[1],
        ids[0],
    ]
    assert results.get_result(ids[0]) is not None
    assert results.delete_result(ids[0]) is True
    assert results.get_result(ids[0]) is None

    tree = tmp_path / "runs" / "a"
    tree.mkdir(parents=True)
    (tree / "metrics.json").write_text(json.dumps(_document("mistral", "ollama", True, 9.0, 4)))
    assert results.import_directory(tmp_path / "runs") == 1
    assert results.list_results(model="mistral")["total"] == 1


# --- settings ------------------------------------------------------------------------------


def test_settings_service(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    settings: SettingsService = services["settings_service"]
    assert settings.get("devon_tab_visible") == "true"  # KITT's default
    assert settings.get("unknown") == ""
    assert settings.get("unknown", "x") == "x"
    # As in KITT, get_bool's own default wins over the defaults table.
    assert settings.get_bool("devon_tab_visible") is False
    assert settings.get_bool("devon_tab_visible", default=True) is True
    assert settings.get_bool("unknown") is False
    assert settings.get_bool("unknown", default=True) is True
    settings.set("devon_tab_visible", "no")
    assert settings.get_bool("devon_tab_visible", default=True) is False
    settings.set("theme", "dark")
    assert settings.get_all() == {
        "devon_tab_visible": "no",
        "model_dir": "",
        "devon_url": "",
        "results_dir": "",
        "theme": "dark",
    }

    monkeypatch.delenv("KARR_TEST_MODEL_DIR", raising=False)
    assert settings.get_effective("model_dir", "KARR_TEST_MODEL_DIR", "/fallback") == "/fallback"
    assert settings.get_source("model_dir", "KARR_TEST_MODEL_DIR") == "default"
    monkeypatch.setenv("KARR_TEST_MODEL_DIR", "/from/env")
    assert settings.get_effective("model_dir", "KARR_TEST_MODEL_DIR", "/fallback") == "/from/env"
    assert settings.get_source("model_dir", "KARR_TEST_MODEL_DIR") == "env"
    settings.set("model_dir", "/saved")
    assert settings.get_effective("model_dir", "KARR_TEST_MODEL_DIR", "/fallback") == "/saved"
    assert settings.get_source("model_dir", "KARR_TEST_MODEL_DIR") == "saved"
    with pytest.raises(ValidationError) as refused:
        settings.set("", "x")
    assert refused.value.fields == ["key"]


# --- engines -------------------------------------------------------------------------------


def test_engine_service_profiles_and_status(services: dict[str, Any], agents: AgentManager) -> None:
    engines: EngineService = services["engine_service"]
    created = engines.create_profile(
        {"name": "fast-vllm", "engine": "vllm", "runtime_config": {"tp": 2}}
    )
    assert {k: created[k] for k in ("name", "engine", "mode", "description")} == {
        "name": "fast-vllm",
        "engine": "vllm",
        "mode": "docker",
        "description": "",
    }
    assert (created["build_config"], created["runtime_config"]) == ({}, {"tp": 2})
    assert engines.get_profile(created["id"]) == created
    assert engines.get_profile_by_name("fast-vllm") == created
    assert engines.get_profile("nope") is None
    with pytest.raises(AlreadyExistsError):
        engines.create_profile({"name": "fast-vllm", "engine": "vllm"})
    engines.create_profile({"name": "a-llama", "engine": "llama_cpp", "mode": "native"})
    assert [p["name"] for p in engines.list_profiles()] == ["a-llama", "fast-vllm"]
    assert [p["name"] for p in engines.list_profiles(engine="vllm")] == ["fast-vllm"]
    updated = engines.update_profile(created["id"], {"description": "tp=2", "ignored": 1})
    assert updated is not None
    assert (updated["description"], updated["runtime_config"]) == ("tp=2", {"tp": 2})
    assert engines.update_profile("nope", {"description": "x"}) is None
    assert engines.delete_profile(created["id"]) is True
    assert engines.delete_profile(created["id"]) is False

    first, _ = _register(agents, "a")
    second, _ = _register(agents, "b")
    engines.upsert_agent_engine(first, {"engine": "vllm", "version": "0.6", "status": "installed"})
    engines.upsert_agent_engine(first, {"engine": "vllm", "version": "0.7", "status": "running"})
    engines.upsert_agent_engine(second, {"engine": "ollama", "mode": "native"})
    [vllm] = engines.get_agent_engines(first)
    assert (vllm["version"], vllm["status"], vllm["mode"]) == ("0.7", "running", "docker")
    assert vllm["last_checked"]
    matrix = engines.get_engine_status_matrix()
    assert set(matrix) == {first, second}
    assert matrix[second][0]["status"] == "unknown"
    assert engines.get_agent_engines("nope") == []


# --- quick tests ----------------------------------------------------------------------------


def test_quick_tests_as_kitts_quicktest_api_drives_them(
    services: dict[str, Any], agents: AgentManager, published: Published
) -> None:
    tests: QuickTestService = services["quick_test_service"]
    agent_id, _ = _register(agents)
    launched = tests.launch(agent_id, "/m/llama.gguf", "llama_cpp", engine_mode="native")
    assert set(launched) == {"id", "status", "command_id"}
    assert launched["status"] == "queued"
    test_id = launched["id"]
    got = tests.get(test_id)
    assert got is not None
    assert (got["benchmark_name"], got["suite_name"], got["engine_mode"], got["status"]) == (
        "throughput",
        "quick",
        "native",
        "queued",
    )
    assert got["command_id"] == launched["command_id"]
    assert tests.get("nope") is None
    assert (
        "status",
        test_id,
        {"status": "queued", "test_id": test_id, "command_id": launched["command_id"]},
    ) in published.events

    [command] = agents.heartbeat(agent_id, Heartbeat())["commands"]
    assert (command["test_id"], command["command_id"]) == (test_id, launched["command_id"])
    assert tests.update_status(test_id, "running") == {"ok": True, "status": "running"}
    assert tests.append_log(test_id, "loading model") is True
    assert tests.append_log(test_id, "42 tok/s") is True
    assert tests.append_log("nope", "x") is False
    logs = tests.get_logs(test_id)
    assert logs is not None
    assert [x["line"] for x in logs["lines"]] == ["loading model", "42 tok/s"]
    assert tests.get_logs("nope") is None
    assert ("log", test_id, {"line": "42 tok/s", "test_id": test_id}) in published.events

    with pytest.raises(ValidationError) as refused:  # stricter: a completed test names its run
        tests.update_status(test_id, "completed")
    assert refused.value.fields == ["result_id"]
    result_id = services["store"].save_result(_document("llama", "llama_cpp", True, 42.0, 5))
    assert tests.update_status(test_id, "completed", result_id=result_id) == {
        "ok": True,
        "status": "completed",
    }
    done = tests.get(test_id)
    assert done is not None
    assert (done["status"], done["result_id"]) == ("completed", result_id)
    assert done["completed_at"] is not None
    assert tests.update_status("nope", "running") is None

    queued = tests.launch(agent_id, "/m/other", "vllm")["id"]
    with pytest.raises(InvalidTransitionError):  # stricter: an agent reports only what it holds
        tests.update_status(queued, "failed", error="never started")
    with pytest.raises(ValidationError):
        tests.update_status(queued, "paused")
    with pytest.raises(NotFoundError):
        tests.launch("nope", "/m", "vllm")


def test_quick_test_pages_with_agent_names(services: dict[str, Any], agents: AgentManager) -> None:
    tests: QuickTestService = services["quick_test_service"]
    first, _ = _register(agents, "a")
    second, _ = _register(agents, "b")
    made = [tests.launch(first, f"/m/{i}", "vllm")["id"] for i in range(3)]
    made.append(tests.launch(second, "/m/b", "vllm")["id"])
    page = tests.list_tests(per_page=3)
    assert (page["total"], page["page"], page["pages"]) == (4, 1, 2)
    assert [t["id"] for t in page["items"]] == made[::-1][:3]
    assert page["items"][0]["agent_name"] == "b"
    by_agent = tests.list_tests(agent_name="a", page=2, per_page=2)
    assert ([t["id"] for t in by_agent["items"]], by_agent["total"]) == ([made[0]], 3)
    assert tests.list_tests(agent_name="nobody") == {
        "items": [],
        "total": 0,
        "page": 1,
        "pages": 1,
    }
    assert tests.list_tests(status="running")["pages"] == 1
    assert tests.list_tests(per_page=1000, page=0)["page"] == 1  # kept in range, as KITT does


# --- bad input ------------------------------------------------------------------------------


#: Calls KITT's handlers could make with a malformed body, and the field each names.
#: Each takes the services, an agent id and a campaign id.
BAD_CALLS: list[tuple[str, Any, str]] = [
    (
        "counter as text",
        lambda s, a, c: s["campaign_service"].update_status(c, "running", total_runs="4"),
        "total_runs",
    ),
    (
        "counter as bool",
        lambda s, a, c: s["campaign_service"].update_status(c, "running", succeeded=True),
        "succeeded",
    ),
    ("tags", lambda s, a, c: s["agent_manager"].update_agent(a, {"tags": 5}), "tags"),
    ("notes", lambda s, a, c: s["agent_manager"].update_agent(a, {"notes": 5}), "notes"),
    (
        "engine report",
        lambda s, a, c: s["agent_manager"].heartbeat(
            a,
            Heartbeat.model_construct(status="idle", engines=[["vllm"]]),  # type: ignore[list-item]
        ),
        "engines.0",
    ),
    ("no engine", lambda s, a, c: s["engine_service"].create_profile({"name": "x"}), "engine"),
    (
        "mode",
        lambda s, a, c: s["engine_service"].create_profile(
            {"name": "x", "engine": "e", "mode": "vm"}
        ),
        "mode",
    ),
    (
        "agent engine",
        lambda s, a, c: s["engine_service"].upsert_agent_engine(a, {"version": "1"}),
        "engine",
    ),
    (
        "deep hardware details",
        lambda s, a, c: s["agent_manager"].register(
            Registration(
                name="deep",
                hostname="h",
                hardware_details='{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
            ),
            _token(),
        ),
        "hardware_details",
    ),
    (
        "runtime config not JSON",
        lambda s, a, c: s["agent_manager"].queue_engine_command(
            a, "vllm", "start_engine", runtime_config={"port": object()}
        ),
        "runtime_config.port",
    ),
    (
        "runtime config not an object",
        lambda s, a, c: s["agent_manager"].queue_engine_command(
            a, "vllm", "start_engine", runtime_config=["--port", "8000"]
        ),
        "runtime_config",
    ),
    (
        "settings not an object",
        lambda s, a, c: s["agent_manager"].update_agent_settings(a, "x"),
        "updates",
    ),
    ("page", lambda s, a, c: s["quick_test_service"].list_tests(page="2"), "page"),
    ("per_page", lambda s, a, c: s["result_service"].list_results(per_page=None), "per_page"),
]


@pytest.mark.parametrize(
    ("call", "field"), [(c, f) for _, c, f in BAD_CALLS], ids=[n for n, _, _ in BAD_CALLS]
)
def test_bad_input_is_refused_by_field_and_changes_nothing(
    services: dict[str, Any], agents: AgentManager, call: Any, field: str
) -> None:
    agent_id, _ = _register(agents)
    campaign_id = services["campaign_service"].create("c", {})
    with services["database"].unit_of_work(readonly=True) as uow:
        before = uow.events.last_id()
    with pytest.raises(ValidationError) as refused:
        call(services, agent_id, campaign_id)
    assert field in refused.value.fields
    with services["database"].unit_of_work(readonly=True) as uow:
        assert uow.events.last_id() == before


# --- services from a URL and from a Database --------------------------------------------------


def test_an_unreachable_database_is_the_layers_error() -> None:
    with pytest.raises(ConnectionLostError):
        open_services("postgresql://karr:secret@127.0.0.1:1/karr")
    with pytest.raises(ConnectionLostError):
        AgentManager("postgresql://karr:secret@127.0.0.1:1/karr")


def test_each_service_can_be_built_on_its_own(migrated_url: str, empty_url: str) -> None:
    with Database(migrated_url) as database:
        manager = AgentManager(database)
        agent_id, _ = _register(manager)
        assert manager.get_agent(agent_id) is not None
    with CampaignService(empty_url) as service:  # a URL: migrated first, as KITT's app does
        assert service.list_campaigns()["total"] == 0
    with ResultService(empty_url) as results:
        assert results.get_summary()["total_results"] == 0


def test_writes_refuse_a_database_not_at_head_with_the_layers_error(empty_url: str) -> None:
    """A caller's Database is not migrated for it: a write says so (SchemaError),
    as a read does, instead of failing on a missing table."""
    if empty_url.startswith("sqlite"):
        Path(empty_url.removeprefix("sqlite:///")).touch()  # empty, not missing
    with Database(empty_url) as database:
        with pytest.raises(SchemaError):
            AgentManager(database, migrate=False).provision("spark")
        with pytest.raises(SchemaError):
            KarrResultStore(database, migrate=False).save_result(minimal())
        with pytest.raises(SchemaError):
            CampaignService(database, migrate=False).create("c", {})
