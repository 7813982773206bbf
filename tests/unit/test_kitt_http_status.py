"""The HTTP status KITT's API gives each of the layer's errors."""

from __future__ import annotations

import pytest

from karr_db.errors import (
    AlreadyExistsError,
    ConnectionLostError,
    CounterLimitError,
    FieldError,
    InvalidQueryError,
    InvalidTokenError,
    InvalidTransitionError,
    KarrError,
    NotFoundError,
    NotReadyError,
    PageLimitError,
    StillReferencedError,
    ValidationError,
)
from karr_db.kitt import KittQueryError
from karr_db.kitt_services import http_status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ValidationError("agent", [FieldError("token", "too short")]), 400),
        (PageLimitError("page_size", "too large"), 400),
        (InvalidQueryError("unknown filter"), 400),
        (KittQueryError("unknown group field"), 400),
        (InvalidTokenError("a1"), 403),
        (NotFoundError("agent", "a1"), 404),
        (AlreadyExistsError("engine profile", "fast"), 409),
        (InvalidTransitionError("campaign", "c1", "running", "deleted"), 409),
        (StillReferencedError("agent", "a1", ["1 quick_tests (t1)"]), 409),
        (CounterLimitError("campaign", "c1", 2, 3), 409),
        (ConnectionLostError("opening the database", "refused"), 503),
        (NotReadyError("behind", "run karr-db upgrade"), 503),
    ],
)
def test_each_error_has_kitts_status(error: KarrError, status: int) -> None:
    assert http_status(error) == status
