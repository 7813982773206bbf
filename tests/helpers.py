"""Small helpers shared by the schema and migration tests."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from karr_db.db import make_engine
from karr_db.migrations.scripts import head_revision, revision_versions


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN and compares types of numbers loosely."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def head_version() -> int:
    return revision_versions()[head_revision()]


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
