"""Locating the Alembic scripts and mapping revisions to schema versions.

Alembic is imported only by the functions that need its script machinery:
checking whether a database is ready (:func:`revision_chain`) reads the
revision ids from the scripts' source, so every command that merely reads a
database does not pay for importing Alembic.
"""

from __future__ import annotations

import ast
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

import karr_db
from karr_db.models import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def packaged_ini() -> Path:
    """The ``alembic.ini`` that ships with the scripts (``karr_db/_alembic`` in a wheel)."""
    return script_location() / "alembic.ini"


def packaged_alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration from the shipped ``alembic.ini`` (logging included),
    for running Alembic's own commands against an installed karr_db."""
    from alembic.config import Config

    config = Config(str(packaged_ini()))
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

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


@dataclass(frozen=True)
class RevisionChain:
    """The revisions oldest first, each with the reference version it records
    (``None`` for karr_db's own): what deciding readiness needs, no more."""

    order: tuple[str, ...]
    recorded: dict[str, int | None]

    @property
    def head(self) -> str:
        return self.order[-1]

    def reference_version_at(self, revision: str) -> int:
        upto = self.order[: self.order.index(revision) + 1]
        return max((v for r in upto if (v := self.recorded[r]) is not None), default=0)

    def reference_versions(self) -> tuple[int, ...]:
        return tuple(sorted(v for v in self.recorded.values() if v is not None))

    def after(self, revision: str | None) -> list[str]:
        """The revisions an upgrade from ``revision`` (``None``: empty) applies."""
        return list(self.order[self.order.index(revision) + 1 :] if revision else self.order)


def chain_of(script: ScriptDirectory) -> RevisionChain:
    """The chain as Alembic sees it (the authority the light reader must match)."""
    order = tuple(reversed([rev.revision for rev in script.walk_revisions()]))
    return RevisionChain(order, revision_versions(script))


@cache
def revision_chain() -> RevisionChain:
    """The chain read from the revision files' module-level assignments, without
    importing Alembic or the scripts; a branched history (never written here so
    far) falls back to Alembic's own reading."""
    declared: dict[str, tuple[str | None, int | None]] = {}
    for path in sorted((script_location() / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name):
                with suppress(ValueError):
                    values[target.id] = ast.literal_eval(value)
        revision, down = values.get("revision"), values.get("down_revision")
        version = values.get("karr_schema_version")
        if not isinstance(revision, str):
            continue
        if not (down is None or isinstance(down, str)) or not (
            version is None or isinstance(version, int)
        ):
            return chain_of(script_directory())
        declared[revision] = (down, version)
    children: dict[str | None, list[str]] = {}
    for revision, (down, _) in declared.items():
        children.setdefault(down, []).append(revision)
    order: list[str] = []
    current: str | None = None
    while children.get(current):
        if len(children[current]) > 1:
            return chain_of(script_directory())
        current = children[current][0]
        order.append(current)
    if len(order) != len(declared) or not order:
        return chain_of(script_directory())
    return RevisionChain(tuple(order), {r: declared[r][1] for r in order})
