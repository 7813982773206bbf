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


def revision_versions(script: ScriptDirectory | None = None) -> dict[str, int | None]:
    """Map each revision id to the reference schema version it records in
    ``schema_version``, or ``None`` for karr_db's own revisions beyond the
    reference, which record nothing there (``alembic_version`` tracks them)."""
    script = script or script_directory()
    versions: dict[str, int | None] = {}
    for rev in script.walk_revisions():
        if not hasattr(rev.module, "karr_schema_version"):
            raise RuntimeError(f"revision {rev.revision} does not declare karr_schema_version")
        version = rev.module.karr_schema_version
        if version is not None and not isinstance(version, int):
            raise RuntimeError(f"revision {rev.revision}: karr_schema_version must be int or None")
        versions[rev.revision] = version
    recorded = [v for v in versions.values() if v is not None]
    if len(recorded) != len(set(recorded)):
        raise RuntimeError("two revisions record the same schema version")
    return versions


def reference_versions(script: ScriptDirectory | None = None) -> tuple[int, ...]:
    """The reference schema versions the revisions implement (the adoptable ones)."""
    return tuple(sorted(v for v in revision_versions(script).values() if v is not None))


def reference_version_at(revision: str, script: ScriptDirectory | None = None) -> int:
    """The reference schema version a database at ``revision`` implements: the
    newest one recorded by ``revision`` or a revision before it."""
    script = script or script_directory()
    versions = revision_versions(script)
    return max(
        (
            v
            for rev in script.iterate_revisions(revision, "base")
            if (v := versions[rev.revision]) is not None
        ),
        default=0,
    )


def expected_schema_versions(revision: str, script: ScriptDirectory | None = None) -> list[int]:
    """The ``schema_version`` rows a database at ``revision`` holds, oldest first."""
    script = script or script_directory()
    versions = revision_versions(script)
    return sorted(
        v
        for rev in script.iterate_revisions(revision, "base")
        if (v := versions[rev.revision]) is not None
    )


def revision_for_version(version: int, script: ScriptDirectory | None = None) -> str:
    """The revision that records reference schema ``version``."""
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
