"""Fixtures giving every storage test a real SQLite file and a real PostgreSQL.

PostgreSQL comes from ``KARR_TEST_POSTGRES_URL`` when set, else from
testcontainers when Docker answers; otherwise PostgreSQL tests are skipped with
a reason, or fail when ``KARR_REQUIRE_POSTGRES=1``. Each test that asks for a
database gets its own, created and dropped around it (``tests.support.databases``).
``postgres_only`` / ``sqlite_only`` keep a test, or one case of it, to one dialect.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from karr_db.engine import make_engine, normalize_url
from tests.support import REPO_ROOT, SAMPLES_DIR
from tests.support.databases import DIALECTS, Databases
from tests.support.reference import Reference, load_facts

POSTGRES_URL_ENV = "KARR_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "KARR_REQUIRE_POSTGRES"
HOW_TO_ENABLE = (
    f"PostgreSQL tests need {POSTGRES_URL_ENV} (for example "
    "postgresql://postgres@127.0.0.1:5432/test) or a running Docker for testcontainers"
)


@pytest.fixture(scope="session", autouse=True)
def _no_user_configuration(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite never reads the developer's own configuration file
    (``~/.config/karr-db/config.toml``): it names a file that does not exist,
    subprocesses included. Tests of the file name their own."""
    from karr_db.config import CONFIG_ENV

    before = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = str(tmp_path_factory.mktemp("config") / "absent.toml")
    yield
    if before is None:
        os.environ.pop(CONFIG_ENV, None)
    else:
        os.environ[CONFIG_ENV] = before


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


@pytest.fixture(scope="session")
def postgres_databases(
    postgres_server: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases | None]:
    if postgres_server is None:
        yield None
        return
    databases = Databases("postgresql", tmp_path_factory.mktemp("postgresql"), postgres_server)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    databases = Databases("sqlite", tmp_path_factory.mktemp("sqlite"))
    yield databases
    databases.drop_all()


#: Markers that keep a test to one dialect, and the ``backend`` each one keeps.
DIALECT_MARKERS = {"postgres_only": "postgresql", "sqlite_only": "sqlite"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the other dialect's case of a test marked ``postgres_only`` or ``sqlite_only``.

    Deselected, not skipped: a case that cannot apply to a dialect is not a
    skip to read past in every report. The marker may sit on the test, its
    module (``pytestmark``) or one ``pytest.param`` of it.
    """
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        dialect = callspec.params.get("backend") if callspec is not None else None
        wanted = {d for m, d in DIALECT_MARKERS.items() if item.get_closest_marker(m)}
        if len(wanted) > 1:
            raise pytest.UsageError(f"{item.nodeid}: both postgres_only and sqlite_only")
        if dialect is not None and wanted and dialect not in wanted:
            dropped.append(item)
            continue
        kept.append(item)
        # Tag each case with its dialect too, so `-m "not postgres_only"` runs without a server.
        fixtures = getattr(item, "fixturenames", ())
        if dialect == "postgresql" or any(f.endswith("_postgres_url") for f in fixtures):
            item.add_marker(pytest.mark.postgres_only)
        elif dialect == "sqlite":
            item.add_marker(pytest.mark.sqlite_only)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=DIALECTS)
def backend(request: pytest.FixtureRequest) -> str:
    """The dialect under test; every storage test runs once per dialect."""
    name: str = request.param
    if name == "postgresql":
        _need_postgres(request.getfixturevalue("postgres_server"))
    return name


def _database(request: pytest.FixtureRequest, backend: str, *, migrated: bool) -> Iterator[str]:
    fixture = "sqlite_databases" if backend == "sqlite" else "postgres_databases"
    databases: Databases = request.getfixturevalue(fixture)
    url = databases.migrated() if migrated else databases.empty()
    try:
        yield url
    finally:
        databases.drop(url)


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """A brand-new, empty database of the dialect under test."""
    yield from _database(request, backend, migrated=False)


@pytest.fixture
def migrated_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """A brand-new database already upgraded to head."""
    yield from _database(request, backend, migrated=True)


@pytest.fixture
def copy_database(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Copy a database of either dialect (same schema, same rows); the copy is dropped after."""

    def copy(url: str) -> str:
        fixture = "sqlite_databases" if url.startswith("sqlite") else "postgres_databases"
        databases: Databases = request.getfixturevalue(fixture)
        twin = databases.copy(url)
        request.addfinalizer(lambda: databases.drop(twin))
        return twin

    return copy


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


@pytest.fixture
def samples_dir() -> Path:
    """The repository's own sample documents: a plain clone needs nothing beside it."""
    return SAMPLES_DIR


@pytest.fixture(scope="session")
def reference() -> Reference:
    """The reference schema's facts (``tests/data/reference_schema.json``)."""
    return load_facts()


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
