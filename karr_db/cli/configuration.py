"""``karr-db config``: show, set and unset the configuration file's settings
(:mod:`karr_db.config`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from karr_db.cli._app import JsonOption, app, lasting_url
from karr_db.cli._output import print_json, say, show, state, table
from karr_db.config import SETTINGS, config_path, read_config, set_value, unset_value
from karr_db.engine import DATABASE_URL_ENV, default_sqlite_path, normalize_url

ACTIONS = ("show", "set", "unset", "path")


@app.command("config")
def config_command(
    action: Annotated[
        str,
        typer.Argument(help=f"One of {', '.join(ACTIONS)}.", show_default=True),
    ] = "show",
    name: Annotated[
        str | None, typer.Argument(help=f"A setting: {', '.join(SETTINGS)}.", show_default=False)
    ] = None,
    value: Annotated[
        str | None, typer.Argument(help="The value to set.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show or change the configuration file ($XDG_CONFIG_HOME/karr-db/config.toml).

    The database is --database, else $KARR_DATABASE_URL, else the file's
    database.url, else ~/.kitt/karr.db; show says which one applies and why.

    Example: karr-db config set database.url postgresql://karr@db.example/karr
    """
    if action not in ACTIONS:
        raise typer.BadParameter(
            f"unknown action {action!r}: use one of {', '.join(ACTIONS)}", param_hint="ACTION"
        )
    if action == "path":
        say(str(config_path()))
        return
    if action in ("set", "unset"):
        if name not in SETTINGS:
            known = ", ".join(SETTINGS)
            raise typer.BadParameter(
                f"unknown setting {name!r}: use one of {known}"
                if name
                else f"name the setting: {known}",
                param_hint="NAME",
            )
        if action == "set":
            if value is None:
                raise typer.BadParameter(f"give the value of {name}", param_hint="VALUE")
            if name == "database.url":
                normalize_url(value)  # an unreadable URL is refused before it is recorded
                value = lasting_url(value)
                state.scrub.add_url(value)
            say(f"{name} = {value} (in {set_value(name, value)})")
        else:
            removed = unset_value(name)
            say(f"{name} removed from {config_path()}" if removed else f"{name} was not set")
        return
    _show(as_json)


def _show(as_json: bool) -> None:
    """Each setting's value in the file, and the database that applies with its source."""
    path = config_path()
    settings = read_config(path)
    for setting in settings.values():
        state.scrub.add_url(setting)
    if state.database:
        effective, source = state.database, "--database"
    elif os.environ.get(DATABASE_URL_ENV):
        effective, source = os.environ[DATABASE_URL_ENV], f"${DATABASE_URL_ENV}"
    elif "database.url" in settings:
        effective, source = settings["database.url"], "configuration file"
    else:
        effective, source = f"sqlite:///{default_sqlite_path()}", "default"
    state.scrub.add_url(effective)
    if as_json:
        print_json(
            {
                "path": str(path),
                "exists": path.exists(),
                "settings": settings,
                "database": {"url": effective, "source": source},
            }
        )
        return
    say(f"configuration file: {path}" + ("" if path.exists() else " (does not exist)"))
    rows = table("setting", "in the file", "meaning")
    for key, meaning in SETTINGS.items():
        rows.add_row(key, settings.get(key, "-"), meaning)
    show(rows)
    say(f"database: {effective} (from {source})")
