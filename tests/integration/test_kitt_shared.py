"""One database shared with KITT 1.7, both ways.

``KittDouble`` issues the SQL KITT 1.7's storage and web services issue (its
migration runner's version read, the agent manager, campaign, settings and
engine services, quick-test dispatch and logs), on a plain ``sqlite3``
connection to the same file as KITT's web app opens, with KITT's values: local
``datetime.now().isoformat()`` times, statuses such as ``provisioned`` and
``dispatched``, JSON text. It is a stand-in written from KITT's behaviour, not
KITT's code. KITT's services run on SQLite only; what KITT does on PostgreSQL
(reading the schema version, verifying a token) is tested on both dialects.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from karr_db import migrations
from karr_db.engine import make_engine, sqlite_path
from karr_db.models import AGENT_SETTING_DEFAULTS
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from tests.support.repositories import on

#: The highest migration KITT 1.7 knows.
KITT_LATEST = 11

#: Every column KITT 1.7's services name, by table.
KITT_COLUMNS = {
    "agents": {"token_hash", "token_prefix", "hardware_details", "cpu_arch", "token", "status"},
    "quick_tests": {"command_id", "engine_mode", "profile_id", "status"},
    "web_settings": {"key", "value"},
    "agent_settings": {"agent_id", "key", "value"},
    "quick_test_logs": {"test_id", "line", "created_at"},
    "campaign_logs": {"campaign_id", "line", "created_at"},
    "engine_profiles": {"name", "engine", "mode", "build_config", "runtime_config", "updated_at"},
    "agent_engines": {"agent_id", "engine", "mode", "version", "status", "last_checked"},
}


def _now() -> str:
    return datetime.now().isoformat()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KittDouble:
    """KITT 1.7's SQL on the shared SQLite file (autocommit per call, as KITT commits)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        cursor = self.conn.execute(sql, params)
        self.conn.commit()
        return cursor

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def provision(self, name: str) -> tuple[str, str]:
        token = secrets.token_hex(32)
        agent_id = uuid.uuid4().hex[:16]
        self._write(
            "INSERT INTO agents (id, name, hostname, port, token, token_hash, token_prefix, "
            "status, registered_at) VALUES (?, ?, ?, ?, '', ?, ?, 'provisioned', ?)",
            (agent_id, name, name, 8090, _digest(token), token[:8], _now()),
        )
        self.ensure_default_settings(agent_id)
        return agent_id, token

    def register(self, agent_id: str, name: str) -> None:
        self._write(
            "UPDATE agents SET hostname = ?, port = ?, status = 'online', gpu_info = ?, "
            "gpu_count = ?, cpu_info = ?, cpu_arch = ?, ram_gb = ?, environment_type = ?, "
            "fingerprint = ?, kitt_version = ?, hardware_details = ?, last_heartbeat = ? "
            "WHERE id = ?",
            (
                f"{name}.lan",
                8090,
                "H100",
                8,
                "EPYC",
                "amd64",
                512,
                "docker",
                "fp-1",
                "1.7.0",
                json.dumps({"gpus": [{"name": "H100"}]}),
                _now(),
                agent_id,
            ),
        )
        self.ensure_default_settings(agent_id)

    def ensure_default_settings(self, agent_id: str) -> None:
        for key, value in AGENT_SETTING_DEFAULTS.items():
            self.conn.execute(
                "INSERT OR IGNORE INTO agent_settings (agent_id, key, value) VALUES (?, ?, ?)",
                (agent_id, key, value),
            )
        self.conn.commit()

    def verify_token(self, agent_id: str, token: str) -> bool:
        row = self.conn.execute(
            "SELECT token, token_hash FROM agents WHERE id = ?", (agent_id,)
        ).fetchone()
        if row is None:
            return False
        stored_hash, stored_raw = row["token_hash"] or "", row["token"] or ""
        if not stored_hash and not stored_raw:
            return True
        if stored_hash:
            return hmac.compare_digest(_digest(token), stored_hash)
        return hmac.compare_digest(token, stored_raw)

    def heartbeat(self, agent_id: str, status: str = "idle") -> list[str]:
        self._write(
            "UPDATE agents SET status = ?, last_heartbeat = ? WHERE id = ?",
            (status, _now(), agent_id),
        )
        rows = self.conn.execute(
            "SELECT id, command_id, model_path, engine_name, benchmark_name, suite_name "
            "FROM quick_tests WHERE agent_id = ? AND status = 'queued' "
            "ORDER BY created_at LIMIT 1",
            (agent_id,),
        ).fetchall()
        for row in rows:
            self.conn.execute(
                "UPDATE quick_tests SET status = 'dispatched' WHERE id = ?", (row["id"],)
            )
        self.conn.commit()
        self.conn.execute(
            "SELECT key, value FROM agent_settings WHERE agent_id = ?", (agent_id,)
        ).fetchall()
        return [row["id"] for row in rows]

    def update_agent(self, agent_id: str, notes: str, tags: list[str]) -> None:
        self._write(
            "UPDATE agents SET notes = ?, tags = ? WHERE id = ?",
            (notes, json.dumps(tags), agent_id),
        )

    def update_agent_setting(self, agent_id: str, key: str, value: str) -> None:
        self._write(
            "UPDATE agent_settings SET value = ? WHERE agent_id = ? AND key = ?",
            (value, agent_id, key),
        )

    def rotate_token(self, agent_id: str) -> str:
        token = secrets.token_hex(32)
        self._write(
            "UPDATE agents SET token_hash = ?, token_prefix = ?, token = '' WHERE id = ?",
            (_digest(token), token[:8], agent_id),
        )
        return token

    def create_quick_test(self, agent_id: str, profile_id: str = "") -> str:
        test_id = uuid.uuid4().hex[:16]
        self._write(
            "INSERT INTO quick_tests (id, agent_id, model_path, engine_name, benchmark_name, "
            "suite_name, status, command_id, engine_mode, profile_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, 'quick', 'queued', ?, ?, ?, ?)",
            (
                test_id,
                agent_id,
                "/models/llama",
                "vllm",
                "throughput",
                uuid.uuid4().hex[:12],
                "docker",
                profile_id,
                _now(),
            ),
        )
        return test_id

    def quick_test_status(self, test_id: str, status: str, error: str = "") -> None:
        column = "started_at" if status == "running" else "completed_at"
        self._write(
            f"UPDATE quick_tests SET status = ?, error = ?, {column} = ? WHERE id = ?",
            (status, error, _now(), test_id),
        )

    def append_quick_test_log(self, test_id: str, line: str) -> None:
        self._write("INSERT INTO quick_test_logs (test_id, line) VALUES (?, ?)", (test_id, line))

    def create_campaign(self, name: str, agent_id: str) -> str:
        campaign_id = uuid.uuid4().hex[:16]
        self._write(
            "INSERT INTO web_campaigns (id, name, description, config_json, status, "
            "agent_id, created_at) VALUES (?, ?, ?, ?, 'draft', ?, ?)",
            (campaign_id, name, "", json.dumps({"models": ["m"]}), agent_id, _now()),
        )
        return campaign_id

    def campaign_status(self, campaign_id: str, status: str, **counts: int) -> None:
        sets: list[str] = ["status = ?"]
        params: list[Any] = [status]
        if status == "running":
            sets.append("started_at = ?")
            params.append(_now())
        elif status in ("completed", "failed", "cancelled"):
            sets.append("completed_at = ?")
            params.append(_now())
        for field, value in counts.items():
            sets.append(f"{field} = ?")
            params.append(value)
        self._write(
            f"UPDATE web_campaigns SET {', '.join(sets)} WHERE id = ?", (*params, campaign_id)
        )

    def append_campaign_log(self, campaign_id: str, line: str) -> None:
        self._write(
            "INSERT INTO campaign_logs (campaign_id, line) VALUES (?, ?)", (campaign_id, line)
        )

    def set_web_setting(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO web_settings (key, value) VALUES (?, ?)", (key, value))

    def create_profile(self, name: str) -> str:
        profile_id = uuid.uuid4().hex[:16]
        now = _now()
        self._write(
            "INSERT INTO engine_profiles (id, name, engine, mode, description, build_config, "
            "runtime_config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (profile_id, name, "vllm", "docker", "", json.dumps({"cuda": "12.4"}), "{}", now, now),
        )
        return profile_id

    def update_profile(self, profile_id: str, description: str) -> None:
        self._write(
            "UPDATE engine_profiles SET description = ?, updated_at = ? WHERE id = ?",
            (description, _now(), profile_id),
        )

    def upsert_agent_engine(self, agent_id: str, engine: str, status: str) -> None:
        self._write(
            "INSERT INTO agent_engines (agent_id, engine, mode, version, binary_path, status, "
            "last_checked) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(agent_id, engine, mode) DO UPDATE SET version = excluded.version, "
            "binary_path = excluded.binary_path, status = excluded.status, "
            "last_checked = excluded.last_checked",
            (agent_id, engine, "docker", "0.6.3", "", status, _now()),
        )


def test_kitt_reads_a_karr_db_database_as_its_schema_11(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.connect() as connection:
        # KITT's migration runner: MAX(version), and every migration above it applied.
        latest = connection.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar()
        inspector = sa.inspect(connection)
        columns = {t: {c["name"] for c in inspector.get_columns(t)} for t in KITT_COLUMNS}
    engine.dispose()
    assert latest == KITT_LATEST  # so KITT applies no migration
    for table, names in KITT_COLUMNS.items():
        assert names <= columns[table], table


def test_agent_tokens_verify_both_ways(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection, Session(bind=connection) as session:
        agents = on(AgentsRepository, session)
        ours = agents.register("karr-registered")
        token = ours.token.get_secret_value()
        # KITT's provision: token '' and the digest and prefix of its token_hex(32).
        kitt_token = secrets.token_hex(32)
        connection.execute(
            sa.text(
                "INSERT INTO agents (id, name, hostname, port, token, token_hash, token_prefix, "
                "status, registered_at) VALUES ('kitt-1', 'kitt-registered', 'h', 8090, '', "
                ":h, :p, 'provisioned', :t)"
            ),
            {"h": _digest(kitt_token), "p": kitt_token[:8], "t": _now()},
        )
        assert agents.authenticate("kitt-1", kitt_token).name == "kitt-registered"
        assert not agents.verify_token("kitt-1", kitt_token[:-1])
        # KITT's verification of karr_db's agent: its digest against token_hash.
        stored_hash, stored_raw = connection.execute(
            sa.text("SELECT token_hash, token FROM agents WHERE id = :i"), {"i": ours.agent.id}
        ).one()
    engine.dispose()
    assert stored_raw == ""
    assert hmac.compare_digest(_digest(token), stored_hash)
    assert migrations.check(migrated_url) == []


def test_kitt_services_write_a_shared_database_and_check_stays_clean(
    sqlite_databases: Any,
) -> None:
    url = sqlite_databases.migrated()
    path = sqlite_path(sa.make_url(url))
    assert path is not None
    kitt = KittDouble(str(path))
    try:
        assert kitt.schema_version() == KITT_LATEST
        agent_id, token = kitt.provision("dgx-01")
        kitt.register(agent_id, "dgx-01")
        kitt.update_agent(agent_id, "rack 3", ["gpu", "h100"])
        kitt.update_agent_setting(agent_id, "model_storage_dir", "/data/models")
        profile_id = kitt.create_profile("vllm-fp8")
        kitt.update_profile(profile_id, "fp8 build")
        test_id = kitt.create_quick_test(agent_id, profile_id)
        assert kitt.heartbeat(agent_id) == [test_id]
        kitt.quick_test_status(test_id, "running")
        for n in range(3):
            kitt.append_quick_test_log(test_id, f"line {n}")
        kitt.quick_test_status(test_id, "completed")
        campaign_id = kitt.create_campaign("nightly", agent_id)
        kitt.campaign_status(campaign_id, "running", total_runs=2)
        kitt.append_campaign_log(campaign_id, "run 1/2 ok")
        kitt.campaign_status(campaign_id, "completed", succeeded=2)
        kitt.set_web_setting("theme", "dark")
        kitt.set_web_setting("theme", "light")
        kitt.upsert_agent_engine(agent_id, "vllm", "unknown")
        kitt.upsert_agent_engine(agent_id, "vllm", "ok")
        kitt.heartbeat(agent_id, "running")
        rotated = kitt.rotate_token(agent_id)
        assert kitt.verify_token(agent_id, rotated)
        assert not kitt.verify_token(agent_id, token)
        assert kitt.schema_version() == KITT_LATEST
    finally:
        kitt.close()

    # karr_db's guards and triggers took all of it: check is clean, and every time
    # KITT wrote in its local form reads back as an instant.
    assert migrations.check(url) == []
    engine = make_engine(url)
    with engine.begin() as connection, Session(bind=connection) as session:
        agents = on(AgentsRepository, session)
        agent = agents.authenticate(agent_id, rotated)
        assert agent.tags == ["gpu", "h100"]
        assert agent.last_heartbeat is not None
        assert not agents.verify_token(agent_id, token)
        assert on(QuickTestsRepository, session).get(test_id).completed_at is not None
        assert on(CampaignsRepository, session).get(campaign_id).completed_at is not None
        settings: dict[str, str] = dict(
            connection.execute(
                sa.text("SELECT key, value FROM agent_settings WHERE agent_id = :a"),
                {"a": agent_id},
            ).all()
        )
        assert settings == {**AGENT_SETTING_DEFAULTS, "model_storage_dir": "/data/models"}
        # And karr_db writes beside KITT: a registration KITT can verify.
        ours = agents.register("karr-side")
        session.flush()
    engine.dispose()
    kitt = KittDouble(str(path))
    try:
        assert kitt.verify_token(ours.agent.id, ours.token.get_secret_value())
    finally:
        kitt.close()
    assert migrations.check(url) == []
