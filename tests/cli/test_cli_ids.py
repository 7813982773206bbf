"""Run ids usable at terminal widths (short ids, unique prefixes everywhere)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from karr_db.database import Database
from karr_db.errors import AmbiguousIdError, NotFoundError
from tests.support.cli import cli, import_samples, run_in_pty, write_variants

VARIANTS = 40  # 40 ids over 16 hex digits: some first characters must repeat


@pytest.fixture
def many_runs(migrated_url: str, tmp_path: Path, samples_dir: Path) -> list[str]:
    write_variants(samples_dir, tmp_path / "docs", VARIANTS)
    result = cli("import", "--database", migrated_url, "--json", str(tmp_path / "docs"))
    assert result.exit_code == 0, result.output
    return [o["run_id"] for o in result.json()["outcomes"]]


def _shared_first_character(ids: list[str]) -> str:
    first, _ = Counter(i[0] for i in ids).most_common(1)[0]
    return first


def test_resolve_id_takes_a_unique_prefix_and_refuses_an_ambiguous_one(
    migrated_url: str, many_runs: list[str]
) -> None:
    shared = _shared_first_character(many_runs)
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        for run_id in many_runs[:5]:
            assert uow.results.resolve_id(run_id) == run_id
            assert uow.results.resolve_id(run_id[:13]) == run_id
        with pytest.raises(AmbiguousIdError) as ambiguous:
            uow.results.resolve_id(shared)
        with pytest.raises(NotFoundError):
            uow.results.resolve_id("zzzz")
    expected = sorted(i for i in many_runs if i.startswith(shared))
    assert ambiguous.value.candidates == expected[:10]
    assert ambiguous.value.total == len(expected)
    assert all(c in str(ambiguous.value) for c in expected[:10])


def test_short_ids_are_the_shortest_unique_prefixes(
    migrated_url: str, many_runs: list[str]
) -> None:
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        short = uow.results.short_ids(many_runs, min_length=1)
        default = uow.results.short_ids(many_runs)
        for run_id, prefix in short.items():
            assert uow.results.resolve_id(prefix) == run_id
            if len(prefix) > 1:
                with pytest.raises(AmbiguousIdError):
                    uow.results.resolve_id(prefix[:-1])
    assert any(len(p) > 1 for p in short.values())  # some ids share a first character
    assert all(len(p) == 8 and run_id.startswith(p) for run_id, p in default.items())


def test_a_prefix_with_like_wildcards_matches_only_literally(
    migrated_url: str, many_runs: list[str]
) -> None:
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        for wildcard in ("%", "_", many_runs[0][:3] + "%"):
            with pytest.raises(NotFoundError):
                uow.results.resolve_id(wildcard)


def test_show_compare_and_export_accept_prefixes(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    ids = import_samples(migrated_url, samples_dir)
    shown = cli("show", "--database", migrated_url, "--json", ids[0][:8])
    assert shown.exit_code == 0, shown.output
    assert shown.json()["id"] == ids[0]
    compared = cli("compare", "--database", migrated_url, "--json", ids[0][:6], ids[1][:6])
    assert compared.exit_code == 0, compared.output
    assert compared.json()["run_ids"] == ids[:2]
    target = tmp_path / "one.json"
    exported = cli("export", "--database", migrated_url, ids[2][:8], "-o", str(target))
    assert exported.exit_code == 0, exported.output
    assert target.is_file()
    same = cli("compare", "--database", migrated_url, ids[0], ids[0][:8])
    assert same.exit_code == 2
    assert "same run" in same.output


def test_an_ambiguous_prefix_on_the_command_line_lists_the_candidates(
    migrated_url: str, many_runs: list[str]
) -> None:
    shared = _shared_first_character(many_runs)
    result = cli("show", "--database", migrated_url, shared)
    assert result.exit_code == 1
    assert "is ambiguous" in result.stderr
    for candidate in sorted(i for i in many_runs if i.startswith(shared))[:10]:
        assert candidate in result.stderr
    missing = cli("show", "--database", migrated_url, "ffffffffff")
    assert missing.exit_code == 1
    assert "not found" in missing.stderr


def test_list_at_80_columns_shows_whole_short_ids_and_model_file_names(
    migrated_url: str, samples_dir: Path
) -> None:
    """On a real 80-column terminal: the id column holds complete 8-character
    prefixes, and a long model path keeps its end (the file name)."""
    ids = import_samples(migrated_url, samples_dir)
    code, screen = run_in_pty("list", "--database", migrated_url, columns=80)
    screen = re.sub(r"\x1b\[[0-9;]*m", "", screen)  # colours and bold
    assert code == 0, screen
    lines = screen.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), screen
    for run_id in ids:
        assert re.search(rf"^\s*{run_id[:8]}\s", screen, re.M), screen
    assert "…" in screen  # the long path was cut, from the left
    assert "Instruct-2501" in screen, screen  # the end of /srv/models/mistralai/...
    assert "/srv/models" not in screen
