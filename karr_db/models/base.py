"""Declarative base shared by every model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from sqlalchemy import Integer, MetaData, Text, text
from sqlalchemy.orm import DeclarativeBase, Relationship, mapped_column, relationship

from karr_db.models.types import Double, IntBool, JSONDocument, UTCDateTime

#: Stable constraint names on both dialects, so that SQLite batch migrations
#: and adoption can address constraints by name. The reference's indexes are
#: named explicitly and keep their ``idx_`` names. The revisions spell out the
#: names this gives (:mod:`karr_db.migrations.frozen`), so changing it would
#: make the models disagree with every existing database.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Text that reads ``''`` unless given: the empty text KITT writes for "none",
#: which its later schemas' columns default to (``Mapped[BlankText | None]``).
BlankText = Annotated[str, mapped_column(server_default=text("''"))]

#: A JSON value (an object, an array, a scalar) or NULL: TEXT on SQLite, JSONB
#: on PostgreSQL (:class:`~karr_db.models.types.JSONDocument`).
JSONValue = Annotated[Any, mapped_column(JSONDocument, nullable=True)]


class Base(DeclarativeBase):
    """Root of the KARR models; its metadata is Alembic's target.

    A column's ``Mapped[...]`` annotation gives its type (and ``| None`` its
    NULLs): each Python type has one column type, whose dialect differences
    :mod:`karr_db.models.types` holds. A JSON column is ``Mapped[JSONValue]``;
    only a column stored otherwise (a timestamp kept as text on PostgreSQL too)
    names its type.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: Text,
        int: Integer,
        float: Double,
        bool: IntBool,
        datetime: UTCDateTime,
    }


def owned_rows(back_populates: str) -> Relationship[Any]:
    """The rows a parent owns, deleted with it by the database's ON DELETE CASCADE.

    ``passive_deletes=True`` leaves that delete to the database instead of the
    ORM loading the rows just to delete them; ``lazy="raise"`` makes every load
    explicit, so no N+1 query can hide.
    """
    return relationship(
        back_populates=back_populates,
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )


def referencing_rows(back_populates: str) -> Relationship[Any]:
    """The rows that point at a parent without belonging to it.

    Their foreign key has no ON DELETE, so the database refuses to delete a
    parent that is still referenced; ``passive_deletes="all"`` stops the ORM
    from nulling the references out. ``lazy="raise"`` as for owned rows.
    """
    return relationship(back_populates=back_populates, passive_deletes="all", lazy="raise")
