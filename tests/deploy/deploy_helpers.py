"""What the deployment tests share."""

from __future__ import annotations

import threading
import time

from karr_db import Database


def follower_wakes(db: Database) -> bool:
    """Whether ``db.wait_for_events`` (with a 600 s timeout), already waiting when an
    event is committed, returns ``True`` within 120 s: it must wake on the commit,
    not at its timeout."""
    with db.unit_of_work() as uow:
        first = uow.events.append("test.tick")
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(db.wait_for_events(first, timeout=600)))
    waiter.start()
    try:
        time.sleep(1)  # let it start waiting first: the commit must wake it
        with db.unit_of_work() as uow:
            uow.events.append("test.tick")
    finally:
        waiter.join(timeout=120)  # polling wakes it within a fraction of a second
    return not waiter.is_alive() and woke == [True]
