"""Declarative base shared by every model."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

#: Stable constraint names on both dialects, so that SQLite batch migrations
#: and adoption can address constraints by name. The reference's indexes are
#: named explicitly and keep their ``idx_`` names. Revision scripts import this
#: constant: changing it would rename constraints in every existing database.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Root of the KARR models; its metadata is Alembic's target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
