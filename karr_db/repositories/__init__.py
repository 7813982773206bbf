"""Repositories: take a session, never commit, return frozen Pydantic DTOs.

:class:`DTO` is the base of every DTO they return, :class:`Page` the one page of a
listing.
"""

from karr_db.repositories._common import DTO, Page

__all__ = ["DTO", "Page"]
