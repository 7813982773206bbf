"""Deep equality for stored values, where NaN equals NaN and 1.0 is not 1."""

from __future__ import annotations

import math
from typing import Any


def same(a: Any, b: Any, *, strict: bool = True) -> bool:
    """Deep equality where NaN equals NaN.

    ``strict`` (the default) also requires the same types (1.0 is not 1) and
    the same sign of zero; ``strict=False`` is for stores that do not keep those
    (SQLite's REAL folds -0.0 into 0).
    """
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and (not strict or math.copysign(1.0, a) == math.copysign(1.0, b))
    if strict and type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], strict=strict) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            same(x, y, strict=strict) for x, y in zip(a, b, strict=True)
        )
    return bool(a == b)
