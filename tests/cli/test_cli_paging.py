"""``karr-db list`` streams its runs page by page: the output is the
same as building the whole list, but only one page is held at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from karr_db.cli import _output
from karr_db.engine import make_engine
from karr_db.repositories.results import ResultsRepository
from karr_db.uow import transaction
from tests.support.cli import cli

RUNS = 7


@pytest.fixture
def stored(migrated_url: str) -> list[str]:
    engine = make_engine(migrated_url)
    with transaction(engine) as uow:
        uow.results.save_many(
            [
                {"model": f"m{n}", "engine": "e", "timestamp": f"2026-01-0{n + 1}T00:00:00"}
                for n in range(RUNS)
            ]
        )
    with transaction(engine) as uow:
        ids = [r.id for r in uow.results.list(limit=RUNS).items]
    engine.dispose()
    return ids


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pages of 3, so that a few runs take several pages (checked: every page the
    command asked for was at most 3 runs, and there were several)."""
    monkeypatch.setattr(_output, "PAGE_LIMIT", 3)
    asked: list[int] = []
    listing = ResultsRepository.list

    def counted(self: ResultsRepository, *args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["limit"])
        return listing(self, *args, **kwargs)

    monkeypatch.setattr(ResultsRepository, "list", counted)
    yield
    assert len(asked) >= 3
    assert max(asked) <= 3


def test_list_json_streams_the_same_object_across_pages(
    migrated_url: str, stored: list[str], small_pages: None
) -> None:
    result = cli("list", "--database", migrated_url, "--json", "-n", "100")
    assert result.exit_code == 0
    page = json.loads(result.stdout)
    assert [r["id"] for r in page["items"]] == stored
    assert (page["total"], page["next_cursor"]) == (RUNS, None)
    # Streamed, yet the very text the whole object would print as.
    assert result.stdout == json.dumps(page, indent=2, ensure_ascii=False) + "\n"
    five = cli("list", "--database", migrated_url, "--json", "-n", "5").json()
    assert [r["id"] for r in five["items"]] == stored[:5]
    assert five["next_cursor"] is not None


def test_list_json_of_nothing_has_no_items(migrated_url: str) -> None:
    result = cli("list", "--database", migrated_url, "--json")
    assert result.exit_code == 0
    assert (
        result.stdout == json.dumps({"items": [], "total": 0, "next_cursor": None}, indent=2) + "\n"
    )


def test_list_table_shows_every_page_under_one_header(
    migrated_url: str, stored: list[str], small_pages: None
) -> None:
    result = cli("list", "--database", migrated_url, "-n", "100")
    assert result.exit_code == 0
    assert all(run_id[:8] in result.stdout for run_id in stored)
    assert result.stdout.count("run id") == 1
    assert f"{RUNS} of {RUNS} run(s)" in result.stdout
