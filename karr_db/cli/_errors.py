"""Turning failures into one actionable line, with every password scrubbed.

Drivers put the URL, or a DSN, into their messages; a user pastes error output
into tickets. So every byte the command line writes goes through a
:class:`Scrubber`, and every exception becomes one line that names the problem
and the next step.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from karr_db.db import DATABASE_URL_ENV
from karr_db.errors import KarrError, NewerSchemaError, StorageError, ValidationError

__all__ = ["MASK", "Scrubber", "describe", "mask_url"]

MASK = "***"

#: ``scheme://user:password@`` anywhere in a text.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)[^\s@]*@")
#: ``password=...`` in a libpq connection string or keyword list.
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s,;)]+)", re.I)
#: Shorter secrets are masked only where they appear as a URL's password.
_MIN_SECRET = 3


class Scrubber:
    """Masks known passwords, and anything shaped like one, in text about to be shown."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add_url(self, url: str | None) -> None:
        """Remember the password of ``url`` (in every spelling a message may use)."""
        if not url:
            return
        password: str | None
        try:
            parsed = make_url(url).password
            password = None if parsed is None else str(parsed)
        except (ArgumentError, ValueError):
            match = re.search(r"://[^\s:/@]*:([^\s@]*)@", url)
            password = unquote(match.group(1)) if match else None
        if password and len(password) >= _MIN_SECRET:
            self._secrets |= {password, quote_plus(password), quote(password, safe="")}

    def __call__(self, text: str) -> str:
        text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
        text = _KEYWORD_PASSWORD.sub(rf"\g<head>{MASK}", text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def mask_url(url: str) -> str:
    """``url`` as it may be shown: ``postgresql://user:***@host/db``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _URL_PASSWORD.sub(rf"\g<head>{MASK}@", url)


_URL_HINT = f"check --database or {DATABASE_URL_ENV}"


def _driver_message(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's SQL echo and background link."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(original).strip()
    return " ".join(text.split("\n(Background")[0].split())


def _database_problem(message: str, url: str) -> str:
    """Name the connection problem a driver message describes, and what to do."""
    where = mask_url(url)
    low = message.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return (
            f"the database rejected the credentials for {where}: check the user name and password"
        )
    if "does not exist" in low and "database" in low:
        return f"the database in {where} does not exist: create it (createdb) or fix the URL"
    if "role" in low and "does not exist" in low:
        return f"the user in {where} does not exist on the server: fix the URL or create the role"
    if any(
        s in low
        for s in (
            "connection refused",
            "could not translate host name",
            "name or service not known",
            "timeout expired",
            "no route to host",
            "could not connect",
            "connection failed",
            "server closed the connection",
        )
    ):
        return (
            f"cannot reach the database at {where}: is the server running and accepting "
            f"connections? ({_URL_HINT})"
        )
    if "unable to open database file" in low:
        return f"cannot open the SQLite file of {where}: check that its directory is writable"
    if "database is locked" in low:
        return f"the SQLite file of {where} is locked by another writer: retry in a moment"
    if "no such table" in low or ("relation" in low and "does not exist" in low):
        return f"{where} has no KARR schema: run `karr-db upgrade` first"
    return f"database error on {where}: {message}"


def describe(exc: BaseException, url: str | None) -> str:
    """One line: what went wrong and the next step."""
    shown = mask_url(url) if url else "the database"
    if isinstance(exc, NewerSchemaError):
        return f"{shown}: {exc}"
    if isinstance(exc, ValidationError):
        return f"rejected: {exc}; fix the input and try again"
    if isinstance(exc, StorageError):
        return _database_problem(exc.detail, url) if url else str(exc)
    if isinstance(exc, KarrError):
        return str(exc)
    if isinstance(exc, ArgumentError):
        return (
            "invalid database URL: use sqlite:///path/to/karr.db or "
            f"postgresql://user:password@host/db ({_URL_HINT})"
        )
    if isinstance(exc, SQLAlchemyError):
        message = _driver_message(exc)
        return _database_problem(message, url) if url else f"database error: {message}"
    if isinstance(exc, FileNotFoundError):
        return f"no such file or directory: {exc.filename}; check the path"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename}; check the file's permissions"
    if isinstance(exc, OSError):
        name = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{name}"
    if isinstance(exc, ValueError) and "unsupported database" in str(exc):
        return f"{exc} ({_URL_HINT})"
    first = " ".join(str(exc).split())
    return f"unexpected {type(exc).__name__}: {first}; rerun with --debug for the traceback"
