"""Throwaway databases of one dialect, for the test suite and the bench alike.

Migrating a database costs a second or more, so a migrated database is a copy
of one migrated template: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE``
on PostgreSQL. ``bench/`` imports this module, so both measure and test the
same kind of database.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from karr_db import migrations
from karr_db.engine import normalize_url

Dialect = Literal["sqlite", "postgresql"]
DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgresql")


def checkpoint(url: str) -> None:
    """Fold a SQLite WAL into the file, so that copying the file copies everything.

    Plain ``sqlite3``, not karr_db's engine: that one would switch a file of the
    earlier system to WAL, and a copy must leave its source as it was.
    """
    with closing(sqlite3.connect(str(make_url(url).database))) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Databases:
    """Creates, copies and drops databases of one dialect.

    SQLite databases are files in ``workdir``; PostgreSQL ones live on
    ``server`` (a URL whose maintenance database may create others). Every
    name starts with ``prefix`` and a random part, so runs sharing a server
    never collide.
    """

    def __init__(
        self, dialect: str, workdir: Path, server: str | None = None, *, prefix: str = "karr_test"
    ) -> None:
        if dialect == "postgresql" and server is None:
            raise ValueError("PostgreSQL databases need a server URL")
        self.dialect = dialect
        self.workdir = workdir
        self.server = server
        self.prefix = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self._template: str | None = None
        self._count = 0
        self._admin: sa.Engine | None = None

    def url(self, name: str) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.workdir / name}.db"
        assert self.server is not None
        return make_url(self.server).set(database=name).render_as_string(hide_password=False)

    def empty(self) -> str:
        """A new, empty database."""
        name = self._name()
        if self.dialect == "postgresql":
            with self._admin_connection() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def copy(self, source_url: str) -> str:
        """A new database with the contents of ``source_url`` (nobody may be connected to it)."""
        name = self._name()
        if self.dialect == "sqlite":
            checkpoint(source_url)
            shutil.copyfile(str(make_url(source_url).database), self.workdir / f"{name}.db")
        else:
            source = make_url(source_url).database
            with self._admin_connection() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return self.url(name)

    def migrated(self) -> str:
        """A new database at head, copied from the template (migrated once, on first use)."""
        if self._template is None:
            template = self.empty()
            migrations.upgrade(template)
            self._template = template
        return self.copy(self._template)

    def drop(self, url: str) -> None:
        name = make_url(url).database or ""
        if self.dialect == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(name + suffix).unlink(missing_ok=True)
            return
        with self._admin_connection() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        """Drop every database made here, the template too; a failure leaves the rest to go."""
        for name in self.created:
            with suppress(Exception):
                self.drop(self.url(name))
        self.created.clear()
        self._template = None
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None

    def _name(self) -> str:
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        self.created.append(name)
        return name

    @contextmanager
    def _admin_connection(self) -> Iterator[sa.Connection]:
        if self._admin is None:
            assert self.server is not None
            self._admin = sa.create_engine(
                normalize_url(self.server), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
            )
        with self._admin.connect() as connection:
            yield connection
