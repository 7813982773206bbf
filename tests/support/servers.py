"""Servers a test starts for itself: PgBouncer, and throwaway PostgreSQL clusters.

Each is started on a free loopback port and removed when the test is done; the
server ``KARR_TEST_POSTGRES_URL`` names is never stopped or reconfigured. The
clusters need Debian's ``postgresql-common`` (``pg_createcluster``) and root;
PgBouncer needs Debian's ``pgbouncer`` package. Where a part is missing the
test is skipped with the reason, unless ``KARR_REQUIRE_DEPLOY=1`` (``.ci/run``)
makes that a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

#: Set to 1 to fail, not skip, a test whose pooler or clusters cannot be made here.
REQUIRE_ENV = "KARR_REQUIRE_DEPLOY"
#: The server account PgBouncer runs as when the tests run as root (it refuses root).
SERVER_ACCOUNT = "postgres"


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def missing(reason: str | None) -> None:
    """Skip (or with ``KARR_REQUIRE_DEPLOY=1`` fail) when ``reason`` says a part is missing."""
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)")
    pytest.skip(reason)


def cluster_tool_missing() -> str | None:
    """Why this machine cannot make a throwaway cluster, or None if it can."""
    if not shutil.which("pg_createcluster") or not shutil.which("pg_ctlcluster"):
        return "needs pg_createcluster/pg_ctlcluster (Debian's postgresql-common)"
    if os.geteuid() != 0:
        return "pg_createcluster needs root to create a throwaway cluster"
    if not sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        return "no PostgreSQL server binaries under /usr/lib/postgresql"
    return None


def pgbouncer_missing() -> str | None:
    """Why PgBouncer cannot be started here, or None if it can."""
    if not shutil.which("pgbouncer"):
        return "needs pgbouncer (Debian's package: apt-get install pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            return f"PgBouncer refuses to run as root and there is no {SERVER_ACCOUNT} account"
    return None


def _run(*command: str, timeout: float = 300) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def _wait_until_ready(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], check=False, timeout=30
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not accept connections")


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Wait until ``process`` accepts TCP connections on ``port`` (no client tools needed)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log.read_text(errors='replace')}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {port}")


def server_version() -> str:
    """The newest PostgreSQL major version installed (the clusters' version)."""
    return sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))[-1].parents[1].name


class Cluster:
    """A throwaway cluster made by ``pg_createcluster``: its port, data directory, URLs."""

    def __init__(self, name: str, port: int) -> None:
        self.version = server_version()
        self.name = name
        self.port = port

    @property
    def data_directory(self) -> Path:
        return Path("/var/lib/postgresql") / self.version / self.name

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> None:
        _run(
            "pg_createcluster", self.version, self.name, "-p", str(self.port), "--", "--auth=trust"
        )

    def start(self) -> None:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "start")
        _wait_until_ready(self.port)

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", "--stop", self.version, self.name],
            capture_output=True,
            timeout=300,
            check=False,
        )


def create_database(server_url: str, name: str) -> None:
    """``CREATE DATABASE name`` on the server ``server_url`` connects to."""
    admin = sa.create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()


@contextmanager
def primary_and_standby() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and a hot standby streaming from it (``pg_basebackup -R``), both
    throwaway clusters on free ports, dropped afterwards."""
    missing(cluster_tool_missing())
    tag = uuid.uuid4().hex[:8]
    primary = Cluster(f"karr_primary_{tag}", free_port())
    standby = Cluster(f"karr_standby_{tag}", free_port())
    try:
        primary.create()
        primary.start()
        standby.create()  # its configuration (port, paths); the data comes from the primary
        shutil.rmtree(standby.data_directory)
        _run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(standby.data_directory),
            "-R",
            "-X",
            "stream",
        )
        owner = pwd.getpwnam(SERVER_ACCOUNT)
        for path in [standby.data_directory, *standby.data_directory.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
        standby.data_directory.chmod(0o700)
        standby.start()
        yield primary, standby
    finally:
        standby.drop()
        primary.drop()


@contextmanager
def pgbouncer(server_url: str, *, pool_size: int = 2) -> Iterator[int]:
    """PgBouncer in transaction mode, with its defaults otherwise, in front of the
    server ``server_url`` names (any database on it); yields its port.

    Only ``pool_mode``, ``default_pool_size`` and what a throwaway instance needs
    (address, port, no Unix socket, trust with the user in ``auth_file``) are set.
    """
    missing(pgbouncer_missing())
    server = make_url(server_url)
    port = free_port()
    # Clients are trusted; PgBouncer logs in to the server with the server URL's password.
    password = f" password={server.password}" if server.password else ""
    directory = Path(tempfile.mkdtemp(prefix="karr_pgbouncer_"))
    try:
        (directory / "users.txt").write_text(f'"{server.username or "postgres"}" ""\n')
        config = directory / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}{password}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
        )
        config.chmod(0o600)  # it may hold the server's password
        command = ["pgbouncer", str(config)]
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SERVER_ACCOUNT)
            for path in (directory, config, directory / "users.txt"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            command[1:1] = ["-u", SERVER_ACCOUNT]
        with (directory / "pgbouncer.log").open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_listening(process, port, directory / "pgbouncer.log")
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the pooler's on the loopback."""
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
