"""The ``karr-db`` application object and what every command shares.

Commands are thin: they resolve the database, call the Python API and print.
Failures of any kind end in :meth:`_Group.invoke`, which prints one scrubbed
line and exits 1 (tracebacks only with ``--debug``, scrubbed too).

What commands write with (streams, tables, JSON, paging) is in
:mod:`karr_db.cli._output`; the run filters they share in :mod:`karr_db.cli._options`.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from sqlalchemy.engine import make_url
from typer.core import TyperArgument, TyperGroup, TyperOption

from karr_db.cli._errors import describe
from karr_db.cli._output import say, state
from karr_db.config import config_path, configured, set_value
from karr_db.engine import (
    DATABASE_URL_ENV,
    REPLICA_URL_ENV,
    default_replica_url,
    default_sqlite_path,
    earlier_sqlite_path,
    sqlite_path,
)
from karr_db.errors import SchemaError

if TYPE_CHECKING:
    from karr_db.database import Database

__all__ = [
    "COMMAND_MODULES",
    "DatabaseOption",
    "JsonOption",
    "ReplicaOption",
    "app",
    "load_commands",
    "open_database",
    "state",
    "subcommands",
]

#: Examples shown by ``karr-db --help`` (each command's own help has its example too).
EXAMPLES = """\
Examples (each command's --help has its own):

\b
  karr-db upgrade                        create or migrate the database
  karr-db upgrade --sql > schema.sql     the DDL, for a DBA
  karr-db status --json                  revision, pending work, row counts
  karr-db check                          drift between models and database
  karr-db repair-timestamps              rewrite times stored in other forms
  karr-db import ~/kitt-results          every result file below a directory
  karr-db export RUN_ID -o run.json      one run back to its document
  karr-db export --engine vllm -o out/   many runs, streamed
  karr-db list --model llama -n 20       newest runs first
  karr-db show RUN_ID                    benchmarks and metrics of a run
  karr-db stats                          totals by engine and model
  karr-db leaderboard --metric avg_tps --by model,engine
  karr-db compare RUN_A RUN_B            metrics side by side (ids or unique prefixes)
  karr-db metrics                        stored metric names, values per test
  karr-db history --metric avg_tps       a metric over time, drawn in the terminal
  karr-db export --format parquet -o v.parquet   one row per metric value
  karr-db rederive                       derived rows and fingerprints again
  karr-db agents                         registered agents
  karr-db agent gpu-box-1                one agent: hardware, settings, engines
  karr-db settings                       web settings (settings agent NAME: an agent's)
  karr-db engine-profiles                engine profiles (create, show, update, delete)
  karr-db engines                        which engines each agent has
  karr-db logs TEST_OR_CAMPAIGN_ID       a quick test's or campaign's output
  karr-db campaigns                      campaigns and their progress
  karr-db quick-tests                    dispatched quick tests
  karr-db events --follow                tail the event log
  karr-db docs --check                   is docs/database.md current?
  karr-db grant karr_app                 least-privilege grants (PostgreSQL)
  karr-db config set database.url URL    the database to use when none is named

The database is --database URL, else $KARR_DATABASE_URL, else the configuration
file's database.url (karr-db config), else ~/.kitt/karr.db.
"""


#: Metavars of options whose name says less than a word would.
_METAVARS = {"database": "URL", "output": "PATH", "since": "WHEN", "until": "WHEN"}


def _plain_metavars(params: list[Any]) -> None:
    """Words instead of Python types in ``--help`` (``PATH...``, not ``<list[Path]>``).

    Typer shows an unset metavar as the annotation; a word chosen here is set
    on every parameter that has none, so new options get one too.
    """
    for param in params:
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            # An argument's help line would still append the annotation.
            param.display_type_rich = _no_type  # type: ignore[method-assign]
        elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
            param.metavar = _METAVARS.get(param.name or "") or _word(param)


def _word(param: Any) -> str:
    """A metavar for the option's value type (Typer >= 0.20 keeps it in
    ``type_descriptor``, older ones in click's ``type``)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    kind = str(getattr(getattr(param, "type", None), "name", "")).lower()
    if annotation is int or kind.startswith("integer"):
        return "N"
    if annotation is float or kind.startswith("float"):
        return "NUMBER"
    if annotation is Path or kind == "path":
        return "PATH"
    return str(param.name or "value").upper()


def _no_type(ctx: Any) -> None:
    return None


#: The module of ``karr_db.cli`` defining each command, in the order ``--help``
#: lists them. A command's module, and what it imports, is loaded only when that
#: command runs: ``karr-db list`` imports neither Alembic nor the agents' code.
#: A test keeps this table equal to what the modules register.
COMMAND_MODULES: dict[str, str] = {
    "import": "transfer",
    "export": "transfer",
    "list": "results",
    "show": "results",
    "stats": "results",
    "leaderboard": "results",
    "compare": "results",
    "metrics": "analysis",
    "history": "analysis",
    "rederive": "derive",
    "agents": "operations",
    "agent": "fleet",
    "settings": "fleet",
    "engine-profiles": "fleet",
    "engines": "fleet",
    "logs": "fleet",
    "campaigns": "operations",
    "quick-tests": "operations",
    "events": "operations",
    "upgrade": "schema",
    "migrate": "schema",
    "repair-timestamps": "schema",
    "status": "schema",
    "check": "schema",
    "docs": "schema",
    "backup": "schema",
    "alembic": "schema",
    "grant": "security",
    "config": "configuration",
}


def load_commands(names: Iterable[str] | None = None) -> None:
    """Import the modules defining ``names`` (every command when ``None``)."""
    wanted = COMMAND_MODULES.values() if names is None else map(COMMAND_MODULES.get, names)
    for module in dict.fromkeys(m for m in wanted if m is not None):
        importlib.import_module(f"karr_db.cli.{module}")


class _Group(TyperGroup):
    """Runs a command and turns any failure into one scrubbed line and exit code 1.

    Commands are loaded on demand (:data:`COMMAND_MODULES`); an unknown name
    loads them all, so that typo suggestions weigh every command.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMAND_MODULES, *(name for name in self.commands if name not in COMMAND_MODULES)]

    def _load(self, cmd_name: str) -> None:
        load_commands([cmd_name] if cmd_name in COMMAND_MODULES else None)
        for info in app.registered_commands:
            if info.name is not None and info.name not in self.commands:
                self.commands[info.name] = typer.main.get_command_from_info(
                    info,
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode,
                )
        for group in app.registered_groups:
            if group.name is not None and group.name not in self.commands:
                self.commands[group.name] = typer.main.get_group_from_info(
                    group,
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    suggest_commands=True,
                    rich_markup_mode=app.rich_markup_mode,
                )

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            self._load(cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_metavars(command.params)
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own exits and usage errors (exit 2) keep their codes
        except Exception as exc:
            if state.debug:
                state.stderr.write("".join(traceback.format_exception(exc)))
            message = describe(exc, state.current)
            state.err.print(
                f"[red]error:[/red] {_escape(message)}", soft_wrap=True, highlight=False
            )
            raise typer.Exit(1) from None


class SubGroup(TyperGroup):
    """A command with subcommands (``karr-db settings set ...``): words for metavars
    as at the top; failures end in the top group's :meth:`_Group.invoke`."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_metavars(command.params)
        return command


def subcommands(name: str) -> typer.Typer:
    """A group of subcommands named ``name`` on ``karr-db`` (listed in
    :data:`COMMAND_MODULES` like any command); its help is its callback's docstring."""
    group = typer.Typer(
        cls=SubGroup,
        no_args_is_help=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
    )
    app.add_typer(group, name=name)
    return group


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


app = typer.Typer(
    cls=_Group,
    help="Migrate, inspect, import and query KARR databases.",
    epilog=EXAMPLES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
)


#: The --database option's help: where the database comes from when it is not given.
DATABASE_HELP = (
    f"Database URL (default: ${DATABASE_URL_ENV}, else the configuration file's "
    "database.url, else ~/.kitt/karr.db)."
)


def _version(value: bool) -> None:
    if value:
        from karr_db import __version__

        typer.echo(f"karr-db {__version__}")
        raise typer.Exit()


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        help=DATABASE_HELP,
        metavar="URL",
        show_default=False,
    ),
]


@app.callback()
def main(
    database: DatabaseOption = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (passwords still masked).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Migrate, inspect, import and query KARR databases."""
    state.reset(database, debug)


ReplicaOption = Annotated[
    str | None,
    typer.Option(
        "--replica",
        help=f"A hot standby of the PostgreSQL database to read from (default: "
        f"${REPLICA_URL_ENV}); it shows the primary up to its replication lag.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


@contextmanager
def open_database(
    database: str | None, *, write: bool = False, replica: str | None = None
) -> Iterator[Database]:
    """The database to read (or, with ``write``, to write), refused unless it is at
    this release's head: the library's readiness check, whose errors name the next
    step. Reading opens a SQLite file read-only, so a mistyped path is reported,
    not created, and reads from ``replica`` (else ``$KARR_REPLICA_URL``) if any.
    """
    from karr_db.database import Database

    refuse_switch_over(database)
    url = state.url(database)
    # An explicit --replica beside a SQLite file stays an error (Database says so).
    replica_url = None if write else replica or default_replica_url(url)
    state.scrub.add_url(replica_url)
    with Database(url, replica_url=replica_url, read_only=not write) as db:
        db.require_current()
        yield db


def refuse_switch_over(database: str | None) -> None:
    """Stop before using a new default file while the earlier system's is beside it.

    A user coming from the earlier system would otherwise get an empty
    ``karr.db`` next to their history in ``kitt.db`` and no hint. Only the
    fallback default counts: a --database, $KARR_DATABASE_URL or the
    configuration file's database.url is a choice.
    """
    if database or state.database or os.environ.get(DATABASE_URL_ENV):
        return
    if configured("database.url"):
        return
    default = default_sqlite_path()
    earlier = earlier_sqlite_path()
    if default.exists() or not earlier.is_file():
        return
    if _adopted(earlier):
        raise SwitchOverError(
            f"{default} does not exist; the earlier system's database {earlier} is adopted "
            f"already: make it the default with `karr-db config set database.url "
            f"sqlite:///{earlier}` (or name it with --database or ${DATABASE_URL_ENV})"
        )
    raise SwitchOverError(
        f"{default} does not exist, but the earlier system's database {earlier} does: "
        f"adopt it with `karr-db upgrade --database sqlite:///{earlier} --remember` (a backup "
        "copy is written beside it first; --remember makes it the default in the "
        f"configuration file {config_path()}); to start an empty database instead, run "
        f"`karr-db upgrade --database sqlite:///{default}`"
    )


def _adopted(path: Path) -> bool:
    """Whether a SQLite file carries karr_db's revision (read-only; never created)."""
    import sqlite3

    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as conn:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return found is not None


def lasting_url(url: str) -> str:
    """``url`` as the configuration file should keep it: a SQLite file by its
    absolute path, since the file is read from any directory."""
    path = sqlite_path(url)
    if path is None or path.is_absolute():
        return url
    return make_url(url).set(database=str(path.absolute())).render_as_string(hide_password=False)


def remember(url: str, *, ask: bool) -> None:
    """Record ``url`` as the configuration file's database.url: at once, or when
    ``ask`` after a yes on a terminal; elsewhere say how to."""
    url = lasting_url(url)
    if configured("database.url") == url:
        return
    path = config_path()
    if ask:
        interactive = sys.stdin.isatty() and state.stdout.isatty()
        question = f"use this database by default (recorded in {path})?"
        if not interactive or not typer.confirm(question, default=True):
            say(f"to use it by default: karr-db config set database.url {url}")
            return
    set_value("database.url", url)
    say(f"recorded as the default database in {path}")


class SwitchOverError(SchemaError):
    """The default database is missing and the earlier system's is present."""
