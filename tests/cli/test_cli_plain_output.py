"""Off a terminal, ``karr-db`` writes plain lines and the run table without Rich
(issue 15, item 4): the bytes must be exactly those Rich writes.

:func:`karr_db.cli._output.plain_table` and ``say`` take the Rich-free path only for
text they know Rich prints unchanged; these tests render the same input both
ways and compare, on generated cells, and end to end through a pipe.
"""

from __future__ import annotations

import contextlib
import io
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich._emoji_codes import EMOJI

from karr_db.cli import _output
from tests.support.cli import cli_process, import_samples

#: Text near what the run table holds, and what Rich would change: markup,
#: emoji codes, times (whose ``:02:`` is no code), non-ASCII, control characters.
_PIECES = st.sampled_from(
    [
        "llama",
        "2025-01-01 00:02:00",
        ":smile:",
        ":100:",
        ":thumbs_up-emoji:",
        "a:b:c",
        "::",
        "[bold]x[/bold]",
        "[",
        "\\[x]",
        "…/Llama-3.1-8B.gguf",
        "模型",
        "tab\there",
        " padded ",
        "-",
        "x" * 60,
    ]
)
_TEXT = st.one_of(
    st.text(alphabet=string.printable, max_size=30),
    st.lists(_PIECES, max_size=3).map("".join),
)


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    """stdout as a pipe would see it (no terminal), for one invocation's state."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        _output.state.reset()
        try:
            yield buffer
        finally:
            _output.state.reset()


def _by_rich(cells: dict[str, list[str]], *, header: bool) -> str:
    """The table as ``karr-db list`` draws it with Rich."""
    with _captured() as buffer:
        rows = _output.table(*cells)
        rows.show_header = header
        for column in rows.columns:
            column.no_wrap = True
        for values in zip(*cells.values(), strict=True):
            rows.add_row(*values)
        _output.show(rows)
    return buffer.getvalue()


def _plain(cells: dict[str, list[str]], *, header: bool) -> str | None:
    with _captured() as buffer:
        written = _output.plain_table(cells, header=header)
    return buffer.getvalue() if written else None


@pytest.fixture(autouse=True)
def _no_forced_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _output._RICH_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@st.composite
def _tables(draw: st.DrawFn) -> dict[str, list[str]]:
    headers = draw(st.lists(_TEXT, min_size=1, max_size=9, unique=True))
    rows = draw(st.integers(0, 4))
    return {h: [draw(_TEXT) for _ in range(rows)] for h in headers}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=_tables(), header=st.booleans())
@example(cells={"run id": [], "gpu": []}, header=True)
@example(cells={"model": ["x" * 192]}, header=True)  # 200 wide: still plain
@example(cells={"model": ["x" * 193]}, header=True)  # 201: Rich would shrink it
def test_plain_tables_are_what_rich_draws(cells: dict[str, list[str]], header: bool) -> None:
    plain = _plain(cells, header=header)
    if plain is not None:
        assert plain == _by_rich(cells, header=header)


_SAFE = st.text(
    alphabet=string.ascii_letters + string.digits + " ./-_()+,", min_size=1, max_size=20
)


@settings(max_examples=100, deadline=None)
@given(
    cells=st.lists(_SAFE, min_size=1, max_size=8, unique=True).flatmap(
        lambda headers: st.integers(1, 4).flatmap(
            lambda rows: st.fixed_dictionaries(
                {h: st.lists(_SAFE, min_size=rows, max_size=rows) for h in headers}
            )
        )
    ),
    header=st.booleans(),
)
def test_safe_text_takes_the_plain_path(cells: dict[str, list[str]], header: bool) -> None:
    # Narrow enough and plain: the Rich-free path is taken, and draws what Rich does.
    plain = _plain(cells, header=header)
    assert plain is not None
    assert plain == _by_rich(cells, header=header)


def test_the_run_table_takes_the_plain_path() -> None:
    cells = {
        "run id": ["a6fdb4d8", "83142f1a"],
        "started": ["2025-01-01 00:02:00", "2025-01-01 00:01:00"],
        "model": ["llama3:8b", "/models/Llama-3.1-8B.gguf"],
        "passed": ["yes", "no"],
        "benchmarks": ["3/4", "-/-"],
    }
    for header in (True, False):
        assert _plain(cells, header=header) == _by_rich(cells, header=header)


@settings(max_examples=200, deadline=None)
@given(text=_TEXT)
@example(text="3 of 3 run(s)")
def test_plain_lines_are_what_rich_prints(text: str) -> None:
    with _captured() as buffer:
        _output.say(text)
    with _captured() as rich_buffer:
        _output.state.out.print(text, markup=False, highlight=False, soft_wrap=True)
    assert buffer.getvalue() == rich_buffer.getvalue()


def test_no_short_numeric_emoji_code_exists() -> None:
    # _plain_text lets ``:02:`` (a time) through because Rich has no such code.
    assert not [name for name in EMOJI if name.isdigit() and len(name) <= 2]


def test_a_forced_terminal_goes_through_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert _plain({"run id": ["a6fdb4d8"]}, header=True) is None


def test_list_through_a_pipe_is_byte_identical_to_rich(
    migrated_url: str, samples_dir: Path
) -> None:
    import_samples(migrated_url, samples_dir)
    for args in (["list"], ["list", "--model", "no-such-model"], ["list", "-n", "2"]):
        plain = cli_process(*args, "--database", migrated_url)
        # TTY_COMPATIBLE=0 keeps Rich off a terminal and karr-db on Rich's path.
        rich = cli_process(*args, "--database", migrated_url, env={"TTY_COMPATIBLE": "0"})
        assert plain.returncode == rich.returncode == 0, plain.stderr + rich.stderr
        assert "run(s)" in plain.stdout
        assert plain.stdout == rich.stdout
