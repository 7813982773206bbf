"""The ``karr-db`` application object and what every command shares.

Commands are thin: they resolve the database, call the Python API and print.
Failures of any kind end in :meth:`_Group.invoke`, which prints one scrubbed
line and exits 1 (tracebacks only with ``--debug``, scrubbed too).

Rich is imported only when something is drawn with it: the consoles are made
on first use, and plain lines and tables written off a terminal, where Rich
would write exactly the same bytes, skip it (:func:`plain_table`).
"""

from __future__ import annotations

import builtins
import importlib
import io
import json
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar, cast

import typer
import typer.main
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from typer.core import TyperArgument, TyperGroup, TyperOption

from karr_db.cli._errors import Scrubber, describe
from karr_db.engine import (
    DATABASE_URL_ENV,
    default_database_url,
    default_sqlite_path,
    earlier_sqlite_path,
)
from karr_db.errors import SchemaError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from karr_db.database import Database
    from karr_db.repositories.base import Page

__all__ = [
    "COMMAND_MODULES",
    "DatabaseOption",
    "JsonOption",
    "app",
    "load_commands",
    "open_database",
    "state",
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
  karr-db campaigns                      campaigns and their progress
  karr-db quick-tests                    dispatched quick tests
  karr-db events --follow                tail the event log
  karr-db docs --check                   is docs/database.md current?
  karr-db grant karr_app                 least-privilege grants (PostgreSQL)

The database is --database URL, else $KARR_DATABASE_URL, else ~/.kitt/karr.db.
"""


class _ScrubbedStream(io.TextIOBase):
    """A text stream that masks passwords before they reach the real one.

    Bound to the stream of the invocation (test runners swap ``sys.stdout``
    per call), never looked up again: a live display that redirects
    ``sys.stdout`` to its console must not be written back into itself.
    """

    def __init__(self, target: TextIO, scrub: Scrubber) -> None:
        self._target = target
        self._scrub = scrub

    def write(self, text: str) -> int:
        self._target.write(self._scrub(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()


@dataclass
class State:
    """What the callback decided for this invocation."""

    scrub: Scrubber = field(default_factory=Scrubber)
    database: str | None = None
    debug: bool = False
    current: str | None = None  # the URL the command opened, for error messages
    stdout: _ScrubbedStream = field(init=False)
    stderr: _ScrubbedStream = field(init=False)
    _out: Console | None = field(init=False, default=None, repr=False)
    _err: Console | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.reset()

    @property
    def out(self) -> Console:
        """Rich's console on stdout, made (and Rich imported) on first use."""
        if self._out is None:
            from rich.console import Console

            # Off a terminal nothing should wrap or wear colour: output goes to files and pipes.
            wide = None if self.stdout.isatty() else PLAIN_WIDTH
            self._out = Console(file=cast(TextIO, self.stdout), width=wide, highlight=False)
        return self._out

    @property
    def err(self) -> Console:
        """Rich's console on stderr, made on first use."""
        if self._err is None:
            from rich.console import Console

            wide = None if self.stderr.isatty() else PLAIN_WIDTH
            self._err = Console(file=cast(TextIO, self.stderr), width=wide)
        return self._err

    def reset(self, database: str | None = None, debug: bool = False) -> None:
        self.scrub = Scrubber()
        self.database = database
        self.debug = debug
        self.current = None
        self.stdout = _ScrubbedStream(sys.stdout, self.scrub)
        self.stderr = _ScrubbedStream(sys.stderr, self.scrub)
        self._out = self._err = None  # bound to these streams when first used
        self.scrub.add_url(database)
        self.scrub.add_url(default_database_url())

    def url(self, database: str | None = None) -> str:
        """The command's --database, else the global one, else the environment or default."""
        url = database or self.database or default_database_url()
        self.scrub.add_url(url)
        self.current = url
        return url


state = State()


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
    "import": "results",
    "export": "results",
    "list": "results",
    "show": "results",
    "stats": "results",
    "leaderboard": "results",
    "compare": "results",
    "metrics": "analysis",
    "history": "analysis",
    "rederive": "derive",
    "agents": "operations",
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

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _plain_metavars(params)
        return params

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


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


app = typer.Typer(
    cls=_Group,
    help="Migrate, inspect, import and query KARR databases.",
    epilog=EXAMPLES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from karr_db import __version__

        typer.echo(f"karr-db {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            "-d",
            help=f"Database URL (default: ${DATABASE_URL_ENV}, else ~/.kitt/karr.db).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (passwords still masked).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Migrate, inspect, import and query KARR databases."""
    state.reset(database, debug)


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        help=f"Database URL (default: ${DATABASE_URL_ENV}, else ~/.kitt/karr.db).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


@contextmanager
def open_database(database: str | None, *, write: bool = False) -> Iterator[Database]:
    """The database to read (or, with ``write``, to write), refused unless it is at
    this release's head: the library's readiness check, whose errors name the next
    step. Reading opens a SQLite file read-only, so a mistyped path is reported,
    not created.
    """
    from karr_db.database import Database

    refuse_switch_over(database)
    with Database(state.url(database), read_only=not write) as db:
        db.require_current()
        yield db


def refuse_switch_over(database: str | None) -> None:
    """Stop before using a new default file while the earlier system's is beside it.

    A user coming from the earlier system would otherwise get an empty
    ``karr.db`` next to their history in ``kitt.db`` and no hint. Only the
    fallback default counts: a --database or $KARR_DATABASE_URL is a choice.
    """
    if database or state.database or os.environ.get(DATABASE_URL_ENV):
        return
    default = default_sqlite_path()
    earlier = earlier_sqlite_path()
    if not default.exists() and earlier.is_file():
        raise SwitchOverError(
            f"{default} does not exist, but the earlier system's database {earlier} does: "
            f"adopt it with `karr-db upgrade --database sqlite:///{earlier}` (a backup copy "
            "is written beside it first), then use it with --database or $KARR_DATABASE_URL; "
            f"to start an empty database instead, run `karr-db upgrade --database "
            f"sqlite:///{default}`"
        )


class SwitchOverError(SchemaError):
    """The default database is missing and the earlier system's is present."""


# --- output -------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """DTOs, lists and dicts as plain JSON values; NaN and infinities as strings.

    Every float that JSON cannot hold is ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"``, wherever it sits (a metric, a campaign's config): DTOs are
    dumped to Python first, because Pydantic's JSON would write ``null`` for
    them in DTOs without ``ser_json_inf_nan="strings"``.
    """
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float):
        return value
    return to_jsonable_python(value)  # enums, dates, UUIDs, paths: as Pydantic writes them


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """Write JSON to stdout as is (never wrapped or coloured)."""
    text = json.dumps(jsonable(value), indent=indent, ensure_ascii=False, allow_nan=False)
    state.stdout.write(text + "\n")
    state.stdout.flush()


def stream_json_object(name: str, items: Iterable[Any], after: Callable[[], dict[str, Any]]) -> int:
    """Write ``{name: [...items], **after()}`` to stdout as :func:`print_json` would,
    streaming the items; ``after`` is called once they are written (a cursor is
    known only then). Returns the number of items."""
    count = 0
    state.stdout.write(f"{{\n  {json.dumps(name)}: ")
    for item in items:
        text = json.dumps(jsonable(item), indent=2, ensure_ascii=False, allow_nan=False)
        state.stdout.write(("[\n" if count == 0 else ",\n") + _indented(_indented(text)))
        count += 1
    state.stdout.write("[]" if count == 0 else "\n  ]")
    for key, value in after().items():
        text = json.dumps(jsonable(value), indent=2, ensure_ascii=False, allow_nan=False)
        state.stdout.write(f",\n  {json.dumps(key)}: " + _indented(text).lstrip())
    state.stdout.write("\n}\n")
    state.stdout.flush()
    return count


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


def fmt(value: Any) -> str:
    """A cell of a human-readable table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value).replace("inf", "Infinity").replace("nan", "NaN")
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def table(*columns: str, title: str | None = None) -> Table:
    """A table in the one plain style every command uses (it reads well in pipes too)."""
    from rich import box
    from rich.table import Table

    return Table(
        *columns, title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD
    )


def show(renderable: Any) -> None:
    state.out.print(renderable)


def say(text: str) -> None:
    """A line of human output (never parsed as Rich markup)."""
    if _plain_stdout() and _plain_text(text):
        _write(text + "\n")
        return
    state.out.print(text, markup=False, highlight=False, soft_wrap=True)


# --- output without Rich ------------------------------------------------------------
#
# Off a terminal Rich draws no colour and wraps nothing up to PLAIN_WIDTH, so for
# printable ASCII that holds no markup and no emoji code, its output is a function
# of the text alone; these write those bytes without importing Rich (a tenth of a
# command's start-up). Anything else goes through Rich as before.
# tests/cli/test_cli_plain_output.py compares the two on generated input.

#: The width of Rich's consoles off a terminal.
PLAIN_WIDTH = 200

#: Environment that makes Rich treat a pipe as a terminal (or a notebook).
_RICH_ENVIRONMENT = (
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "DATABRICKS_RUNTIME_VERSION",
)

#: Rich's emoji code pattern (``:name:``, ``:name-emoji:``).
_EMOJI_CODE = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")
_PRINTABLE_ASCII = re.compile(r"[ -~]*")


def _plain_stdout() -> bool:
    """Whether Rich would write plain text to stdout (no terminal, colour or notebook)."""
    return not (
        state.stdout.isatty()
        or sys.platform == "win32"
        or hasattr(builtins, "get_ipython")
        or any(name in os.environ for name in _RICH_ENVIRONMENT)
    )


def _plain_text(text: str) -> bool:
    """Whether Rich would print ``text`` as it is: printable ASCII, no markup, no
    emoji code (a time's ``:02:`` names none: Rich has no one- or two-digit code)."""
    return (
        _PRINTABLE_ASCII.fullmatch(text) is not None
        and "[" not in text
        and all(_names_no_emoji(found.group(2)) for found in _EMOJI_CODE.finditer(text))
    )


def _names_no_emoji(name: str) -> bool:
    return not name or (len(name) <= 2 and name.isdigit())


def _write(text: str) -> None:
    # One write per print, then a flush, as Rich's console does.
    state.stdout.write(text)
    state.stdout.flush()


def plain_table(cells: dict[str, list[str]], *, header: bool = True) -> bool:
    """Write ``cells`` (header: column) as :func:`table` draws them off a terminal,
    without Rich; ``False`` (nothing written) where that is not certain to be
    byte-identical: on a terminal, for text Rich might change, or for a table
    wider than Rich's console, which Rich would shrink."""
    if not _plain_stdout():
        return False
    columns = list(cells.items())
    if not all(_plain_text(text) for name, values in columns for text in (name, *values)):
        return False
    # Rich measures the header only when it is shown.
    widths = [max([len(name) if header else 0, *map(len, values)]) for name, values in columns]
    # One space of padding each side of a cell, one between cells, and an edge each side.
    total = sum(widths) + 3 * len(widths) + 1
    if total > PLAIN_WIDTH or not all(widths):  # Rich would shrink it, or pad a void
        return False
    blank = " " * total + "\n"
    lines = [blank]
    if header:
        lines.append(_plain_row([name for name, _ in columns], widths))
        lines.append(" " + "\u2500".join("\u2500" * (w + 2) for w in widths) + " \n")
    lines.extend(_plain_row(list(row), widths) for row in zip(*cells.values(), strict=True))
    lines.append(blank)
    _write("".join(lines))
    return True


def _plain_row(values: list[str], widths: list[int]) -> str:
    return (
        " "
        + " ".join(f" {value.ljust(width)} " for value, width in zip(values, widths, strict=True))
        + " \n"
    )


def warn(text: str) -> None:
    state.err.print(text, markup=False, highlight=False, soft_wrap=True)


Item = TypeVar("Item")


def paged(fetch: Callable[..., Page[Item]], limit: int | None, *, page_size: int) -> Iterator[Item]:
    """Items of a keyset-paged ``list`` up to ``limit`` (all when ``None``), asking
    for at most ``page_size`` rows a call, the most the repository serves."""
    cursor: str | None = None
    left = limit
    while left is None or left > 0:
        page = fetch(limit=page_size if left is None else min(left, page_size), cursor=cursor)
        yield from page.items
        if left is not None:
            left -= len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
