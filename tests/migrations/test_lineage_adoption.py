"""Adopting KITT databases at its later schemas 3..11, and its fresh PostgreSQL schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from karr_db import migrations
from karr_db.engine import make_engine
from karr_db.errors import AdoptionError, UnadoptableSchemaError
from karr_db.migrations.scripts import head_revision
from karr_db.models import AgentSetting
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.results import ResultsRepository
from tests.support.adoption import ADDED_TO, assert_rows_kept, raw_rows, typed_rows
from tests.support.helpers import head_version, schema_versions
from tests.support.legacy import snapshot
from tests.support.lineage import (
    AGENT_1_TOKEN,
    DEFAULT_SETTINGS,
    build_kitt,
    build_kitt_17_postgres,
    kitt_migrates,
)
from tests.support.repositories import on


def _settings(url: str) -> dict[str, dict[str, str]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(AgentSetting.agent_id, AgentSetting.key, AgentSetting.value)
        ).all()
    engine.dispose()
    found: dict[str, dict[str, str]] = {}
    for agent_id, key, value in rows:
        found.setdefault(agent_id, {})[key] = value
    return found


def _behaves_like_karr_db(url: str) -> None:
    """After adoption: a KITT run's document saved again is that run (dedup), KITT's
    agent authenticates with its token, karr_db's new agent gets KITT's defaults, and
    check stays clean."""
    engine = make_engine(url)
    with engine.begin() as connection, Session(bind=connection) as session:
        run_id, raw = connection.execute(
            sa.text("SELECT id, raw_json FROM runs ORDER BY id LIMIT 1")
        ).one()
        document = raw if isinstance(raw, dict) else json.loads(raw)
        assert on(ResultsRepository, session).save(document).run.id == run_id
        agents = on(AgentsRepository, session)
        assert agents.authenticate("agent-1", AGENT_1_TOKEN).id == "agent-1"
        assert not agents.verify_token("agent-1", AGENT_1_TOKEN + "x")
        created = agents.register("new-after-adoption")
        session.flush()
    engine.dispose()
    assert _settings(url)[created.agent.id] == DEFAULT_SETTINGS
    assert migrations.check(url) == []


@pytest.mark.parametrize("version", range(3, 12))
def test_each_kitt_schema_adopts_with_every_row_kept(
    empty_url: str, backend: str, version: int, samples_dir: Path
) -> None:
    build_kitt(empty_url, version, samples_dir)
    before = raw_rows(empty_url)
    state = migrations.status(empty_url)
    assert (state.kind, state.schema_version) == ("legacy", version)

    report = migrations.upgrade(empty_url)

    assert report.adopted
    assert report.to_revision == head_revision()
    assert (report.backup is not None) == (backend == "sqlite")
    # Defaults are added for agents KITT had before its schema 8.
    added = ADDED_TO | {"agent_settings"} if version < 8 else ADDED_TO
    assert assert_rows_kept(before, typed_rows(empty_url), added) > 400
    assert migrations.check(empty_url) == []
    assert schema_versions(empty_url) == list(range(1, head_version() + 1))
    settings = _settings(empty_url)
    for agent_id in ("agent-1", "agent-2"):
        assert settings[agent_id].keys() == DEFAULT_SETTINGS.keys()
    if version >= 8:  # what KITT stored is kept, not reset to the default
        assert settings["agent-1"]["model_storage_dir"] == "/data/models"
    _behaves_like_karr_db(empty_url)


def test_kitt_17_fresh_postgresql_schema_adopts(empty_postgres_url: str, samples_dir: Path) -> None:
    build_kitt_17_postgres(empty_postgres_url, samples_dir)
    before = raw_rows(empty_postgres_url)
    assert migrations.status(empty_postgres_url).schema_version == 11

    report = migrations.upgrade(empty_postgres_url)

    assert report.adopted
    assert assert_rows_kept(before, typed_rows(empty_postgres_url)) > 400
    # A fresh install records its schema alone: the lineage's rows before it are absent.
    assert schema_versions(empty_postgres_url) == [11]
    assert migrations.check(empty_postgres_url) == []
    _behaves_like_karr_db(empty_postgres_url)


def test_kitt_110_fresh_database_with_row_2_alone_checks_clean(
    empty_url: str, samples_dir: Path
) -> None:
    # KITT 1.1.0 created its fresh databases at schema 2 and recorded 2 alone.
    build_kitt(empty_url, 2, samples_dir, extra=("DELETE FROM schema_version WHERE version = 1",))
    migrations.upgrade(empty_url)
    assert schema_versions(empty_url) == list(range(2, head_version() + 1))
    assert migrations.check(empty_url) == []


def test_a_gap_in_the_version_rows_is_still_a_finding(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM schema_version WHERE version = 5")
    engine.dispose()
    (finding,) = migrations.check(migrated_url)
    assert finding.kind == "bridge"
    assert "missing rows [5]" in finding.message


@pytest.mark.parametrize(
    ("version", "statements", "named"),
    [
        (8, ["DROP TABLE agent_settings"], "agent_settings"),
        (9, ["ALTER TABLE agents DROP COLUMN cpu_arch"], "agents.cpu_arch"),
        (11, ["ALTER TABLE agent_engines ADD COLUMN gpu_temp REAL"], "agent_engines.gpu_temp"),
        (
            7,
            ["CREATE TABLE campaign_logs (id INTEGER PRIMARY KEY, campaign_id TEXT, line TEXT)"],
            "campaign_logs",
        ),
        (8, ["ALTER TABLE agents ADD COLUMN cpu_arch TEXT"], "agents.cpu_arch"),
        (2, ["ALTER TABLE agents ADD COLUMN token_hash TEXT"], "agents.token_hash"),
    ],
)
def test_what_is_not_kitts_schema_is_refused_untouched(
    empty_url: str, samples_dir: Path, version: int, statements: list[str], named: str
) -> None:
    build_kitt(empty_url, version, samples_dir, extra=tuple(statements))
    before = snapshot(empty_url)
    with pytest.raises(AdoptionError) as caught:
        migrations.upgrade(empty_url)
    message = str(caught.value)
    assert named in message
    assert "nothing was changed" in message
    assert snapshot(empty_url) == before


def test_a_schema_newer_than_kitts_11_is_refused_untouched(
    empty_url: str, samples_dir: Path
) -> None:
    build_kitt(
        empty_url,
        11,
        samples_dir,
        extra=("INSERT INTO schema_version (version, applied_at) VALUES (12, '2026-04-01')",),
    )
    before = snapshot(empty_url)
    assert migrations.status(empty_url).kind == "unadoptable"
    with pytest.raises(UnadoptableSchemaError) as caught:
        migrations.upgrade(empty_url)
    message = str(caught.value)
    assert "schema 12" in message
    assert "1 to 11" in message
    assert "karr_db release" in message  # the next step: a release that knows it
    assert snapshot(empty_url) == before


def test_a_karr_db_database_kitt_migrated_is_adopted_again(empty_url: str) -> None:
    """A database karr_db made before KITT's lineage (its rows 1 and 2 only) that
    KITT then migrated to 11: tokens digested twice, KITT's tables added."""
    migrations.upgrade(empty_url, "0011")
    token = "karr-token-" + "x7Rq2" * 8
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO agents (id, name, hostname, token, status) "
                "VALUES ('a-1', 'old-karr', 'h', :t, 'online')"
            ),
            {"t": "sha256$" + hashlib.sha256(token.encode()).hexdigest()},
        )
    engine.dispose()
    kitt_migrates(empty_url)
    assert migrations.status(empty_url).kind == "legacy"

    report = migrations.upgrade(empty_url)

    assert report.adopted
    assert schema_versions(empty_url) == list(range(1, 12))
    assert migrations.check(empty_url) == []
    engine = make_engine(empty_url)
    with engine.begin() as connection, Session(bind=connection) as session:
        agents = on(AgentsRepository, session)
        assert agents.authenticate("a-1", token).name == "old-karr"
        session.flush()
        # Verified once, the digest is KITT's form again.
        stored = connection.execute(
            sa.text("SELECT token, token_hash, token_prefix FROM agents WHERE id = 'a-1'")
        ).one()
    engine.dispose()
    assert tuple(stored) == ("", hashlib.sha256(token.encode()).hexdigest(), token[:8])
