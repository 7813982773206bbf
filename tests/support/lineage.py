"""KITT databases at its later schemas 3..11, built from the facts of its lineage.

Written from the table of changes in KITT's lineage (what each schema adds, its
defaults and side effects), not from KITT's code: each schema's DDL as KITT's
migrations left it on SQLite (``DEFAULT ''`` columns, ``datetime('now')``
times, AUTOINCREMENT ids), the same on PostgreSQL where an operator applied it
there (SERIAL ids, TEXT times), and the PostgreSQL schema KITT 1.7 creates for a
fresh install (TIMESTAMPTZ for the ``*_at`` and ``timestamp`` columns of its own
rule, JSONB only for ``runs.raw_json``). The rows are the kind KITT writes: its
local ``isoformat()`` times, ``''`` for "none", JSON text.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tests.support.legacy import build_legacy, populate

#: KITT's six default settings of an agent (its schema 8).
DEFAULT_SETTINGS = {
    "model_storage_dir": "~/.kitt/models",
    "model_share_source": "",
    "model_share_mount": "",
    "auto_cleanup": "true",
    "heartbeat_interval_s": "30",
    "kitt_image": "",
}

#: The token of agent-1 in the schema-2 fixture (tests/support/legacy.py).
AGENT_1_TOKEN = "plain-secret-token"


def _later_sql(pg: bool) -> dict[int, list[str]]:
    """The DDL of KITT's schemas 3..11 on top of schema 2."""
    serial = "SERIAL PRIMARY KEY" if pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
    now = "(now()::text)" if pg else "(datetime('now'))"
    return {
        3: ["CREATE TABLE web_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)"],
        4: [
            "ALTER TABLE agents ADD COLUMN token_hash TEXT DEFAULT ''",
            "ALTER TABLE agents ADD COLUMN token_prefix TEXT DEFAULT ''",
        ],
        5: ["ALTER TABLE agents ADD COLUMN hardware_details TEXT DEFAULT ''"],
        6: ["ALTER TABLE quick_tests ADD COLUMN command_id TEXT DEFAULT ''"],
        7: [
            f"""CREATE TABLE quick_test_logs (id {serial},
                test_id TEXT NOT NULL REFERENCES quick_tests(id), line TEXT NOT NULL,
                created_at TEXT NOT NULL DEFAULT {now})""",
            "CREATE INDEX idx_quick_test_logs_test ON quick_test_logs(test_id)",
        ],
        8: [
            f"""CREATE TABLE agent_settings (id {serial},
                agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
                key TEXT NOT NULL, value TEXT NOT NULL DEFAULT '', UNIQUE (agent_id, key))""",
            "CREATE INDEX idx_agent_settings_agent ON agent_settings(agent_id)",
        ],
        9: ["ALTER TABLE agents ADD COLUMN cpu_arch TEXT DEFAULT ''"],
        10: [
            f"""CREATE TABLE campaign_logs (id {serial},
                campaign_id TEXT NOT NULL REFERENCES web_campaigns(id), line TEXT NOT NULL,
                created_at TEXT NOT NULL DEFAULT {now})""",
            "CREATE INDEX idx_campaign_logs_campaign ON campaign_logs(campaign_id)",
        ],
        11: [
            f"""CREATE TABLE engine_profiles (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                engine TEXT NOT NULL, mode TEXT NOT NULL DEFAULT 'docker',
                description TEXT DEFAULT '', build_config TEXT DEFAULT '{{}}',
                runtime_config TEXT DEFAULT '{{}}',
                created_at TEXT NOT NULL DEFAULT {now},
                updated_at TEXT NOT NULL DEFAULT {now})""",
            f"""CREATE TABLE agent_engines (id {serial},
                agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
                engine TEXT NOT NULL, mode TEXT NOT NULL, version TEXT DEFAULT '',
                binary_path TEXT DEFAULT '', status TEXT DEFAULT 'unknown',
                last_checked TEXT DEFAULT '', UNIQUE (agent_id, engine, mode))""",
            "CREATE INDEX idx_engine_profiles_engine ON engine_profiles(engine)",
            "CREATE INDEX idx_agent_engines_agent ON agent_engines(agent_id)",
            "ALTER TABLE quick_tests ADD COLUMN engine_mode TEXT DEFAULT 'docker'",
            "ALTER TABLE quick_tests ADD COLUMN profile_id TEXT DEFAULT ''",
        ],
    }


def _run(connection: Connection, sql: str, **params: Any) -> None:
    connection.execute(sa.text(sql), params)


def _migrate(connection: Connection, version: int, pg: bool) -> None:
    """KITT's migration to ``version`` with its side effects (on the rows already there)."""
    for statement in _later_sql(pg)[version]:
        connection.exec_driver_sql(statement)
    if version == 4:
        rows = connection.exec_driver_sql(
            "SELECT id, token FROM agents WHERE token <> '' AND token_hash = ''"
        ).all()
        for agent_id, token in rows:
            _run(
                connection,
                "UPDATE agents SET token_hash = :h, token_prefix = :p, token = '' WHERE id = :i",
                h=hashlib.sha256(token.encode()).hexdigest(),
                p=token[:8],
                i=agent_id,
            )
    if version == 8:
        for (agent_id,) in connection.exec_driver_sql("SELECT id FROM agents ORDER BY id").all():
            for key, value in DEFAULT_SETTINGS.items():
                _run(
                    connection,
                    "INSERT INTO agent_settings (agent_id, key, value) VALUES (:a, :k, :v)",
                    a=agent_id,
                    k=key,
                    v=value,
                )


def _fill(connection: Connection, version: int) -> None:
    """Rows in what schema ``version`` added, as KITT's services write them."""
    if version == 3:
        for key, value in (("theme", "dark"), ("results_per_page", "50"), ("ünï", "✓ 日本")):
            _run(
                connection, "INSERT INTO web_settings (key, value) VALUES (:k, :v)", k=key, v=value
            )
    if version == 5:
        details = {"gpus": [{"name": "H100", "vram_gb": 80}], "numa": 2}
        _run(
            connection,
            "UPDATE agents SET hardware_details = :d WHERE id = 'agent-1'",
            d=json.dumps(details),
        )
    if version == 6:
        _run(connection, "UPDATE quick_tests SET command_id = 'cmd-7f3a' WHERE id = 'qt-1'")
    if version == 7:
        for n, created in ((4, "2026-02-12 10:00:03"), (9, "2026-02-12T11:00:04.250000")):
            _run(
                connection,
                "INSERT INTO quick_test_logs (id, test_id, line, created_at) "
                "VALUES (:i, 'qt-1', :l, :c)",
                i=n,
                l=f"line {n}: tokens/s 41.{n}",
                c=created,
            )
        _run(connection, "INSERT INTO quick_test_logs (test_id, line) VALUES ('qt-1', 'done')")
    if version == 8:
        _run(
            connection,
            "UPDATE agent_settings SET value = '/data/models' "
            "WHERE agent_id = 'agent-1' AND key = 'model_storage_dir'",
        )
    if version == 9:
        _run(connection, "UPDATE agents SET cpu_arch = 'amd64' WHERE id = 'agent-1'")
        _run(connection, "UPDATE agents SET cpu_arch = 'arm64' WHERE id = 'agent-2'")
    if version == 10:
        for line in ("campaign started", "run 1/4 ok"):
            _run(
                connection,
                "INSERT INTO campaign_logs (campaign_id, line, created_at) "
                "VALUES ('camp-1', :l, '2026-02-12T09:30:00')",
                l=line,
            )
    if version == 11:
        _run(
            connection,
            "INSERT INTO engine_profiles (id, name, engine, mode, description, build_config, "
            "runtime_config, created_at, updated_at) VALUES ('prof-1', 'vllm-fp8', 'vllm', "
            "'native', 'fp8 build', :b, '{}', '2026-02-28T12:00:00', '2026-03-01 08:00:00')",
            b=json.dumps({"cuda": "12.4", "flags": ["--fp8"]}),
        )
        _run(
            connection,
            "INSERT INTO agent_engines (agent_id, engine, mode, version, binary_path, status, "
            "last_checked) VALUES ('agent-1', 'vllm', 'docker', '0.6.3', '', 'ok', "
            "'2026-03-01T08:00:00.500000')",
        )
        _run(
            connection,
            "INSERT INTO agent_engines (agent_id, engine, mode) "
            "VALUES ('agent-2', 'llama_cpp', 'native')",
        )
        _run(
            connection,
            "UPDATE quick_tests SET engine_mode = 'native', profile_id = 'prof-1' "
            "WHERE id = 'qt-1'",
        )


def _record(connection: Connection, version: int) -> None:
    _run(
        connection,
        "INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)",
        v=version,
        t=f"2026-02-{version + 10:02d} 08:00:00",
    )


def build_kitt(url: str, version: int, samples_dir: Path, extra: tuple[str, ...] = ()) -> None:
    """A database KITT took from schema 2 to ``version`` (1..11), rows in every table."""
    build_legacy(url, min(version, 2), samples_dir)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        pg = connection.dialect.name == "postgresql"
        for number in range(3, version + 1):
            _migrate(connection, number, pg)
            _fill(connection, number)
            _record(connection, number)
        for statement in extra:
            connection.exec_driver_sql(statement)
    engine.dispose()


#: KITT 1.7's fresh PostgreSQL schema (11), written from its rules: TIMESTAMPTZ for
#: schema_version.applied_at, runs.timestamp/created_at, benchmarks.created_at and the
#: ``created_at``/``registered_at``/``updated_at`` columns; TEXT for the other times;
#: JSONB for runs.raw_json only; BOOLEAN passed, REAL total_time_seconds, DOUBLE
#: PRECISION metric_value, SERIAL ids; NOT NULL and DEFAULT clauses as on SQLite.
KITT_17_POSTGRES = [
    """CREATE TABLE schema_version (version INTEGER NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE runs (id TEXT PRIMARY KEY, model TEXT NOT NULL, engine TEXT NOT NULL,
        suite_name TEXT NOT NULL DEFAULT '', timestamp TIMESTAMPTZ NOT NULL,
        passed BOOLEAN NOT NULL DEFAULT false, total_benchmarks INTEGER NOT NULL DEFAULT 0,
        passed_count INTEGER NOT NULL DEFAULT 0, failed_count INTEGER NOT NULL DEFAULT 0,
        total_time_seconds REAL NOT NULL DEFAULT 0, kitt_version TEXT NOT NULL DEFAULT '',
        raw_json JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE benchmarks (id SERIAL PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, test_name TEXT NOT NULL,
        test_version TEXT NOT NULL DEFAULT '1.0.0', run_number INTEGER NOT NULL DEFAULT 1,
        passed BOOLEAN NOT NULL DEFAULT false, timestamp TEXT NOT NULL DEFAULT '',
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE metrics (id SERIAL PRIMARY KEY,
        benchmark_id INTEGER NOT NULL REFERENCES benchmarks(id) ON DELETE CASCADE,
        metric_name TEXT NOT NULL, metric_value DOUBLE PRECISION)""",
    """CREATE TABLE hardware (id SERIAL PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, gpu_model TEXT,
        gpu_vram_gb INTEGER, gpu_count INTEGER DEFAULT 1, cpu_model TEXT, cpu_cores INTEGER,
        ram_gb INTEGER, environment_type TEXT, fingerprint TEXT)""",
    """CREATE TABLE agents (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        hostname TEXT NOT NULL, port INTEGER NOT NULL DEFAULT 8090,
        token TEXT NOT NULL DEFAULT '', token_hash TEXT DEFAULT '', token_prefix TEXT DEFAULT '',
        status TEXT NOT NULL DEFAULT 'offline', gpu_info TEXT DEFAULT '',
        gpu_count INTEGER DEFAULT 0, cpu_info TEXT DEFAULT '', ram_gb INTEGER DEFAULT 0,
        environment_type TEXT DEFAULT '', fingerprint TEXT DEFAULT '',
        kitt_version TEXT DEFAULT '', hardware_details TEXT DEFAULT '',
        last_heartbeat TEXT DEFAULT '', registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        notes TEXT DEFAULT '', tags TEXT DEFAULT '[]', cpu_arch TEXT DEFAULT '')""",
    """CREATE TABLE web_campaigns (id TEXT PRIMARY KEY, name TEXT NOT NULL,
        description TEXT DEFAULT '', config_json TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'draft', agent_id TEXT REFERENCES agents(id),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(), started_at TEXT DEFAULT '',
        completed_at TEXT DEFAULT '', total_runs INTEGER DEFAULT 0,
        succeeded INTEGER DEFAULT 0, failed INTEGER DEFAULT 0, skipped INTEGER DEFAULT 0,
        error TEXT DEFAULT '')""",
    """CREATE TABLE quick_tests (id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id), model_path TEXT NOT NULL,
        engine_name TEXT NOT NULL, benchmark_name TEXT NOT NULL,
        suite_name TEXT DEFAULT 'quick', status TEXT NOT NULL DEFAULT 'queued',
        command_id TEXT DEFAULT '', created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        started_at TEXT DEFAULT '', completed_at TEXT DEFAULT '',
        result_id TEXT REFERENCES runs(id), error TEXT DEFAULT '',
        engine_mode TEXT DEFAULT 'docker', profile_id TEXT DEFAULT '')""",
    """CREATE TABLE events (id SERIAL PRIMARY KEY, event_type TEXT NOT NULL,
        source_id TEXT NOT NULL, data TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    "CREATE TABLE web_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE quick_test_logs (id SERIAL PRIMARY KEY,
        test_id TEXT NOT NULL REFERENCES quick_tests(id), line TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE agent_settings (id SERIAL PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE, key TEXT NOT NULL,
        value TEXT NOT NULL DEFAULT '', UNIQUE (agent_id, key))""",
    """CREATE TABLE campaign_logs (id SERIAL PRIMARY KEY,
        campaign_id TEXT NOT NULL REFERENCES web_campaigns(id), line TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE engine_profiles (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        engine TEXT NOT NULL, mode TEXT NOT NULL DEFAULT 'docker', description TEXT DEFAULT '',
        build_config TEXT DEFAULT '{}', runtime_config TEXT DEFAULT '{}',
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE agent_engines (id SERIAL PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE, engine TEXT NOT NULL,
        mode TEXT NOT NULL, version TEXT DEFAULT '', binary_path TEXT DEFAULT '',
        status TEXT DEFAULT 'unknown', last_checked TEXT DEFAULT '',
        UNIQUE (agent_id, engine, mode))""",
    "CREATE INDEX idx_runs_model ON runs(model)",
    "CREATE INDEX idx_runs_timestamp ON runs(timestamp)",
    "CREATE INDEX idx_metrics_name ON metrics(metric_name)",
    "CREATE INDEX idx_agents_status ON agents(status)",
    "CREATE INDEX idx_quick_test_logs_test ON quick_test_logs(test_id)",
    "CREATE INDEX idx_agent_settings_agent ON agent_settings(agent_id)",
    "CREATE INDEX idx_campaign_logs_campaign ON campaign_logs(campaign_id)",
    "CREATE INDEX idx_engine_profiles_engine ON engine_profiles(engine)",
    "CREATE INDEX idx_agent_engines_agent ON agent_engines(agent_id)",
]


def build_kitt_17_postgres(url: str, samples_dir: Path) -> None:
    """A fresh KITT 1.7 PostgreSQL database (schema 11, recorded as 11 alone), with rows.

    The result rows come from the schema-2 fixture's writer (it binds values, so the
    TIMESTAMPTZ and JSONB columns parse them), then KITT's later rows.
    """
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        for statement in KITT_17_POSTGRES:
            connection.exec_driver_sql(statement)
        # KITT 1.7's NOT NULL columns need a value where the schema-2 fixture leaves NULL.
        for statement in (
            # The schema-2 fixture writes '' for some benchmark times: text meanwhile.
            "ALTER TABLE benchmarks ALTER COLUMN created_at TYPE TEXT",
            "ALTER TABLE benchmarks ALTER COLUMN created_at DROP NOT NULL",
            "ALTER TABLE runs ALTER COLUMN created_at DROP NOT NULL",
            "ALTER TABLE runs ALTER COLUMN raw_json TYPE TEXT",
            "ALTER TABLE runs ALTER COLUMN passed DROP DEFAULT",
            "ALTER TABLE runs ALTER COLUMN passed TYPE INTEGER USING passed::int",
            "ALTER TABLE events ALTER COLUMN source_id DROP NOT NULL",
            "ALTER TABLE quick_tests ALTER COLUMN created_at DROP NOT NULL",
            "ALTER TABLE agents ALTER COLUMN token DROP NOT NULL",
        ):
            connection.exec_driver_sql(statement)
        populate(connection, 2, samples_dir)
        connection.exec_driver_sql("DELETE FROM schema_version")
        _migrate_side_effects_fresh(connection)
        for number in range(3, 12):
            _fill(connection, number)
        for statement in (
            "UPDATE runs SET created_at = '2026-03-01 08:00:00+00' WHERE created_at IS NULL",
            "UPDATE agents SET token = '' WHERE token IS NULL",
            "UPDATE benchmarks SET created_at = '2026-02-12 10:00:02+00' "
            "WHERE coalesce(created_at, '') = ''",
            "ALTER TABLE benchmarks ALTER COLUMN created_at TYPE TIMESTAMPTZ "
            "USING created_at::timestamptz",
            "ALTER TABLE benchmarks ALTER COLUMN created_at SET NOT NULL",
            "ALTER TABLE benchmarks ALTER COLUMN created_at SET DEFAULT now()",
            "ALTER TABLE runs ALTER COLUMN created_at SET NOT NULL",
            "ALTER TABLE runs ALTER COLUMN passed TYPE BOOLEAN USING passed <> 0",
            "ALTER TABLE runs ALTER COLUMN passed SET DEFAULT false",
            # JSONB cannot hold the NaN document, so KITT could not have stored it here.
            "DELETE FROM runs WHERE strpos(raw_json, 'NaN') > 0",
            "ALTER TABLE runs ALTER COLUMN raw_json TYPE JSONB USING raw_json::jsonb",
            "ALTER TABLE agents ALTER COLUMN token SET NOT NULL",
        ):
            connection.exec_driver_sql(statement)
        _run(
            connection,
            "INSERT INTO schema_version (version, applied_at) "
            "VALUES (11, '2026-03-01 08:00:00+00')",
        )
    engine.dispose()


def _migrate_side_effects_fresh(connection: Connection) -> None:
    """What KITT 1.7 writes for the schema-2 fixture's agents: digests and settings."""
    rows = connection.exec_driver_sql("SELECT id, token FROM agents WHERE token <> ''").all()
    for agent_id, token in rows:
        _run(
            connection,
            "UPDATE agents SET token_hash = :h, token_prefix = :p, token = '' WHERE id = :i",
            h=hashlib.sha256(token.encode()).hexdigest(),
            p=token[:8],
            i=agent_id,
        )
    for (agent_id,) in connection.exec_driver_sql("SELECT id FROM agents ORDER BY id").all():
        for key, value in DEFAULT_SETTINGS.items():
            _run(
                connection,
                "INSERT INTO agent_settings (agent_id, key, value) VALUES (:a, :k, :v)",
                a=agent_id,
                k=key,
                v=value,
            )


def kitt_migrates(url: str, upto: int = 11) -> None:
    """What KITT's migration runner does to a database whose MAX(version) is 2: its
    migrations 3..``upto`` with their side effects (no rows of its own)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        pg = connection.dialect.name == "postgresql"
        for number in range(3, upto + 1):
            _migrate(connection, number, pg)
            _record(connection, number)
    engine.dispose()
