"""A reader tailing the log while several processes append never misses or
repeats an event (on PostgreSQL this is what the append lock guarantees)."""

from __future__ import annotations

import multiprocessing
import time

from karr_db.repositories.events import EventDTO
from karr_db.uow import transaction
from tests.support.workers import PROCESSES, TIMEOUT, append_events, engine_for

PER_WORKER = 150


def test_tailing_reader_sees_every_event_once_in_order(migrated_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    seen: list[EventDTO] = []
    last = 0
    deadline = time.monotonic() + TIMEOUT
    with (
        engine_for(migrated_url) as engine,
        context.Pool(PROCESSES) as pool,
    ):
        result = pool.starmap_async(
            append_events, [(migrated_url, w, PER_WORKER) for w in range(PROCESSES)]
        )
        finished = False
        while True:
            assert time.monotonic() < deadline, "appenders did not finish in time"
            with transaction(engine) as uow:
                page = uow.events.list(last, limit=50)
            for event in page.items:
                assert event.id > last, "ids went backwards or repeated"
                last = event.id
                seen.append(event)
            if finished and not page.items:
                break
            # Every append has committed once the workers are done; read on
            # until the log is drained.
            finished = result.ready()
        assert result.get(timeout=TIMEOUT) == [PER_WORKER] * PROCESSES

        with transaction(engine) as uow:
            everything: list[EventDTO] = []
            page = uow.events.list(0, limit=1000)
            everything += page.items
            assert not page.has_more

    # Nothing missed: the tail saw exactly what the log holds, in the same order.
    assert [e.id for e in seen] == [e.id for e in everything]
    assert len(seen) == PER_WORKER * PROCESSES
    # Nothing repeated or lost per worker, and each worker's events in its order.
    for worker in range(PROCESSES):
        sequence = [e.data["seq"] for e in seen if e.data["worker"] == worker]
        assert sequence == list(range(PER_WORKER))
