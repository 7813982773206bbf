"""One KITT scenario through the services on SQLite and on PostgreSQL: the same answers.

Ids the layer draws at random (agents, campaigns, commands, profiles) and the
times of the run differ between the two databases by nature; they are replaced
by their order of first appearance and a placeholder before comparing.
Everything else, every dict KITT's pages and agents would receive, must be equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from karr_db.kitt_services import open_services
from tests.integration.test_kitt_services import Heartbeat, Registration, _document
from tests.support.databases import Databases

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$")
_TOKEN_A = "7f3c9e1a" + "5b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c"
_TOKEN_B = "a1b2c3d4" + "e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4"


def _normalised(answers: Any) -> Any:
    seen: dict[str, str] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("token_prefix") not in (None, _TOKEN_A[:8], _TOKEN_B[:8]):
                value = {**value, "token_prefix": "<generated>"}  # a test agent's own token
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, float):
            return round(value, 9)
        if isinstance(value, str):
            if _UUID.match(value):
                return seen.setdefault(value, f"<id {len(seen)}>")
            if _TIME.match(value):
                return "<time>"
        return value

    return walk(answers)


def _scenario(url: str) -> list[Any]:
    """Everything KITT's handlers would be told, in order."""
    services = open_services(url)
    agents = services["agent_manager"]
    campaigns = services["campaign_service"]
    results = services["result_service"]
    settings = services["settings_service"]
    engines = services["engine_service"]
    quick = services["quick_test_service"]
    out: list[Any] = []
    try:
        a = agents.register(Registration(name="dgx-a", hostname="10.0.0.1", gpu_count=8), _TOKEN_A)
        b = agents.register(Registration(name="dgx-b", hostname="10.0.0.2"), _TOKEN_B)
        out += [a, b, agents.create_test_agent("sim")["agent_id"]]
        out.append(agents.check_agent_auth(a["agent_id"], _TOKEN_B))
        out.append(agents.update_agent(b["agent_id"], {"notes": "spare", "tags": ["gpu"]}))
        agents.queue_cleanup_command(a["agent_id"])
        agents.queue_engine_command(a["agent_id"], "vllm", "start_engine", runtime_config={"tp": 2})
        engines_seen = [{"engine": "vllm", "installed": True, "version": "0.7"}]
        for _ in range(3):
            out.append(agents.heartbeat(a["agent_id"], Heartbeat(engines=engines_seen)))
        out.append(agents.update_agent_settings(a["agent_id"], {"auto_cleanup": "false"}))
        test = quick.launch(a["agent_id"], "/m/q4.gguf", "llama_cpp")
        out.append(agents.heartbeat(a["agent_id"], Heartbeat(status="running")))
        quick.update_status(test["id"], "running")
        quick.append_log(test["id"], "42 tok/s")
        out += [quick.get(test["id"]), quick.get_logs(test["id"]), quick.list_tests()]
        out.append(agents.list_agents())

        nightly = campaigns.create("nightly", {"models": [{"name": "m"}]}, agent_id=a["agent_id"])
        campaigns.update_status(nightly, "queued")
        campaigns.update_status(nightly, "running", total_runs=2)
        campaigns.append_log(nightly, ["run 1", "run 2"])
        campaigns.update_status(nightly, "completed", succeeded=1, skipped=1)
        broken = campaigns.create("broken", {})
        campaigns.update_status(broken, "running")
        campaigns.update_status(broken, "failed", error="boom")
        out += [campaigns.get(nightly), campaigns.list_campaigns(), campaigns.get_logs(nightly)]

        saved = [
            results._store.save_result(_document(*args))
            for args in [
                ("llama", "vllm", True, 100.0, 1),
                ("llama", "llama_cpp", True, 40.5, 2),
                ("qwen", "vllm", False, 60.25, 3),
                ("llama", "vllm", True, 100.0, 1),  # again: stored once
            ]
        ]
        out += [
            saved,
            results.list_results(per_page=2),
            results.get_summary(),
            results.aggregate("model", ["avg_tps"]),
            results.compare_results(saved[:2]),
        ]

        settings.set("devon_url", "http://devon")
        out += [settings.get_all(), settings.get_bool("devon_tab_visible", default=True)]
        engines.create_profile({"name": "tp2", "engine": "vllm", "runtime_config": {"tp": 2}})
        out += [engines.list_profiles(), engines.get_engine_status_matrix()]
        out.append(agents.delete_agent(b["agent_id"]))
        out.append(agents.list_agents())
    finally:
        services["database"].close()
    return out


@pytest.fixture
def sqlite_url(sqlite_databases: Databases) -> Iterator[str]:
    url = sqlite_databases.migrated()
    yield url
    sqlite_databases.drop(url)


def test_one_scenario_gives_the_same_answers_on_both_dialects(
    sqlite_url: str, migrated_postgres_url: str
) -> None:
    on_sqlite = _normalised(_scenario(sqlite_url))
    on_postgres = _normalised(_scenario(migrated_postgres_url))
    assert len(on_sqlite) == len(on_postgres)
    for step, pair in enumerate(zip(on_sqlite, on_postgres, strict=True)):
        assert pair[0] == pair[1], f"answer {step} differs"
    # The scenario says something: commands were handed out, results aggregated.
    heartbeats = [x for x in on_sqlite if isinstance(x, dict) and "commands" in x]
    assert [c["type"] for h in heartbeats for c in h["commands"]] == [
        "cleanup_storage",
        "start_engine",
        "run_test",
    ]
