"""Kept for one release: the DTO base and the page live in ``_common`` with the rest of
the repository contract (the dialect helpers that were here are in ``karr_db.dialects``)."""

from __future__ import annotations

from karr_db.repositories._common import DTO as DTO
from karr_db.repositories._common import Page as Page
from karr_db.repositories._common import row_builder as row_builder
