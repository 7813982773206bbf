"""The operations commands (agents, campaigns, quick-tests, events --follow) on both dialects."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from karr_db.database import Database
from tests.support.cli import KARR_DB, cli, import_samples


def _populate(url: str) -> tuple[str, str]:
    """One agent with a campaign and a quick test; returns (agent id, its token)."""
    with Database(url) as db, db.unit_of_work() as uow:
        credentials = uow.agents.register(
            "gpu-box-1", hostname="127.0.0.1", port=8090, tags=["gpu", "dgx"], gpu_count=2
        )
        agent_id = credentials.agent.id
        uow.campaigns.create("nightly", agent_id=agent_id, total_runs=4, config={"models": ["m"]})
        uow.quick_tests.dispatch(
            agent_id, model_path="m", engine_name="vllm", benchmark_name="throughput"
        )
        return agent_id, credentials.token.get_secret_value()


def test_agents_are_listed_without_their_token(migrated_url: str) -> None:
    agent_id, token = _populate(migrated_url)
    agents = cli("agents", "--database", migrated_url, "--json")
    assert agents.exit_code == 0, agents.output
    (agent,) = agents.json()
    assert (agent["id"], agent["name"], agent["tags"]) == (agent_id, "gpu-box-1", ["gpu", "dgx"])
    assert agent["has_token"] is True
    human = cli("agents", "--database", migrated_url)
    assert "gpu-box-1" in human.stdout
    assert "127.0.0.1:8090" in human.stdout
    for result in (agents, human):
        assert token not in result.output
        assert 'token"' not in result.stdout.replace("has_token", "")
    assert cli("agents", "--tag", "nope", "--database", migrated_url, "--json").json() == []
    assert len(cli("agents", "--status", "online", "-d", migrated_url, "--json").json()) == 1


def test_campaigns_show_progress(migrated_url: str) -> None:
    agent_id, _ = _populate(migrated_url)
    campaigns = cli("campaigns", "--database", migrated_url, "--json")
    assert campaigns.exit_code == 0, campaigns.output
    (campaign,) = campaigns.json()
    assert (campaign["name"], campaign["status"], campaign["total_runs"]) == (
        "nightly",
        "draft",
        4,
    )
    assert campaign["agent_id"] == agent_id
    assert "0/4" in cli("campaigns", "--database", migrated_url).stdout
    empty = cli("campaigns", "--status", "running", "--database", migrated_url, "--json")
    assert empty.json() == []


def test_quick_tests_are_listed(migrated_url: str) -> None:
    _populate(migrated_url)
    (test,) = cli("quick-tests", "--database", migrated_url, "--json").json()
    assert (test["benchmark_name"], test["status"]) == ("throughput", "queued")
    assert "throughput" in cli("quick-tests", "--database", migrated_url).stdout


def test_events_show_the_newest_in_id_order(migrated_url: str, samples_dir: Path) -> None:
    _populate(migrated_url)
    import_samples(migrated_url, samples_dir)
    events = cli("events", "--database", migrated_url, "--json").json()
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    assert {"agent.registered", "campaign.created", "run.saved"} <= {
        e["event_type"] for e in events
    }
    last_two = cli("events", "--limit", "2", "--database", migrated_url, "--json").json()
    assert [e["id"] for e in last_two] == ids[-2:]
    after = cli("events", "--after", str(ids[-2]), "--database", migrated_url, "--json").json()
    assert [e["id"] for e in after] == ids[-1:]
    saved = cli("events", "--type", "run.saved", "--database", migrated_url, "--json").json()
    assert len(saved) == 3
    assert "run.saved" in cli("events", "--database", migrated_url).stdout


def test_events_of_an_empty_log(migrated_url: str) -> None:
    result = cli("events", "--database", migrated_url)
    assert result.exit_code == 0
    assert "no events" in result.stdout
    assert cli("events", "--database", migrated_url, "--json").json() == []


def test_follow_prints_events_appended_while_it_runs(migrated_url: str) -> None:
    """A real process tails the log; the test appends and waits for it to print them."""
    with Database(migrated_url) as db:
        with db.unit_of_work() as uow:
            uow.events.append("test.before", source_id="0")
        process = subprocess.Popen(
            [
                str(KARR_DB),
                "events",
                "--follow",
                "--json",
                "--database",
                migrated_url,
                "--interval",
                "0.1",
                "--max-events",
                "4",
                "--timeout",
                "120",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            first = json.loads(process.stdout.readline())  # the backlog comes first
            assert first["event_type"] == "test.before"
            for n in range(1, 4):
                with db.unit_of_work() as uow:
                    uow.events.append("test.after", source_id=str(n), data={"n": n})
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, stderr
    followed = [json.loads(line) for line in stdout.splitlines()]
    assert [e["source_id"] for e in followed] == ["1", "2", "3"]
    assert [e["data"] for e in followed] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [e["id"] for e in followed] == sorted(e["id"] for e in followed)


def test_follow_stops_quietly_at_its_timeout(migrated_url: str) -> None:
    result = cli(
        "events", "--follow", "--timeout", "0", "--interval", "0.05", "--database", migrated_url
    )
    assert result.exit_code == 0
    assert result.stderr == ""


def test_a_limit_above_one_page_is_fetched_in_pages(migrated_url: str) -> None:
    # The operations repositories serve at most 500 rows a page; a larger
    # --limit must page through them rather than ask for an oversized page.
    agent_id, _ = _populate(migrated_url)
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        for n in range(501):
            uow.campaigns.create(f"c{n}", agent_id=agent_id)
    listed = cli("campaigns", "--limit", "600", "--database", migrated_url, "--json")
    assert listed.exit_code == 0, listed.output
    assert len(listed.json()) == 502
    assert len(cli("campaigns", "-n", "3", "-d", migrated_url, "--json").json()) == 3
