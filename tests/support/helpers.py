"""Small helpers shared by the schema and migration tests."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from karr_db.db import make_engine
from karr_db.migrations.scripts import head_revision, reference_version_at


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


def head_version() -> int:
    """The reference schema version at head: the newest row in ``schema_version``."""
    return reference_version_at(head_revision())


def schema_versions(url: str) -> list[int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT version FROM schema_version ORDER BY version"))
        versions = [int(v) for v in rows.scalars()]
    engine.dispose()
    return versions


def alembic_versions(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            versions: list[str] = []
        else:
            versions = list(
                connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            )
    engine.dispose()
    return versions
