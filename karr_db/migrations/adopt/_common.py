"""What the SQLite and PostgreSQL halves of adoption share: quoting, row keys,
refusing data adoption would lose, and naming the rows behind a failure or a
value that cannot be carried over."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from karr_db.errors import AdoptionError
from karr_db.models import Base


def quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def pk_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def row_key(row: Any, width: int) -> Any:
    return row[0] if width == 1 else tuple(row[:width])


def refuse_extra_columns(table: sa.Table, live: list[str]) -> None:
    model_table = Base.metadata.tables.get(table.name)
    for column in live:
        if column in table.columns:
            continue
        if model_table is not None and column in model_table.c:
            continue  # added by a karr_db revision beyond the reference: rebuilt by it
        raise AdoptionError(
            "column is not in the reference schema and adoption would drop it; "
            "move its data elsewhere and drop the column first",
            table=table.name,
            column=column,
        )


def preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def value_error(table: sa.Table, column: sa.Column[Any], row: Any, problem: str) -> AdoptionError:
    """The error for a stored value adoption cannot carry over, naming its row;
    ``row`` is the primary key's columns, then the value."""
    return AdoptionError(
        f"value {preview(row[-1])} {problem}",
        table=table.name,
        column=column.name,
        row=row_key(row, len(table.primary_key.columns)),
    )


@contextmanager
def naming_failed_rows(
    connection: Connection,
    table: sa.Table,
    source: str,
    constraints: Iterable[sa.Constraint] | None = None,
) -> Iterator[None]:
    """A savepoint for a statement that copies or constrains ``table``'s rows (read
    from ``source``): when the database refuses it, the AdoptionError names the
    rows behind it (duplicate keys, in practice), looked for under ``constraints``
    (default: all of the table's, in declaration order, so the same rows are named
    on every run)."""
    try:
        with connection.begin_nested():
            yield
    except DBAPIError as exc:
        src = quote(connection, source)
        for constraint in table._sorted_constraints if constraints is None else constraints:
            if not isinstance(constraint, sa.PrimaryKeyConstraint | sa.UniqueConstraint):
                continue
            cols = [c.name for c in constraint.columns]
            quoted = ", ".join(quote(connection, c) for c in cols)
            duplicate = connection.exec_driver_sql(
                f"SELECT {quoted} FROM {src} GROUP BY {quoted} HAVING count(*) > 1 LIMIT 1"
            ).first()
            if duplicate is not None:
                raise AdoptionError(
                    f"duplicate value {tuple(duplicate)!r} violates {constraint.name}",
                    table=table.name,
                    column=",".join(cols),
                    row=tuple(duplicate),
                ) from exc
        raise AdoptionError(f"rows could not be copied: {exc.orig}", table=table.name) from exc
