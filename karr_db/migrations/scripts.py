"""Locating the Alembic scripts and mapping revisions to schema versions.

Alembic's :class:`~alembic.script.ScriptDirectory` is the one reader of the
revision chain. It is imported only by the functions that need it: a database at
:data:`karr_db.head.HEAD_REVISION` is ready without reading the chain, so every command that
merely reads a current database does not pay for importing Alembic and loading
every revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from karr_db.errors import RevisionContractError
from karr_db.models import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

    from karr_db.migrations.ops import RevisionContract

#: The tables KARR owns; other tables in a shared database are left alone.
KARR_TABLES: tuple[str, ...] = tuple(t.name for t in Base.metadata.sorted_tables)


def script_location() -> Path:
    """The migration scripts: ``karr_db/migrations/alembic``, in a checkout and in
    a wheel alike (they are package data, so no build step has to copy them)."""
    location = Path(__file__).resolve().parent / "alembic"
    if not (location / "env.py").is_file():
        raise RuntimeError(f"karr_db migration scripts not found in {location}")
    return location


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration that needs no ``alembic.ini``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def packaged_ini() -> Path:
    """The ``alembic.ini`` that ships with the scripts (``karr_db/migrations/alembic``)."""
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


def contract_of(rev: Script) -> RevisionContract:
    """The revision's declared contract, validated: a missing or ill-typed one is
    a :class:`RevisionContractError` naming the revision (and its file)."""
    from karr_db.migrations.ops import RevisionContract

    where = f"{rev.revision} ({Path(rev.path).name})"
    contract = getattr(rev.module, "contract", None)
    if contract is None:
        old = " (it uses the old module attributes: see CONTRIBUTING.md, adding a revision)"
        raise RevisionContractError(
            where,
            "declares no `contract = RevisionContract(...)` (karr_db.migrations.ops)"
            + (old if hasattr(rev.module, "karr_schema_version") else ""),
        )
    if not isinstance(contract, RevisionContract):
        raise RevisionContractError(
            where, f"`contract` must be a RevisionContract, not {type(contract).__name__}"
        )
    if id(contract) not in _VALIDATED:
        problems = contract.problems()
        if problems:
            raise RevisionContractError(where, "; ".join(problems))
        _VALIDATED[id(contract)] = contract
    return contract


#: Contracts already found sound, by identity (kept alive, so an id is never reused):
#: a module loads once, and building its tables once is enough.
_VALIDATED: dict[int, RevisionContract] = {}


def contracts(script: ScriptDirectory | None = None) -> dict[str, RevisionContract]:
    """Every revision's contract, oldest first (each validated as it loads)."""
    script = script or script_directory()
    return {rev.revision: contract_of(rev) for rev in reversed(list(script.walk_revisions()))}


def contracts_upto(
    revision: str | None, script: ScriptDirectory | None = None
) -> dict[str, RevisionContract]:
    """The contracts of the revisions a database at ``revision`` has applied, oldest first."""
    script = script or script_directory()
    if revision is None:
        return {}
    applied = list(script.iterate_revisions(revision, "base"))
    return {rev.revision: contract_of(rev) for rev in reversed(applied)}


def other_tables_at(revision: str | None, script: ScriptDirectory | None = None) -> set[str]:
    """The tables outside the models a database at ``revision`` has (such as
    revision 0006's ``karr_legacy_timezone``), as the contracts declare them."""
    return {name for c in contracts_upto(revision, script).values() for name in c.other_tables}


def revision_versions(script: ScriptDirectory | None = None) -> dict[str, int | None]:
    """Map each revision id to the reference schema version it records in
    ``schema_version``, or ``None`` for karr_db's own revisions beyond the
    reference, which record nothing there (``alembic_version`` tracks them)."""
    versions = {
        revision: contract.reference_schema_version
        for revision, contract in contracts(script).items()
    }
    recorded = [v for v in versions.values() if v is not None]
    if len(recorded) != len(set(recorded)):
        raise RevisionContractError(
            ", ".join(r for r, v in versions.items() if v is not None and recorded.count(v) > 1),
            "two revisions record the same reference schema version",
        )
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
    for contract in contracts_upto(target, script).values():
        contract.table_objects(metadata)
    return list(metadata.sorted_tables)


def head_revision(script: ScriptDirectory | None = None) -> str:
    head = (script or script_directory()).get_current_head()
    if head is None:
        raise RuntimeError("the migration scripts have no single head")
    return head


@dataclass(frozen=True)
class RevisionChain:
    """The revisions oldest first, each with the reference version it records
    (``None`` for karr_db's own): what classifying a database needs, no more."""

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
    """The chain as Alembic reads it from ``script``."""
    order = tuple(reversed([rev.revision for rev in script.walk_revisions()]))
    return RevisionChain(order, revision_versions(script))


@cache
def revision_chain() -> RevisionChain:
    """The package's chain, read by Alembic (once per process)."""
    return chain_of(script_directory())
