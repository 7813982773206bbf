"""The page of latest runs picks its rows first and their hardware headline after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from karr_db.models import Hardware, Run
from karr_db.repositories.results import ResultsRepository
from tests.support.repositories import on


def document(day: int, gpu: str, tag: str) -> dict[str, Any]:
    return {
        "model": "llama",
        "engine": "vllm",
        "suite_name": tag,
        "timestamp": f"2026-03-{day:02d}T10:00:00",
        "results": [{"test_name": "t", "metrics": {"avg_tps": float(day)}}],
        "system_info": {"gpu": {"model": gpu, "count": 2}, "environment_type": "dgx"},
    }


def test_latest_pages_put_undated_runs_last_and_show_the_first_hardware_row(
    session: Session,
) -> None:
    repo = on(ResultsRepository, session)
    undated = repo.save(document(3, "A100", "undated")).run.id
    # Documents always carry a time; rows of the earlier system may not.
    session.execute(update(Run).where(Run.id == undated).values(timestamp=None))
    old = repo.save(document(1, "H100", "old")).run.id
    new = repo.save(document(9, "L40", "new")).run.id
    same_day = repo.save(document(9, "L4", "same-day")).run.id
    # A second hardware row (the earlier system could write several): the headline stays the first.
    session.execute(insert(Hardware).values(run_id=old, gpu_model="later snapshot", gpu_count=8))

    pages: list[list[tuple[str, str | None, int | None]]] = []
    cursor = None
    while True:
        page = repo.list({"model": "llama", "engine": "vllm"}, limit=2, cursor=cursor)
        pages.append([(r.id, r.gpu_model, r.gpu_count) for r in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break

    newest_two = sorted([new, same_day], reverse=True)  # same timestamp: id descending
    gpus = {new: "L40", same_day: "L4"}
    assert pages == [
        [(run_id, gpus[run_id], 2) for run_id in newest_two],
        [(old, "H100", 2), (undated, "A100", 2)],
    ]


def test_a_hardware_filter_still_pages_by_the_headline(session: Session) -> None:
    repo = on(ResultsRepository, session)
    runs = [
        repo.save(document(day, "H100" if day % 2 else "L4", f"s{day}")).run.id
        for day in (1, 2, 3, 4, 5)
    ]
    page = repo.list({"gpu_model": "H100"}, limit=2)
    assert [r.id for r in page.items] == [runs[4], runs[2]]
    assert page.next_cursor is not None
    rest = repo.list({"gpu_model": "H100"}, limit=2, cursor=page.next_cursor)
    assert [r.id for r in rest.items] == [runs[0]]
    assert rest.next_cursor is None
    assert repo.list({"gpu_model": "L4"}, limit=5, offset=1).items[0].id == runs[1]


def test_summary_statements_select_the_summary_fields_in_their_order() -> None:
    # Summaries are built by zipping rows with the fields: the orders must agree.
    from karr_db.repositories.results import repository
    from karr_db.repositories.results import statements as results
    from karr_db.repositories.results.dto import RunSummary

    fields = list(RunSummary.model_fields)
    assert [c.key for c in results.SUMMARY_COLUMNS] == fields
    assert [c.key for c in (*results.RUN_COLUMNS, *results.HEADLINE)] == fields
    page = select(*results.RUN_COLUMNS).subquery("page")
    for lateral in (True, False):
        keyset = repository._ordering(Run.timestamp, Run.id, True)
        joined = repository._headline(page, Run.timestamp, keyset, lateral=lateral)
        assert [c.key for c in joined.selected_columns] == fields
