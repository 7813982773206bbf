"""The committed schema reference is what the models generate, and agrees with the reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from karr_db.cli import docs
from karr_db.models import Base
from tests.support.reference import Reference, parse_document

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / docs.DEFAULT_PATH


@pytest.fixture(scope="module")
def generated() -> Reference:
    return parse_document(docs.render())


def test_committed_docs_are_what_the_models_generate() -> None:
    assert COMMITTED.is_file(), "docs/database.md is missing: run `karr-db docs`"
    assert COMMITTED.read_text(encoding="utf-8") == docs.render(), (
        "docs/database.md is out of date: run `karr-db docs` and commit the result"
    )


def test_rendering_is_deterministic() -> None:
    assert docs.render() == docs.render()


def test_write_reports_whether_the_file_changed(tmp_path: Path) -> None:
    target = tmp_path / "out" / "database.md"
    assert docs.write(target) is True
    assert docs.write(target) is False
    target.write_text("stale", encoding="utf-8")
    assert docs.write(target) is True
    assert target.read_text(encoding="utf-8") == docs.render()


def test_tables_columns_and_types_agree_with_the_reference(
    reference: Reference, generated: Reference
) -> None:
    assert set(generated.tables) >= set(reference.tables)
    text = docs.render()
    for table in set(generated.tables) - set(reference.tables):  # karr_db's own tables
        section = text.split(f"\n### {table}\n", 1)[1].split("\n#", 1)[0]
        assert "beyond the reference" in section.lower(), table
    for table, columns in reference.tables.items():
        # The reference's columns in its order; after them, KITT's later ones, marked.
        ours = generated.tables[table][: len(columns)]
        assert [c.name for c in ours] == [c.name for c in columns], table
        assert [c.type for c in ours] == [c.type for c in columns], table
        for extra in generated.tables[table][len(columns) :]:
            row = next(line for line in text.splitlines() if line.startswith(f"| `{extra.name}` |"))
            assert "beyond the reference: KITT's schema" in row, f"{table}.{extra.name}"


def test_constraints_agree_with_the_reference_except_marked_extras(
    reference: Reference, generated: Reference
) -> None:
    for table, columns in reference.tables.items():
        if table == docs.VERSION_TABLE:
            continue  # the reference's migration table has no constraints column
        ours = {c.name: c for c in generated.tables[table]}
        for column in columns:
            assert ours[column.name] == column, f"{table}.{column.name}"
    # parse_document drops the migration table's constraints; read that row directly.
    row = next(line for line in docs.render().splitlines() if line.startswith("| `version` |"))
    assert "PRIMARY KEY *(beyond the reference)*" in row


def test_indexes_agree_with_the_reference(reference: Reference, generated: Reference) -> None:
    for name, (table, columns) in reference.indexes.items():
        assert generated.indexes.get(name) == (table, columns), name
    assert set(reference.indexes) == docs.REFERENCE_INDEXES
    text = docs.render()
    for name in set(generated.indexes) - set(reference.indexes):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert "beyond the reference" in row, name


def test_postgresql_types_agree_with_the_reference(
    reference: Reference, generated: Reference
) -> None:
    for target, pg_type in reference.postgres.items():
        if "." in target and "*" not in target:
            assert generated.postgres.get(target) == pg_type, target
    # The reference's rule "all *_at and timestamp columns" is spelled out column by column.
    for table, columns in generated.tables.items():
        for column in columns:
            key = f"{table}.{column.name}"
            if column.name.endswith("_at") or column.name == "timestamp":
                assert generated.postgres.get(key) == "TIMESTAMPTZ", key
    assert not generated.timestamp_type  # no blanket rule: every column is listed


KITT_MARK = r" \*\(beyond the reference: KITT's schema \d+\)\*"


def test_every_description_comes_from_the_models(generated: Reference) -> None:
    text = docs.render()
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            assert column.comment, f"{table.name}.{column.name} has no comment="
            row = f"| `{column.name}` |"
            # A column of KITT's later schemas carries its mark after the description.
            assert any(
                line.startswith(row)
                and re.sub(KITT_MARK, "", line.rstrip()).endswith(f"| {column.comment} |")
                for line in text.splitlines()
            ), f"{table.name}.{column.name}"


def test_triggers_of_revision_3_are_listed_as_beyond_the_reference() -> None:
    text = docs.render()
    section = text.split("## Triggers", 1)[1].split("\n## ", 1)[0]
    assert "Beyond the reference" in section
    for name in ("events_no_update", "events_no_delete", "events_append_only"):
        assert f"`{name}`" in section


def test_er_diagram_has_every_table_and_foreign_key() -> None:
    text = docs.render()
    diagram = re.search(r"```mermaid\nerDiagram\n(.*?)```", text, re.S)
    assert diagram is not None
    body = diagram.group(1)
    for table in Base.metadata.sorted_tables:
        assert f"    {table.name} {{" in body
        for fk in table.foreign_keys:
            assert re.search(
                rf"    {fk.column.table.name} \|[o|]--o\{{ {table.name} : \"{fk.parent.name}", body
            ), f"{table.name}.{fk.parent.name}"


def test_current_schema_version_is_the_head_revision() -> None:
    from karr_db.migrations.scripts import head_revision, reference_version_at

    head = head_revision()
    assert f"**Current schema version:** {reference_version_at(head)} " in docs.render()
