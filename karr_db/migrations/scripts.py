"""Locating the Alembic scripts and mapping revisions to schema versions."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

import karr_db
from karr_db.models import Base

#: The tables KARR owns; other tables in a shared database are left alone.
KARR_TABLES: tuple[str, ...] = tuple(t.name for t in Base.metadata.sorted_tables)


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


def reference_tables(version: int, script: ScriptDirectory | None = None) -> list[sa.Table]:
    """The tables of schema ``version`` exactly as revisions 1..version create them."""
    script = script or script_directory()
    metadata = sa.MetaData()
    target = revision_for_version(version, script)
    for rev in reversed(list(script.iterate_revisions(target, "base"))):
        rev.module.tables(metadata)
    return list(metadata.sorted_tables)


def head_revision(script: ScriptDirectory | None = None) -> str:
    head = (script or script_directory()).get_current_head()
    if head is None:
        raise RuntimeError("the migration scripts have no single head")
    return head
