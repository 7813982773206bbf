"""Consistent copies of SQLite databases, before adoption or on demand.

A plain file copy of a live SQLite database can tear (a writer mid-commit, a
WAL not yet folded in); SQLite's online backup API (``sqlite3.Connection.backup``
in the standard library) copies a consistent snapshot while others keep
working. PostgreSQL databases are backed up with ``pg_dump``, not here.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL

from karr_db.dialects import for_dialect
from karr_db.engine import normalize_url, sqlite_path
from karr_db.errors import BackupError, MissingDatabaseError

__all__ = ["PG_DUMP_HINT", "backup_database", "backup_sqlite"]

#: What to do instead for a PostgreSQL database.
PG_DUMP_HINT = (
    "back up PostgreSQL with pg_dump, e.g. `pg_dump --format=custom --file karr.dump "
    "'postgresql://USER@HOST/DBNAME'` (restore with pg_restore)"
)


def backup_sqlite(path: Path, *, now: datetime | None = None) -> Path:
    """Write a consistent copy of the SQLite file ``path`` beside it and return
    the copy's path: ``<stem>.backup-<UTC time><suffix>``, never overwriting.

    The copy is written into a new private temporary file and then linked to
    its name, which fails if anything (a file, a link planted at the
    predictable name) is already there: nothing is ever written through a
    link, and a half-written copy never carries the name.
    """
    if not path.is_file():
        raise MissingDatabaseError(str(path))
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.backup-", dir=path.parent)
    os.close(handle)
    partial = Path(name)
    partial.chmod(path.stat().st_mode & 0o777)  # the copy is as private as the original
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        return _link_unused(partial, path, stamp)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"backing up {path} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _link_unused(partial: Path, path: Path, stamp: str) -> Path:
    """``partial`` under the first free backup name (a hard link never replaces)."""
    for n in range(1, 1000):
        suffix = "" if n == 1 else f"-{n}"
        target = path.with_name(f"{path.stem}.backup-{stamp}{suffix}{path.suffix}")
        try:
            os.link(partial, target)
        except FileExistsError:
            continue
        return target
    raise BackupError(f"no free backup name beside {path}")


def backup_database(url: str | URL) -> Path:
    """The backup copy of the SQLite database ``url`` names (see :func:`backup_sqlite`)."""
    parsed = normalize_url(url)
    if not for_dialect(parsed.get_backend_name()).backup_by_copy:
        raise BackupError(f"karr-db backup copies SQLite files only: {PG_DUMP_HINT}")
    path = sqlite_path(parsed)
    if path is None:
        raise BackupError(f"{parsed.database or 'an in-memory database'} is not a SQLite file")
    return backup_sqlite(path)
