"""What the schema and migration tests read from a database: its versions, head's version."""

from __future__ import annotations

import sqlalchemy as sa

from karr_db.engine import make_engine
from karr_db.migrations.scripts import head_revision, reference_version_at


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
