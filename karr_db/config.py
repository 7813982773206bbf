"""The configuration file: ``$XDG_CONFIG_HOME/karr-db/config.toml`` (default
``~/.config/karr-db/config.toml``; ``$KARR_CONFIG`` names another file).

It holds the settings a user would otherwise repeat on every command, today the
database::

    [database]
    url = "sqlite:////home/you/.kitt/kitt.db"

The database is chosen by, first to last: the ``--database`` flag (or a URL
given to ``Database()``), ``$KARR_DATABASE_URL``, this file's ``database.url``,
the default SQLite file ``$KARR_HOME/karr.db`` (:func:`karr_db.engine.default_database_url`).
``karr-db config`` shows and sets it. The file is read with :mod:`tomllib`
when a default is needed and never written except by :func:`set_value` and
:func:`unset_value` (mode 0600: a URL may hold a password).
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

from karr_db.errors import FieldError, ValidationError

__all__ = [
    "CONFIG_ENV",
    "SETTINGS",
    "config_path",
    "configured",
    "read_config",
    "set_value",
    "unset_value",
]

#: Environment variable naming the configuration file instead of the XDG location.
CONFIG_ENV = "KARR_CONFIG"
#: The settings the file may hold (``section.key``) and what each means.
SETTINGS: dict[str, str] = {
    "database.url": "database used when neither --database nor $KARR_DATABASE_URL names one",
}


def config_path() -> Path:
    """Where the configuration file is (whether or not it exists): ``$KARR_CONFIG``,
    else ``$XDG_CONFIG_HOME/karr-db/config.toml`` (XDG's default ``~/.config``)."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return Path(base).expanduser() / "karr-db" / "config.toml"


def read_config(path: Path | None = None) -> dict[str, str]:
    """The file's settings as ``{"section.key": value}``; empty when there is no file.

    A file that is not TOML, or holds a setting this release does not know or a
    value that is not text, is a :class:`ValidationError` naming the setting: a
    typo there must not silently select another database.
    """
    path = config_path() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _invalid(path, "<file>", f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _invalid(path, "<file>", "is not UTF-8 text") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(path, "<file>", f"is not valid TOML ({exc})") from None
    settings: dict[str, str] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise _invalid(path, section, "must be a [section] of settings")
        for key, value in table.items():
            name = f"{section}.{key}"
            if name not in SETTINGS:
                raise _invalid(path, name, f"unknown setting; known: {', '.join(SETTINGS)}")
            if not isinstance(value, str):
                raise _invalid(path, name, "must be a string")
            settings[name] = value
    return settings


def configured(name: str) -> str | None:
    """One setting of the file, or ``None`` when it (or the file) is absent."""
    return read_config().get(name) or None


def set_value(name: str, value: str, path: Path | None = None) -> Path:
    """Record ``name = value`` in the file (created, with its directory, if
    missing; other settings kept). Returns the file's path."""
    path = config_path() if path is None else path
    if name not in SETTINGS:
        raise _invalid(path, name, f"unknown setting; known: {', '.join(SETTINGS)}")
    settings = read_config(path)
    settings[name] = value
    _write(path, settings)
    return path


def unset_value(name: str, path: Path | None = None) -> bool:
    """Remove ``name`` from the file; whether it was there."""
    path = config_path() if path is None else path
    settings = read_config(path)
    if name not in settings:
        return False
    del settings[name]
    _write(path, settings)
    return True


def _write(path: Path, settings: Mapping[str, str]) -> None:
    """Write the settings as TOML tables of strings (a JSON string is a valid TOML
    basic string), atomically and readable by the owner only."""
    sections: dict[str, dict[str, str]] = {}
    for name, value in sorted(settings.items()):
        section, key = name.split(".", 1)
        sections.setdefault(section, {})[key] = value
    lines = ["# karr-db settings; `karr-db config` shows and changes them."]
    for section, table in sections.items():
        lines += ["", f"[{section}]"]
        lines += [
            f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in table.items()
        ]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A fresh name, created exclusively with mode 0600: a file or symlink planted
    # beside the configuration is never followed or truncated.
    descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _invalid(path: Path, field: str, message: str) -> ValidationError:
    return ValidationError(f"configuration file {path}", [FieldError(field, message)])
