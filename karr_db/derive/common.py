"""What every part of re-derivation shares: batch size, the report, the fingerprint
stash, and small helpers over the dialect seam."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection

from karr_db.dialects import for_connection
from karr_db.models.types import parse_timestamp

#: Runs read and derived per round trip: 500 generated runs are ~100,000 metric rows.
BATCH_SIZE = 500

#: How many refused documents a report names (it counts them all).
EXAMPLES = 5

#: Where :func:`derive_rows` leaves the fingerprints it computed for
#: :func:`fill_fingerprints` in the same transaction, so that each document is
#: parsed once.
_STASH = "karr_derived_fingerprints"


def _stash(connection: Connection) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """run id -> (fingerprint, age) computed in this transaction; what another
    transaction left on the (pooled) connection is discarded."""
    current = connection.get_transaction()
    held = connection.info.get(_STASH)
    if held is None or held[0] is not current:
        held = connection.info[_STASH] = (current, {})
    stash: dict[str, tuple[str, tuple[Any, ...]]] = held[1]
    return stash


#: ``progress(done, total)`` after each batch of runs.
Progress = Callable[[int, int], None]


class DeriveReport(BaseModel):
    """What a re-derivation added (nothing is ever removed)."""

    model_config = ConfigDict(frozen=True)

    runs: int = 0  # runs examined
    benchmarks_added: int = 0
    metrics_added: int = 0
    hardware_added: int = 0
    fingerprints_added: int = 0
    refused: int = 0  # documents a save would refuse: nothing derived for them
    refused_examples: list[str] = []  # "run id: reason", the first few

    def merged(self, other: DeriveReport) -> DeriveReport:
        counts = {
            name: getattr(self, name) + getattr(other, name)
            for name in type(self).model_fields
            if name != "refused_examples"
        }
        examples = (self.refused_examples + other.refused_examples)[:EXAMPLES]
        return DeriveReport(**counts, refused_examples=examples)


def _instant(value: Any) -> datetime | None:
    """``created_at`` as an instant, ``None`` where unknown or unreadable (it only
    orders duplicates, so it must never stop adoption)."""
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _raw_json_text(connection: Connection) -> str:
    return for_connection(connection).raw_json_text


def _placeholders(connection: Connection, count: int) -> str:
    return ", ".join([for_connection(connection).mark] * count)
