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


#: Not read from the source: the light reader hands over to Alembic's loading,
#: which validates the contract and names what is wrong.
_UNREAD = object()


def _declared_version(value: ast.expr) -> object:
    """``reference_schema_version`` of a ``RevisionContract(...)`` call, literally."""
    if not isinstance(value, ast.Call):
        return _UNREAD
    for keyword in value.keywords:
        if keyword.arg == "reference_schema_version":
            try:
                return ast.literal_eval(keyword.value)
            except ValueError:
                return _UNREAD
    return _UNREAD


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
            if not isinstance(target, ast.Name):
                continue
            if target.id == "contract":
                values["contract"] = _declared_version(value)
            else:
                with suppress(ValueError):
                    values[target.id] = ast.literal_eval(value)
        revision, down = values.get("revision"), values.get("down_revision")
        version = values.get("contract", _UNREAD)
        if not isinstance(revision, str):
            continue
        if not (down is None or isinstance(down, str)) or not (
            version is None or (isinstance(version, int) and not isinstance(version, bool))
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
