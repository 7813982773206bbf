"""Turning failures into one actionable line: every exception becomes one line
that names the problem and the next step (and, like every byte the command
line writes, it passes :class:`~karr_db.cli._output.Scrubber` on its way out).
"""

from __future__ import annotations

from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from karr_db.cli._output import mask_url
from karr_db.engine import DATABASE_URL_ENV
from karr_db.errors import (
    DatabaseURLError,
    KarrError,
    NewerSchemaError,
    StorageError,
    ValidationError,
)

__all__ = ["describe"]

_URL_HINT = f"check --database or {DATABASE_URL_ENV}"


def _driver_message(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's SQL echo and background link."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(original).strip()
    return " ".join(text.split("\n(Background")[0].split())


def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver's exception behind ``exc`` (a StorageError's cause, a DBAPIError's orig)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, DBAPIError):
            return seen.orig if isinstance(seen.orig, BaseException) else None
        seen = seen.__cause__
    return None


#: One-liners by SQLSTATE (or its two-character class): the code is the same
#: whatever language the server's ``lc_messages`` speaks, its message is not.
_BY_SQLSTATE: dict[str, str] = {
    "28": "the database rejected the credentials for {where}: check the user name and password",
    "3D000": "the database in {where} does not exist: create it (createdb) or fix the URL",
    "42P01": "{where} has no KARR schema (or not all of it): run `karr-db upgrade` first",
    "42703": "{where} has no KARR schema (or not all of it): run `karr-db upgrade` first",
    "42501": "the user of {where} lacks a privilege this command needs ({detail}); "
    "grant it (`karr-db grant`) or connect as another user",
    "53300": "the server of {where} has no connection slot left: retry later",
    "08": "cannot reach the database at {where}: is the server running and accepting "
    "connections? ({hint}; {detail})",
    "57P": "the server of {where} is shutting down or starting: retry in a moment ({detail})",
    "40": "another transaction got in the way on {where}: run the command again ({detail})",
    "55P03": "another transaction holds a lock on {where}: run the command again ({detail})",
}
#: SQLite result codes (``sqlite3.Error.sqlite_errorname``): SQLite's messages are
#: English only, but the codes say the same more reliably.
_BY_SQLITE_NAME: dict[str, str] = {
    "SQLITE_CANTOPEN": "cannot open the SQLite file of {where}: check that its directory "
    "exists and is writable",
    "SQLITE_BUSY": "the SQLite file of {where} is locked by another writer: retry in a moment",
    "SQLITE_LOCKED": "the SQLite file of {where} is locked by another writer: retry in a moment",
    "SQLITE_READONLY": "the SQLite file of {where} is read-only: check its permissions",
    "SQLITE_NOTADB": "{where} is not a SQLite database file: fix the URL",
}


def _classified(driver: BaseException | None, message: str, where: str) -> str | None:
    """The one-liner for a driver error, from its codes alone (never its wording)."""
    if driver is None:
        return None
    values = {"where": where, "detail": message, "hint": _URL_HINT}
    sqlstate = getattr(driver, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        for key in (sqlstate, sqlstate[:3], sqlstate[:2]):
            if key in _BY_SQLSTATE:
                return _BY_SQLSTATE[key].format(**values)
        return None
    name = str(getattr(driver, "sqlite_errorname", "") or "")
    for prefix, line in _BY_SQLITE_NAME.items():
        if name.startswith(prefix):
            return line.format(**values)
    if name == "SQLITE_ERROR" and message.startswith("no such table"):
        return _BY_SQLSTATE["42P01"].format(**values)  # SQLite's messages are never translated
    if type(driver).__module__.startswith("psycopg") and type(driver).__name__ in (
        "OperationalError",
        "InterfaceError",
    ):
        # No SQLSTATE: libpq failed before a session existed (refused, unresolved
        # host, authentication, unknown database) and kept only its text, whose
        # language is the client's or the server's. Say what is known, in one line.
        return (
            f"cannot connect to the database at {where}: is the server running and "
            "accepting connections, and are the host, port, user, password and database "
            f"in the URL right? ({_URL_HINT}; the driver said: {message})"
        )
    return None


def _database_problem(exc: BaseException, message: str, url: str) -> str:
    """Name the database problem behind ``exc``, and what to do."""
    where = mask_url(url)
    return _classified(_driver_error(exc), message, where) or (
        f"database error on {where}: {message}"
    )


def describe(exc: BaseException, url: str | None) -> str:
    """One line: what went wrong and the next step."""
    shown = mask_url(url) if url else "the database"
    if isinstance(exc, NewerSchemaError):
        return f"{shown}: {exc}"
    if isinstance(exc, ValidationError):
        return f"rejected: {exc}; fix the input and try again"
    if isinstance(exc, DatabaseURLError):
        return f"{exc} ({_URL_HINT})"
    if isinstance(exc, StorageError):  # the driver's words, on one line
        detail = " ".join(exc.detail.split())
        return _database_problem(exc, detail, url) if url else " ".join(str(exc).split())
    if isinstance(exc, KarrError):
        return str(exc)
    if isinstance(exc, ArgumentError):
        return (
            "invalid database URL: use sqlite:///path/to/karr.db or "
            f"postgresql://user:password@host/db ({_URL_HINT})"
        )
    if isinstance(exc, SQLAlchemyError):
        message = _driver_message(exc)
        return _database_problem(exc, message, url) if url else f"database error: {message}"
    if isinstance(exc, FileNotFoundError):
        return f"no such file or directory: {exc.filename}; check the path"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename}; check the file's permissions"
    if isinstance(exc, OSError):
        name = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{name}"
    first = " ".join(str(exc).split())
    return f"unexpected {type(exc).__name__}: {first}; rerun with --debug for the traceback"
