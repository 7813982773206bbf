"""Throwaway databases for the bench: migrated, copied from one template, filled, sized, dropped.

Everything that creates or drops a database lives here (:class:`Databases`), so
that the bench and the test suite's fixtures can share one implementation.
PostgreSQL databases are ``karr_bench_*`` on the server given; SQLite ones are
files in the work directory.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.backends import raw_backend
from bench.generator import documents
from karr_db import migrations
from karr_db.db import make_engine


class Databases:
    """Throwaway migrated databases of one dialect, copied from one template."""

    def __init__(self, dialect: str, workdir: Path, server: str | None) -> None:
        self.dialect = dialect
        self.workdir = workdir
        self.server = server
        self.prefix = f"karr_bench_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self._template: str | None = None
        self._count = 0

    def _name(self) -> str:
        self._count += 1
        return f"{self.prefix}_{self._count}"

    def _admin(self) -> psycopg.Connection[Any]:
        assert self.server is not None
        return psycopg.connect(self.server, autocommit=True)

    def url(self, name: str) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.workdir / name}.db"
        assert self.server is not None
        return make_url(self.server).set(database=name).render_as_string(hide_password=False)

    def raw_target(self, url: str) -> str:
        """What the raw driver connects with: a file path or a libpq URL."""
        parsed = make_url(url)
        if self.dialect == "sqlite":
            return str(parsed.database)
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)

    def empty(self) -> str:
        name = self._name()
        if self.dialect == "postgresql":
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url(name)

    def copy(self, source_url: str) -> str:
        """A new database with the contents of ``source_url`` (nobody may be connected)."""
        name = self._name()
        if self.dialect == "sqlite":
            checkpoint(source_url)
            shutil.copyfile(str(make_url(source_url).database), self.workdir / f"{name}.db")
        else:
            source = make_url(source_url).database
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        self.created.append(name)
        return self.url(name)

    def migrated(self) -> str:
        if self._template is None:
            self._template = self.empty()
            migrations.upgrade(self._template)
        return self.copy(self._template)

    def drop(self, url: str) -> None:
        name = make_url(url).database or ""
        if self.dialect == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(name + suffix).unlink(missing_ok=True)
            return
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        for name in self.created:
            with suppress(Exception):
                self.drop(self.url(name))

    def raw(self, url: str) -> Any:
        """The raw baseline connected to ``url``."""
        return raw_backend(self.dialect, self.raw_target(url))


def checkpoint(url: str) -> None:
    """Fold a SQLite WAL into the file (before copying it)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def populate(databases: Databases, url: str, runs: int, *, seed: int, batch: int = 1000) -> None:
    """Fill a database with ``runs`` generated documents through the raw bulk path."""
    raw = databases.raw(url)
    try:
        start = 0
        while start < runs:
            n = min(batch, runs - start)
            raw.import_batch(documents(n, seed=seed, start=start))
            start += n
    finally:
        raw.close()
    if databases.dialect == "postgresql":
        with psycopg.connect(databases.raw_target(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        with suppress(Exception):
            lite = sqlite3.connect(databases.raw_target(url))
            lite.execute("ANALYZE")
            lite.close()


def storage(databases: Databases, url: str) -> dict[str, int]:
    """Bytes per table, indexes and TOAST included (PostgreSQL: pg_total_relation_size;
    SQLite: the pages dbstat attributes to the table and its indexes), plus the total."""
    target = databases.raw_target(url)
    if databases.dialect == "postgresql":
        with psycopg.connect(target, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = 'public'"
            ).fetchall()
            total = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        sizes = {str(name): int(size) for name, size in rows}
        sizes["(database)"] = int(total[0]) if total else 0
        return sizes
    checkpoint(url)
    lite = sqlite3.connect(target)
    try:
        rows = lite.execute(
            "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
            "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1"
        ).fetchall()
    finally:
        lite.close()
    sizes = {str(name): int(size) for name, size in rows}
    sizes["(database)"] = Path(target).stat().st_size
    return sizes
