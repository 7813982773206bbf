"""Each revision's declared contract: validated on load, and true of the database.

The contract (``karr_db.migrations.ops.RevisionContract``) is what adoption
removes, what ``check`` verifies and what the schema reference lists, so a
revision that does more than it declares (or declares what it does not do)
breaks all three quietly; these tests make it loud.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from karr_db import migrations
from karr_db.db import make_engine
from karr_db.errors import RevisionContractError
from karr_db.migrations.scripts import (
    alembic_config,
    contracts,
    head_revision,
    revision_versions,
    script_location,
)
from tests.legacy import snapshot

REVISION = '''
"""A revision written half-way, for the validation tests."""
from karr_db.migrations import ops

revision = "9999"
down_revision = {down!r}
branch_labels = None
depends_on = None
{contract}


def upgrade():
    raise AssertionError("never run: the contract is checked first")


def downgrade():
    ops.refuse_downgrade()
'''

BROKEN = {
    "missing": ("", "declares no `contract"),
    "not a contract": (
        "contract = {'reference_schema_version': None}",
        "must be a RevisionContract",
    ),
    "version as text": (
        "contract = ops.RevisionContract(reference_schema_version='3')",
        "reference_schema_version must be an int or None",
    ),
    "indexes as a list": (
        "contract = ops.RevisionContract(None, indexes=[ops.Index('i', 'runs', ('id',))])",
        "indexes must be a tuple of Index",
    ),
    "unknown dialect": (
        "contract = ops.RevisionContract(None, triggers=(ops.Trigger('t', 'runs', 'mysql'),))",
        "dialects must be among",
    ),
    "tables() fails": (
        "contract = ops.RevisionContract(None, tables=lambda metadata: 1 / 0)",
        "tables() fails: ZeroDivisionError",
    ),
}


def _scripts_with(tmp_path: Path, contract: str) -> Path:
    target = tmp_path / "alembic"
    shutil.copytree(script_location(), target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "versions" / "9999_half_written.py").write_text(
        REVISION.format(down=head_revision(), contract=contract)
    )
    return target


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_revision_without_a_sound_contract_is_refused_by_name(tmp_path: Path, case: str) -> None:
    contract, problem = BROKEN[case]
    scripts = _scripts_with(tmp_path, contract)
    config = alembic_config()
    config.set_main_option("script_location", str(scripts))
    with pytest.raises(RevisionContractError, match="revision 9999 ") as raised:
        revision_versions(ScriptDirectory.from_config(config))
    assert problem in str(raised.value)
    assert "9999_half_written.py" in str(raised.value)


def test_an_upgrade_with_a_broken_revision_changes_nothing(
    tmp_path: Path, migrated_url: str
) -> None:
    from alembic import command

    scripts = _scripts_with(tmp_path, BROKEN["version as text"][0])
    config = alembic_config()
    config.set_main_option("script_location", str(scripts))
    engine = make_engine(migrated_url)
    config.attributes["engine"] = engine
    before = snapshot(migrated_url)
    try:
        with pytest.raises(RevisionContractError, match="revision 9999 "):
            command.upgrade(config, "heads")
        with pytest.raises(RevisionContractError, match="revision 9999 "):
            command.upgrade(config, "heads", sql=True)
    finally:
        engine.dispose()
    assert snapshot(migrated_url) == before


def test_the_contracts_declare_exactly_what_the_revisions_create(migrated_url: str) -> None:
    """At head, the database holds what the contracts declare, and nothing else
    of karr_db's: tables, columns, indexes, triggers and PostgreSQL functions."""
    declared = list(contracts().values())
    engine = make_engine(migrated_url)
    dialect = engine.dialect.name
    metadata = sa.MetaData()
    created = [t for c in declared for t in c.table_objects(metadata)]
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            live_tables = set(inspector.get_table_names()) - {"alembic_version"}
            if dialect == "sqlite":
                live_tables.discard("sqlite_sequence")
            expected_tables = {t.name for t in created}
            expected_tables |= {name for c in declared for name in c.other_tables}
            assert live_tables == expected_tables

            added = {(col.table, col.name) for c in declared for col in c.columns}
            for table in created:
                live = {col["name"] for col in inspector.get_columns(table.name)}
                expected = {col.name for col in table.columns}
                expected |= {name for t, name in added if t == table.name}
                assert live == expected, table.name

            live_indexes = {
                str(ix["name"])
                for table in created
                for ix in inspector.get_indexes(table.name)
                if not ix.get("duplicates_constraint")
            }
            expected_indexes = {str(ix.name) for t in created for ix in t.indexes}
            expected_indexes |= {ix.name for c in declared for ix in c.indexes_on(dialect)}
            assert live_indexes == expected_indexes

            if dialect == "sqlite":
                sql = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
            else:
                sql = (
                    "SELECT t.tgname, c.relname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
                )
            live_triggers = {(str(n), str(t)) for n, t in connection.exec_driver_sql(sql)}
            expected_triggers = {
                (t.name, t.table) for c in declared for t in c.triggers_on(dialect)
            }
            assert live_triggers == expected_triggers

            if dialect == "postgresql":
                live_functions = set(
                    connection.exec_driver_sql(
                        "SELECT p.proname FROM pg_proc p "
                        "JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = current_schema()"
                    ).scalars()
                )
                assert live_functions == {f for c in declared for f in c.functions}
    finally:
        engine.dispose()


def test_check_names_a_declared_trigger_that_is_missing(migrated_url: str) -> None:
    """A trigger no guard describes (revision 0006's) is still checked for."""
    engine = make_engine(migrated_url)
    dialect = engine.dialect.name
    name = (
        "karr_runs_canonical_time_insert" if dialect == "sqlite" else "karr_agents_canonical_time"
    )
    on = "" if dialect == "sqlite" else " ON agents"
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TRIGGER {name}{on}")
    engine.dispose()

    messages = [f.message for f in migrations.check(migrated_url)]

    assert any(name in m and "revision 0006" in m for m in messages), messages


def test_adoption_leaves_a_trigger_no_revision_declared(migrated_postgres_url: str) -> None:
    """Adoption removes what karr_db's revisions declare, not someone else's trigger
    (PostgreSQL: SQLite's adoption rebuilds every table, which drops any trigger)."""
    engine = make_engine(migrated_postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION audit_runs() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NEW; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER audit_runs AFTER INSERT ON runs "
            "FOR EACH ROW EXECUTE FUNCTION audit_runs()"
        )
        connection.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()

    report = migrations.upgrade(migrated_postgres_url)

    assert report.adopted
    engine = make_engine(migrated_postgres_url)
    with engine.connect() as connection:
        kept = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_runs'"
        ).scalar_one()
    engine.dispose()
    assert kept == 1
    messages = [f.message for f in migrations.check(migrated_postgres_url)]
    assert all("audit_runs" not in m for m in messages), messages
