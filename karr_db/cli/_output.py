"""What every command writes with: the invocation's streams (passwords masked),
tables, JSON and plain lines, and paging through a repository's ``list``.

Drivers put the URL, or a DSN, into their messages; a user pastes output into
tickets. So every byte the command line writes goes through a :class:`Scrubber`.

Everything a person reads, errors included, is drawn by Rich, imported when a
command first writes so; ``--json`` output is written directly, without Rich.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast
from urllib.parse import quote, quote_plus, unquote

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from karr_db.engine import default_database_url
from karr_db.limits import PAGE_LIMIT

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from karr_db.repositories import Page


MASK = "***"
#: The width of Rich's consoles off a terminal: output to files and pipes is not wrapped.
PLAIN_WIDTH = 200

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
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return _URL_PASSWORD.sub(rf"\g<head>{MASK}@", url)


@dataclass(eq=False)
class _ScrubbedStream(io.TextIOBase):
    """A text stream that masks passwords before they reach the real one.

    Bound to the stream of the invocation (test runners swap ``sys.stdout``
    per call), never looked up again: a live display that redirects
    ``sys.stdout`` to its console must not be written back into itself.
    """

    _target: TextIO
    _scrub: Scrubber

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


def stream_json_pages(pages: Iterable[Page[Any]], **after: Any) -> None:
    """Write ``{"items": [...], **after, "next_cursor": ...}`` to stdout as
    :func:`print_json` would, streaming the items of ``pages``; ``next_cursor``
    is the last page's (known only once the items are written)."""
    count = 0
    next_cursor = None
    state.stdout.write('{\n  "items": ')
    for page in pages:
        for item in page.items:
            text = json.dumps(jsonable(item), indent=2, ensure_ascii=False, allow_nan=False)
            state.stdout.write(("[\n" if count == 0 else ",\n") + _indented(_indented(text)))
            count += 1
        next_cursor = page.next_cursor
    state.stdout.write("[]" if count == 0 else "\n  ]")
    for key, value in {**after, "next_cursor": next_cursor}.items():
        text = json.dumps(jsonable(value), indent=2, ensure_ascii=False, allow_nan=False)
        state.stdout.write(f",\n  {json.dumps(key)}: " + _indented(text).lstrip())
    state.stdout.write("\n}\n")
    state.stdout.flush()


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


#: Significant digits a table shows of a float (whole numbers keep all their digits).
SIGNIFICANT = 4


def number(value: float, *, sign: bool = False) -> str:
    """``value`` as a person reads it in a table: never in scientific notation,
    thousands grouped, about :data:`SIGNIFICANT` significant digits, no trailing
    zeros (``11,230``, ``45.57``, ``0.0001234``); ``sign`` writes ``+`` too.

    Every number a table shows goes through here, so a column never mixes
    ``1.824e+04`` with ``5,566``.
    """
    if not math.isfinite(value):
        text = "NaN" if math.isnan(value) else "Infinity"
        return text if math.isnan(value) or value > 0 else "-" + text
    plus = "+" if sign else ""
    if value == 0:
        return f"{plus}0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, SIGNIFICANT - 1 - magnitude)
    text = f"{value:{plus},.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "+0") and not sign else text


def fmt(value: Any) -> str:
    """A cell of a human-readable table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
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


def facts(*pairs: tuple[str, Any], title: str | None = None) -> Table:
    """One thing's summary, a label and its value (by :func:`fmt`) a line: under a
    ``title`` with "field" and "value" headers, else bare (no header, no box)."""
    if title is None:
        rows = table("", "")
        rows.show_header = False
        rows.box = None
    else:
        rows = table("field", "value", title=title)
    for label, value in pairs:
        rows.add_row(label, fmt(value))
    return rows


def show(renderable: Any) -> None:
    state.out.print(renderable)


def say(text: str) -> None:
    """A line of human output (never parsed as Rich markup)."""
    state.out.print(text, markup=False, highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    state.err.print(text, markup=False, highlight=False, soft_wrap=True)


Item = TypeVar("Item")


def paged(
    fetch: Callable[..., Page[Item]],
    limit: int | None,
    *,
    cursor: str | None = None,
) -> Iterator[Page[Item]]:
    """The pages of a keyset-paged ``list`` from ``cursor`` on, up to ``limit`` items
    (all when ``None``), asking for at most the repository's largest page a call."""
    left = limit
    while left is None or left > 0:
        page = fetch(limit=PAGE_LIMIT if left is None else min(left, PAGE_LIMIT), cursor=cursor)
        yield page
        if left is not None:
            left -= len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def paged_items(fetch: Callable[..., Page[Item]], limit: int | None) -> list[Item]:
    """Up to ``limit`` items (all when ``None``) of a keyset-paged ``list``, as one list."""
    return [item for page in paged(fetch, limit) for item in page.items]
