"""Locating the Alembic scripts and mapping revisions to schema versions."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

import karr_db

#: Tables of each schema version of the reference (and of the earlier,
#: hand-rolled migration system, which stopped at version 2).
VERSION_TABLES: dict[int, tuple[str, ...]] = {
    1: ("schema_version", "runs", "benchmarks", "metrics", "hardware"),
    2: (
        "schema_version",
        "runs",
        "benchmarks",
        "metrics",
        "hardware",
        "agents",
        "web_campaigns",
        "quick_tests",
        "events",
    ),
}
KARR_TABLES: tuple[str, ...] = VERSION_TABLES[max(VERSION_TABLES)]


def script_location() -> Path:
    """The migration scripts: inside the package when installed from a wheel,
    else the ``alembic/`` directory of the checkout."""
    package_dir = Path(karr_db.__file__).resolve().parent
    for candidate in (package_dir / "_alembic", package_dir.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError(f"karr_db migration scripts not found next to {package_dir}")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration that needs no ``alembic.ini``."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def revision_versions(script: ScriptDirectory | None = None) -> dict[str, int]:
    """Map each revision id to the schema version it records in ``schema_version``."""
    script = script or script_directory()
    versions: dict[str, int] = {}
    for rev in script.walk_revisions():
        version = getattr(rev.module, "karr_schema_version", None)
        if not isinstance(version, int):
            raise RuntimeError(f"revision {rev.revision} does not declare karr_schema_version")
        versions[rev.revision] = version
    return versions


def revision_for_version(version: int, script: ScriptDirectory | None = None) -> str:
    for rev, found in revision_versions(script).items():
        if found == version:
            return rev
    raise KeyError(version)


def head_revision(script: ScriptDirectory | None = None) -> str:
    head = (script or script_directory()).get_current_head()
    if head is None:
        raise RuntimeError("the migration scripts have no single head")
    return head
