"""Hand-written KITT result documents for the tests (generated ones are in ``strategies``)."""

from __future__ import annotations

from typing import Any


def minimal(**extra: Any) -> dict[str, Any]:
    """The smallest valid document (the three required fields), plus ``extra``.

    Its run id is pinned in ``tests/unit/test_documents.py``: change a value and
    that test says so.
    """
    return {"model": "m", "engine": "e", "timestamp": "2026-02-27T03:40:12.007731", **extra}
