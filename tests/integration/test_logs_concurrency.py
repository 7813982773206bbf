"""Writers in several processes append to one log: every call's lines stay together
and in order, on both dialects."""

from __future__ import annotations

import multiprocessing

from karr_db.uow import transaction
from tests.support.workers import PROCESSES, append_log_lines, engine_for, run_workers

BATCHES = 15
SIZE = 4


def test_concurrent_appends_keep_each_call_contiguous_and_ordered(migrated_url: str) -> None:
    with engine_for(migrated_url) as engine:
        with transaction(engine, immediate=True) as uow:
            agent_id = uow.agents.register("gpu-box-1").agent.id
            test_id = uow.quick_tests.dispatch(
                agent_id, model_path="m", engine_name="vllm", benchmark_name="b"
            ).id

        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            returned = run_workers(
                pool,
                append_log_lines,
                [(migrated_url, test_id, worker, BATCHES, SIZE) for worker in range(PROCESSES)],
            )

        with transaction(engine) as uow:
            logs = uow.quick_test_logs
            lines = []
            cursor = None
            while True:
                page = logs.list(test_id, limit=7, cursor=cursor)
                lines += page.items
                cursor = page.next_cursor
                if cursor is None:
                    break
            logged = uow.events.list(
                0, event_types=["quick_test.logged"], source_id=test_id, limit=1000
            )

    assert len(lines) == PROCESSES * BATCHES * SIZE
    assert sorted(i for ids in returned for i in ids) == [line.id for line in lines]
    texts = [line.line for line in lines]
    for start in range(0, len(texts), SIZE):  # every call's lines in one run, in order
        call = texts[start : start + SIZE]
        prefix = call[0].rsplit("-", 1)[0]
        assert call == [f"{prefix}-l{n}" for n in range(SIZE)]
    for worker in range(PROCESSES):  # and each writer's calls in the order it made them
        mine = [t for t in texts if t.startswith(f"w{worker}-") and t.endswith("-l0")]
        assert mine == [f"w{worker}-b{batch}-l0" for batch in range(BATCHES)]
    assert [(e.data["first_id"], e.data["last_id"]) for e in logged.items] == [
        (lines[start].id, lines[start + SIZE - 1].id) for start in range(0, len(lines), SIZE)
    ]
