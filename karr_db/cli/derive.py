"""``karr-db rederive``: benchmarks, metrics, hardware and fingerprints again from raw_json."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from karr_db.cli._app import DatabaseOption, JsonOption, app, open_database
from karr_db.cli._output import facts, print_json, show, state, warn
from karr_db.derive import Progress as ProgressCallback
from karr_db.derive import rederive


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressCallback | None]:
    """A progress bar over the runs on a terminal; nothing otherwise."""
    if quiet or not state.stdout.isatty():
        yield None
        return
    bar = Progress(
        TextColumn("re-deriving"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        console=state.out,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command("rederive")
def rederive_command(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Derive every run's benchmarks, metrics, hardware and content fingerprint
    again from its stored document, adding only what is missing (one transaction).

    For runs the earlier system's code wrote after adoption (nested metrics and
    deduplication), and after the flattening rules change. Running it again adds
    nothing.

    Example: karr-db rederive
    """
    with open_database(database, write=True) as db, _progress(as_json) as progress:
        report = rederive(db.engine, progress=progress)
    if as_json:
        print_json(report)
        return
    show(
        facts(
            ("runs examined", report.runs),
            ("benchmarks added", report.benchmarks_added),
            ("metrics added", report.metrics_added),
            ("hardware added", report.hardware_added),
            ("fingerprints added", report.fingerprints_added),
            ("documents a save would refuse", report.refused),
        )
    )
    for example in report.refused_examples:
        warn(f"nothing derived for {example}")
