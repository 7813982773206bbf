"""What ``check`` asks of the two tables the layer derives from the rows:
``run_fingerprints`` and ``leaderboard_aggregates`` must say what the rows say.

The application role may write both (every save and delete maintains them), so
a falsified row (a content pointed at another run, a raised maximum) would
otherwise go unnoticed; ``rederive`` puts both right.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, select, true

from karr_db.derive.common import BATCH_SIZE, _placeholders, _raw_json_text
from karr_db.derive.fingerprints import _content_id
from karr_db.derive.parse import _derived
from karr_db.errors import KarrError
from karr_db.repositories.leaderboard_aggregate.statements import COLUMNS, TABLE, contributions

__all__ = ["false_aggregates", "false_fingerprints"]

#: Columns compared exactly; ``value_sum`` is compared to a relative 1e-9 (the
#: aggregate adds runs one save at a time, a recomputation in another order).
_EXACT = tuple(c for c in COLUMNS if c not in ("metric_name", "group_key", "value_sum"))
_EXTREMES = ("value_min", "value_max")


def false_fingerprints(connection: Connection) -> list[tuple[str, str]]:
    """``(fingerprint, run_id)`` entries whose run does not hold that content.

    A content-derived run id is its own fingerprint (its document is not read);
    any other run's document is read and fingerprinted as a save would.
    """
    rows = connection.exec_driver_sql(
        "SELECT f.fingerprint, f.run_id, r.id FROM run_fingerprints f "
        "LEFT JOIN runs r ON r.id = f.run_id"
    ).all()
    wrong = [(f, run) for f, run, found in rows if found is None]
    wrong += [(f, run) for f, run, found in rows if found and _content_id(run) and f != run]
    unread = {run: f for f, run, found in rows if found and not _content_id(run)}
    ids = list(unread)
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        for run_id, text in connection.exec_driver_sql(
            f"SELECT id, {_raw_json_text(connection)} FROM runs "
            f"WHERE id IN ({_placeholders(connection, len(chunk))})",
            tuple(chunk),
        ):
            try:
                holds = _derived(text).fingerprint
            except (KarrError, ValueError):
                holds = None
            if holds != unread[run_id]:
                wrong.append((unread[run_id], run_id))
    return wrong


def false_aggregates(connection: Connection) -> list[tuple[str, str]]:
    """``(metric_name, group_key)`` of aggregate rows that a recomputation from the
    rows does not reproduce (missing, extra, or with other figures)."""
    stored = {(r.metric_name, r.group_key): r for r in connection.execute(select(TABLE))}
    fresh = {(r.metric_name, r.group_key): r for r in connection.execute(contributions(true()))}
    return sorted(
        key
        for key in stored.keys() | fresh.keys()
        if key not in stored or key not in fresh or not _same(stored[key], fresh[key])
    )


def _same(stored: Any, fresh: Any) -> bool:
    """Equal figures; an extreme a delete left unknown (NULL while the group has
    values) is not a falsification: reads answer it from the rows."""
    for c in _EXACT:
        value = getattr(stored, c)
        if value is None and c in _EXTREMES and stored.value_count > 0:
            continue
        if value != getattr(fresh, c):
            return False
    return math.isclose(stored.value_sum, fresh.value_sum, rel_tol=1e-9, abs_tol=1e-300)
