"""Pieces every repository shares."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class DTO(BaseModel):
    """Base of every DTO: immutable, built from ORM rows before the session closes."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class Page(DTO, Generic[T]):
    """One page of results and the opaque cursor of the next (``None`` at the end)."""

    items: list[T]
    next_cursor: str | None = None
