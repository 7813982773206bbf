"""The fleet commands (agent, settings, engine-profiles, engines, logs) on both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest

from karr_db.database import Database
from karr_db.repositories.settings import AGENT_SETTING_DEFAULTS
from tests.support.cli import cli

DETAILS = {"gpus": [{"name": "H100", "memory_gb": 80}], "nvlink": True}


def _populate(url: str) -> dict[str, str]:
    """An agent with a hardware report and two engines, a quick test and a campaign
    with log lines; their ids and the agent's token."""
    with Database(url) as db, db.unit_of_work() as uow:
        credentials = uow.agents.register(
            "gpu-box-1", hostname="10.0.0.5", port=8090, cpu_arch="arm64", hardware_details=DETAILS
        )
        agent_id = credentials.agent.id
        uow.agent_engines.report(agent_id, "vllm", version="0.7.0", status="installed")
        uow.agent_engines.report(agent_id, "llama_cpp", mode="native", status="missing")
        test = uow.quick_tests.dispatch(
            agent_id, model_path="m", engine_name="vllm", benchmark_name="throughput"
        )
        campaign = uow.campaigns.create("nightly", agent_id=agent_id)
        uow.quick_test_logs.append(test.id, ["pulling image", "[engine] ready", "done ✓"])
        uow.campaign_logs.append(campaign.id, ["campaign line"])
    return {
        "agent": agent_id,
        "token": credentials.token.get_secret_value(),
        "test": test.id,
        "campaign": campaign.id,
    }


def test_agent_details_show_hardware_settings_and_engines(migrated_url: str) -> None:
    ids = _populate(migrated_url)
    shown = cli("agent", "gpu-box-1", "--database", migrated_url, "--json")
    assert shown.exit_code == 0, shown.output
    details = shown.json()
    assert details["agent"]["id"] == ids["agent"]
    assert (details["agent"]["cpu_arch"], details["agent"]["hardware_details"]) == (
        "arm64",
        DETAILS,
    )
    assert details["agent"]["token_prefix"] == ids["token"][:8]
    assert details["settings"] == dict(AGENT_SETTING_DEFAULTS)
    assert [(e["engine"], e["mode"], e["status"]) for e in details["engines"]] == [
        ("llama_cpp", "native", "missing"),
        ("vllm", "docker", "installed"),
    ]
    by_id = cli("agent", ids["agent"], "--database", migrated_url, "--json")
    assert by_id.json() == details
    human = cli("agent", "gpu-box-1", "--database", migrated_url)
    assert human.exit_code == 0, human.output
    for text in ("arm64", "10.0.0.5:8090", "H100", "model_storage_dir", "~/.kitt/models", "0.7.0"):
        assert text in human.stdout, text
    for result in (shown, human):
        assert ids["token"] not in result.output
    missing = cli("agent", "nobody", "--database", migrated_url)
    assert missing.exit_code == 1
    assert "nobody" in missing.stderr


def test_web_settings_are_set_read_and_deleted(migrated_url: str) -> None:
    assert cli("settings", "--database", migrated_url, "--json").json() == {}
    assert "no web settings" in cli("settings", "--database", migrated_url).stdout
    made = cli("settings", "set", "devon_tab_visible", "false", "-d", migrated_url, "--json")
    assert made.exit_code == 0, made.output
    assert made.json() == {"key": "devon_tab_visible", "value": "false"}
    assert cli("settings", "get", "devon_tab_visible", "-d", migrated_url).stdout == "false\n"
    assert cli("settings", "-d", migrated_url, "--json").json() == {"devon_tab_visible": "false"}
    assert "devon_tab_visible" in cli("settings", "-d", migrated_url).stdout
    assert cli("settings", "delete", "devon_tab_visible", "-d", migrated_url).exit_code == 0
    gone = cli("settings", "get", "devon_tab_visible", "-d", migrated_url)
    assert gone.exit_code == 1
    assert "not found" in gone.stderr
    refused = cli("settings", "set", "k", "a\x00b", "-d", migrated_url)
    assert refused.exit_code == 1
    assert "value" in refused.stderr


def test_agent_settings_are_shown_and_changed_all_or_nothing(migrated_url: str) -> None:
    ids = _populate(migrated_url)
    shown = cli("settings", "agent", "gpu-box-1", "-d", migrated_url, "--json")
    assert shown.json() == {"agent_id": ids["agent"], "values": dict(AGENT_SETTING_DEFAULTS)}
    changed = cli(
        "settings",
        "agent",
        "gpu-box-1",
        "auto_cleanup=false",
        "model_storage_dir=/data/models",
        "-d",
        migrated_url,
        "--json",
    )
    assert changed.exit_code == 0, changed.output
    assert changed.json()["values"]["auto_cleanup"] == "false"
    assert changed.json()["values"]["model_storage_dir"] == "/data/models"
    refused = cli("settings", "agent", "gpu-box-1", "kitt_image=img", "bogus=1", "-d", migrated_url)
    assert refused.exit_code == 1
    assert "values.bogus" in refused.stderr
    after = cli("settings", "agent", ids["agent"], "-d", migrated_url, "--json").json()
    assert after["values"]["kitt_image"] == ""  # nothing of the refused call was written
    usage = cli("settings", "agent", "gpu-box-1", "no-equals-sign", "-d", migrated_url)
    assert usage.exit_code == 2
    human = cli("settings", "agent", "gpu-box-1", "-d", migrated_url).stdout
    assert "/data/models" in human


def test_engine_profiles_are_managed(migrated_url: str) -> None:
    made = cli(
        "engine-profiles",
        "create",
        "vllm-fp8",
        "--engine",
        "vllm",
        "--runtime-config",
        '{"dtype": "fp8", "tp": 2}',
        "-d",
        migrated_url,
        "--json",
    )
    assert made.exit_code == 0, made.output
    profile = made.json()
    assert (profile["name"], profile["mode"], profile["runtime_config"]) == (
        "vllm-fp8",
        "docker",
        {"dtype": "fp8", "tp": 2},
    )
    cli("engine-profiles", "create", "ollama-q4", "--engine", "ollama", "-d", migrated_url)
    listed = cli("engine-profiles", "-d", migrated_url, "--json").json()
    assert [p["name"] for p in listed] == ["ollama-q4", "vllm-fp8"]
    only = cli("engine-profiles", "--engine", "vllm", "-d", migrated_url, "--json").json()
    assert [p["name"] for p in only] == ["vllm-fp8"]
    assert "vllm-fp8" in cli("engine-profiles", "-d", migrated_url).stdout

    shown = cli("engine-profiles", "show", profile["id"], "-d", migrated_url, "--json")
    assert shown.json() == profile
    human = cli("engine-profiles", "show", "vllm-fp8", "-d", migrated_url)
    assert '"dtype": "fp8"' in human.stdout

    updated = cli(
        "engine-profiles", "update", "vllm-fp8", "--mode", "native", "-d", migrated_url, "--json"
    )
    assert updated.exit_code == 0, updated.output
    assert (updated.json()["mode"], updated.json()["runtime_config"]) == (
        "native",
        {"dtype": "fp8", "tp": 2},
    )

    duplicate = cli("engine-profiles", "create", "vllm-fp8", "--engine", "vllm", "-d", migrated_url)
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.stderr
    bad_json = cli(
        "engine-profiles", "create", "x", "--engine", "e", "--build-config", "{", "-d", migrated_url
    )
    assert bad_json.exit_code == 2
    bad_mode = cli(
        "engine-profiles", "create", "x", "--engine", "e", "--mode", "vm", "-d", migrated_url
    )
    assert bad_mode.exit_code == 1
    assert "mode" in bad_mode.stderr

    assert cli("engine-profiles", "delete", "vllm-fp8", "-d", migrated_url).exit_code == 0
    assert [p["name"] for p in cli("engine-profiles", "-d", migrated_url, "--json").json()] == [
        "ollama-q4"
    ]
    assert cli("engine-profiles", "show", "vllm-fp8", "-d", migrated_url).exit_code == 1


def test_the_engine_matrix_names_agents(migrated_url: str) -> None:
    ids = _populate(migrated_url)
    matrix = cli("engines", "-d", migrated_url, "--json").json()
    assert {(e["agent_id"], e["engine"]) for e in matrix} == {
        (ids["agent"], "vllm"),
        (ids["agent"], "llama_cpp"),
    }
    only = cli("engines", "--engine", "vllm", "-d", migrated_url, "--json").json()
    assert [e["engine"] for e in only] == ["vllm"]
    human = cli("engines", "-d", migrated_url).stdout
    assert "gpu-box-1" in human
    assert "installed" in human


def test_logs_of_a_quick_test_or_a_campaign(migrated_url: str) -> None:
    ids = _populate(migrated_url)
    lines = cli("logs", ids["test"], "-d", migrated_url, "--json").json()
    assert [line["line"] for line in lines] == ["pulling image", "[engine] ready", "done ✓"]
    after = cli("logs", ids["test"], "--after", str(lines[0]["id"]), "-d", migrated_url, "--json")
    assert [line["line"] for line in after.json()] == ["[engine] ready", "done ✓"]
    first = cli("logs", ids["test"], "-n", "1", "-d", migrated_url, "--json").json()
    assert [line["line"] for line in first] == ["pulling image"]
    human = cli("logs", ids["test"], "-d", migrated_url).stdout
    assert "[engine] ready" in human
    assert "done ✓" in human
    campaign = cli("logs", ids["campaign"], "-d", migrated_url, "--json").json()
    assert [line["line"] for line in campaign] == ["campaign line"]
    missing = cli("logs", "no-such-thing", "-d", migrated_url)
    assert missing.exit_code == 1
    assert "no-such-thing" in missing.stderr


#: Every reading fleet command, with the arguments it needs.
READING = [
    ("agent", "gpu-box-1"),
    ("settings",),
    ("settings", "get", "devon_tab_visible"),
    ("settings", "agent", "gpu-box-1"),
    ("engine-profiles",),
    ("engine-profiles", "show", "vllm-fp8"),
    ("engines",),
    ("logs", "0"),
]


@pytest.mark.parametrize("args", READING, ids=[" ".join(a) for a in READING])
def test_reading_commands_take_a_replica(args: tuple[str, ...]) -> None:
    shown = cli(*args, "--help")
    assert shown.exit_code == 0, shown.output
    assert "--replica" in shown.stdout


@pytest.mark.parametrize("args", READING, ids=[" ".join(a) for a in READING])
def test_a_replica_of_another_dialect_is_one_clear_line(
    backend: str, migrated_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """A SQLite primary has no standby; a PostgreSQL primary's is PostgreSQL too."""
    other = (
        "postgresql://karr@127.0.0.1:1/karr"
        if backend == "sqlite"
        else f"sqlite:///{tmp_path / 'replica.db'}"
    )
    refused = cli(*args, "--database", migrated_url, "--replica", other)
    assert refused.exit_code == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert "replica" in lines[0]
    assert "postgresql://" in lines[0]


def test_the_environments_replica_is_ignored_beside_a_sqlite_file(
    backend: str, migrated_url: str
) -> None:
    """$KARR_REPLICA_URL is a standby of a PostgreSQL primary: a SQLite --database
    reads its file; a PostgreSQL one reads the standby (here the primary itself)."""
    _populate(migrated_url)
    standby = "postgresql://karr@127.0.0.1:1/nowhere" if backend == "sqlite" else migrated_url
    shown = cli("engines", "--database", migrated_url, env={"KARR_REPLICA_URL": standby})
    assert shown.exit_code == 0, shown.output
    assert "vllm" in shown.stdout
