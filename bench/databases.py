"""Throwaway databases for the bench: migrated, copied from one template, filled, sized, dropped.

Creating, copying and dropping databases is the test suite's own code
(:mod:`tests.support.databases`), shared with the bench.
PostgreSQL databases are ``karr_bench_*`` on the server given; SQLite ones are
files in the work directory.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.backends import raw_backend
from bench.generator import documents
from tests.support.databases import Databases as ThrowawayDatabases
from tests.support.databases import checkpoint


class Databases(ThrowawayDatabases):
    """The suite's throwaway databases (:mod:`tests.support.databases`), named
    ``karr_bench_*``, and the raw driver's view of them."""

    def __init__(self, dialect: str, workdir: Path, server: str | None) -> None:
        super().__init__(dialect, workdir, server, prefix="karr_bench")

    def raw_target(self, url: str) -> str:
        """What the raw driver connects with: a file path or a libpq URL."""
        parsed = make_url(url)
        if self.dialect == "sqlite":
            return str(parsed.database)
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)

    def raw(self, url: str) -> Any:
        """The raw baseline connected to ``url``."""
        return raw_backend(self.dialect, self.raw_target(url))


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
