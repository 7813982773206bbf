"""Fixtures giving every storage test a real SQLite file and a real PostgreSQL.

PostgreSQL comes from ``KARR_TEST_POSTGRES_URL`` when set, else from
testcontainers when Docker answers; otherwise PostgreSQL tests are skipped with
a reason, or fail when ``KARR_REQUIRE_POSTGRES=1``. Each test that asks for a
database gets its own, created and dropped around it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from karr_db import migrations
from karr_db.db import make_engine, normalize_url

POSTGRES_URL_ENV = "KARR_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "KARR_REQUIRE_POSTGRES"
HOW_TO_ENABLE = (
    f"PostgreSQL tests need {POSTGRES_URL_ENV} (for example "
    "postgresql://postgres@127.0.0.1:5432/test) or a running Docker for testcontainers"
)
BACKENDS = ("sqlite", "postgresql")


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """URL of a PostgreSQL server whose maintenance database tests may use."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield normalize_url(url).render_as_string(hide_password=False)
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15-alpine", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    yield None


def _need_postgres(server: str | None) -> str:
    if server is None:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but no PostgreSQL: {HOW_TO_ENABLE}")
        pytest.skip(HOW_TO_ENABLE)
    return server


class PostgresDatabases:
    """Creates throwaway databases (optionally from a migrated template)."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.admin = sa.create_engine(
            server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        self._template: str | None = None

    def url(self, name: str) -> str:
        return make_url(self.server).set(database=name).render_as_string(hide_password=False)

    def create(self, *, migrated: bool = False) -> str:
        name = f"karr_test_{uuid.uuid4().hex[:12]}"
        template = f" TEMPLATE {self.template()}" if migrated else ""
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{template}')
        return name

    def template(self) -> str:
        if self._template is None:
            name = self.create()
            migrations.upgrade(self.url(name))
            self._template = name
        return self._template

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._template is not None:
            self.drop(self._template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: str | None) -> Iterator[PostgresDatabases | None]:
    if postgres_server is None:
        yield None
        return
    databases = PostgresDatabases(postgres_server)
    yield databases
    databases.close()


class SqliteDatabases:
    """Creates SQLite files (optionally copied from a migrated template)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._template: Path | None = None

    def create(self, *, migrated: bool = False) -> str:
        path = self.root / f"karr_{uuid.uuid4().hex[:12]}.db"
        if migrated:
            shutil.copyfile(self.template(), path)
        return f"sqlite:///{path}"

    def template(self) -> Path:
        if self._template is None:
            path = self.root / "template.db"
            url = f"sqlite:///{path}"
            migrations.upgrade(url)
            engine = make_engine(url)
            with engine.connect() as conn:  # fold the WAL into the file before copying
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            self._template = path
        return self._template


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The dialect under test; every storage test runs once per dialect."""
    name: str = request.param
    if name == "postgresql":
        _need_postgres(request.getfixturevalue("postgres_server"))
    return name


def _database(request: pytest.FixtureRequest, backend: str, *, migrated: bool) -> Iterator[str]:
    if backend == "sqlite":
        yield request.getfixturevalue("sqlite_databases").create(migrated=migrated)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.create(migrated=migrated)
    try:
        yield databases.url(name)
    finally:
        databases.drop(name)


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """A brand-new, empty database of the dialect under test."""
    yield from _database(request, backend, migrated=False)


@pytest.fixture
def migrated_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """A brand-new database already upgraded to head."""
    yield from _database(request, backend, migrated=True)


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            yield session
        transaction.rollback()


#: KITT result documents written for these tests (three runs: an accuracy suite
#: on tgi that failed one benchmark, and a throughput and a latency run on ollama).
SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "samples"


@pytest.fixture
def samples_dir() -> Path:
    """The repository's own sample documents: a plain clone needs nothing beside it."""
    return SAMPLES_DIR


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_alembic() -> Any:
    """Run the ``alembic`` command from the repository root against a database URL."""
    import subprocess
    import sys

    def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KARR_DATABASE_URL": url}
        alembic = Path(sys.executable).parent / "alembic"
        return subprocess.run(
            [str(alembic), *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


@pytest.fixture
def empty_postgres_url(
    postgres_server: str | None, request: pytest.FixtureRequest
) -> Iterator[str]:
    """An empty PostgreSQL database, for tests about PostgreSQL alone."""
    _need_postgres(postgres_server)
    yield from _database(request, "postgresql", migrated=False)


@pytest.fixture
def migrated_postgres_url(
    postgres_server: str | None, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A PostgreSQL database at head, for tests about PostgreSQL alone."""
    _need_postgres(postgres_server)
    yield from _database(request, "postgresql", migrated=True)
