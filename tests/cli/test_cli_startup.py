"""``karr-db`` imports what a command uses and nothing else.

Timing is measured, not asserted (docs/performance.md, "CLI start-up"); these
tests pin what makes it fast: which modules a command loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from karr_db.cli import app
from karr_db.cli._app import COMMAND_MODULES, load_commands
from tests.support.cli import import_samples


def test_the_command_table_is_what_the_modules_register() -> None:
    load_commands()
    registered = {
        info.name: info.callback.__module__.removeprefix("karr_db.cli.")
        for info in app.registered_commands
        if info.callback is not None
    }
    for group in app.registered_groups:
        assert group.typer_instance is not None
        callback = group.typer_instance.registered_callback
        assert callback is not None
        assert callback.callback is not None
        registered[group.name] = callback.callback.__module__.removeprefix("karr_db.cli.")
    assert registered == COMMAND_MODULES


def _modules_after(*args: str) -> list[str]:
    """Run ``karr-db ARGS`` in a fresh interpreter; the modules it imported."""
    probe = textwrap.dedent(
        f"""
        import json, sys
        from karr_db.cli import app
        try:
            app({list(args)!r}, prog_name="karr-db")
        except SystemExit as exit:
            assert not exit.code, exit.code
        print(json.dumps(sorted(sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_list_imports_neither_alembic_nor_other_commands(
    migrated_url: str, samples_dir: Path
) -> None:
    import_samples(migrated_url, samples_dir)
    loaded = _modules_after("list", "--database", migrated_url)
    assert [m for m in loaded if m.split(".")[0] == "alembic"] == []
    # The other dialect's seam implementation stays unloaded, and for a SQLite file
    # so does SQLAlchemy's PostgreSQL dialect (a tenth of the start-up). The reverse
    # cannot hold: the events table's `sqlite_autoincrement` option loads SQLAlchemy's
    # SQLite dialect (its argument names) whatever the database.
    if migrated_url.startswith("sqlite"):
        assert "sqlalchemy.dialects.postgresql" not in loaded
        assert "karr_db.dialects.postgresql" not in loaded
    else:
        assert "karr_db.dialects.sqlite" not in loaded
    unrelated = {
        "karr_db.migrations.checking",
        "karr_db.migrations.guards",
        "karr_db.migrations.reports",
        "karr_db.migrations.timestamps",
        "karr_db.migrations.upgrading",
        "karr_db.cli.operations",
        "karr_db.cli.schema",
        "karr_db.cli.analysis",
        "karr_db.docs",
        "karr_db.derive",
        "karr_db.repositories.agents",
        "karr_db.repositories.campaigns",
        "karr_db.repositories.quick_tests",
        "karr_db.migrations.adopt",
        "karr_db.migrations.runner",
    }
    assert unrelated.isdisjoint(loaded), sorted(unrelated & set(loaded))


def test_help_still_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from karr_db.cli import app; app(['--help'], prog_name='karr-db')"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    listed = [
        line.split()[0]
        for line in out.stdout.split("Commands:")[1].split("Examples")[0].splitlines()
        if line.strip() and line.startswith("  ") and not line.startswith("    ")
    ]
    assert listed == list(COMMAND_MODULES)


def test_json_output_is_written_without_rich(migrated_url: str, samples_dir: Path) -> None:
    """Scripts read ``--json``: it is written directly, and Rich (which draws everything a
    person reads) is not even imported."""
    import_samples(migrated_url, samples_dir)
    loaded = _modules_after("list", "--json", "--database", migrated_url)
    assert [m for m in loaded if m.split(".")[0] == "rich"] == []
