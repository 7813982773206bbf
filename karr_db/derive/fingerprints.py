"""Filling ``run_fingerprints``: each stored content to its oldest run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from karr_db.derive.common import (
    _STASH,
    BATCH_SIZE,
    _instant,
    _placeholders,
    _raw_json_text,
    _stash,
)
from karr_db.derive.parse import _derived
from karr_db.dialects import for_connection
from karr_db.errors import KarrError


def _content_id(run_id: str) -> bool:
    """Whether ``run_id`` is a content-derived id (a UUIDv5 in its canonical text): such a
    run was saved by karr_db, so its fingerprint is its id and its document need not
    be read again."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        return False
    return parsed.version == 5 and str(parsed) == run_id


def fill_fingerprints(connection: Connection, *, batch_size: int = BATCH_SIZE) -> int:
    """Give every content stored in ``runs`` its entry in ``run_fingerprints``; how many
    were added.

    Runs without an entry are looked at: a content-derived id is its own
    fingerprint, any other run's document is read (unless :func:`derive_rows`
    just did). Each content goes to its oldest run (see the module docstring);
    a content that already has an owner keeps it (``ON CONFLICT DO NOTHING``,
    which also makes a concurrent save of the same content wait and agree).
    Documents a save would refuse get no entry.
    """
    stash = _stash(connection)
    connection.info.pop(_STASH, None)
    candidates: dict[str, tuple[tuple[Any, ...], str]] = {}  # fingerprint -> (age, run id)
    last = ""
    mark = for_connection(connection).mark
    while True:
        rows = connection.exec_driver_sql(
            "SELECT r.id, r.created_at, (SELECT min(b.id) FROM benchmarks b WHERE b.run_id = r.id) "
            "FROM runs r WHERE NOT EXISTS (SELECT 1 FROM run_fingerprints f WHERE f.run_id = r.id) "
            f"AND r.id > {mark} ORDER BY r.id LIMIT {int(batch_size)}",
            (last,),
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        unread: dict[str, tuple[Any, ...]] = {}
        for run_id, created_at, first in rows:
            created = _instant(created_at)
            age = (created is None, created or datetime.min, first is None, first or 0, run_id)
            if run_id in stash:
                fingerprint, age = stash[run_id]
            elif _content_id(run_id):
                fingerprint = run_id
            else:
                unread[run_id] = age
                continue
            _offer(candidates, fingerprint, age, run_id)
        if unread:
            marks = _placeholders(connection, len(unread))
            for run_id, text in connection.exec_driver_sql(
                f"SELECT id, {_raw_json_text(connection)} FROM runs WHERE id IN ({marks})",
                tuple(unread),
            ):
                try:
                    fingerprint = _derived(text).fingerprint
                except (KarrError, ValueError):
                    continue
                _offer(candidates, fingerprint, unread[run_id], run_id)
    entries = [(fingerprint, run_id) for fingerprint, (_, run_id) in candidates.items()]
    added = 0
    for start in range(0, len(entries), 10_000):
        added += _insert_fingerprints(connection, entries[start : start + 10_000])
    return added


def _offer(
    candidates: dict[str, tuple[tuple[Any, ...], str]],
    fingerprint: str,
    age: tuple[Any, ...],
    run_id: str,
) -> None:
    held = candidates.get(fingerprint)
    if held is None or age < held[0]:
        candidates[fingerprint] = (age, run_id)


def _insert_fingerprints(connection: Connection, entries: list[tuple[str, str]]) -> int:
    if not entries:
        return 0
    return for_connection(connection).insert_ignore(
        connection, "run_fingerprints", ("fingerprint", "run_id"), entries
    )
