"""KITT 1.7's ``ResultService``: the web pages' view of a result store.

KITT builds it on whatever ``ResultStore`` it has; here it is built on
:class:`~karr_db.kitt.KarrResultStore` (from a URL or a
:class:`~karr_db.database.Database`) or on any store passed in. The answers are
KITT's, computed the way KITT computes them from the store's interface, so the
store's documented differences (content-derived ids, identical documents
stored once) show through unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from karr_db.database import Closing, Database
from karr_db.kitt import KarrResultStore, ResultStore
from karr_db.kitt_services._base import whole

__all__ = ["ResultService"]


class ResultService(Closing):
    """KITT's ``ResultService``. ``_store`` keeps KITT's attribute name: KITT's
    agents API saves reported results through ``result_service._store``."""

    def __init__(self, store: ResultStore | str | URL | Database | None = None) -> None:
        self._owns = not isinstance(store, ResultStore)
        self._store: ResultStore = (
            store if isinstance(store, ResultStore) else KarrResultStore(store)
        )

    @property
    def store(self) -> ResultStore:
        return self._store

    def list_results(
        self,
        model: str = "",
        engine: str = "",
        suite_name: str = "",
        page: int = 1,
        per_page: int = 25,
    ) -> dict[str, Any]:
        """Newest first: ``items`` (documents), ``total``, ``page``, ``per_page``, ``pages``."""
        whole("result page", "page", page)
        whole("result page", "per_page", per_page)
        filters = {
            key: value
            for key, value in (("model", model), ("engine", engine), ("suite_name", suite_name))
            if value
        }
        total = self._store.count(filters=filters or None)
        items = self._store.query(
            filters=filters or None,
            order_by="-timestamp",
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        return {
            "items": items,
            "total": total,
            "page": page,
            "per_page": per_page,
            "pages": -(-total // per_page) if per_page else 0,
        }

    def get_result(self, result_id: str) -> dict[str, Any] | None:
        return self._store.get_result(result_id)

    def delete_result(self, result_id: str) -> bool:
        return self._store.delete_result(result_id)

    def aggregate(self, group_by: str, metrics: list[str] | None = None) -> list[dict[str, Any]]:
        return self._store.aggregate(group_by=group_by, metrics=metrics)

    def get_summary(self) -> dict[str, Any]:
        """The dashboard's totals: results, passed, pass rate (whole percent), engines, models."""
        total = self._store.count()
        passed = self._store.count(filters={"passed": True})
        by_engine = self._store.aggregate(group_by="engine")
        by_model = self._store.aggregate(group_by="model")
        return {
            "total_results": total,
            "total_passed": passed,
            "pass_rate": round(passed / total * 100) if total > 0 else 0,
            "engine_count": len(by_engine),
            "model_count": len(by_model),
            "engines": by_engine,
            "models": by_model,
        }

    def get_recent(self, limit: int = 10) -> list[dict[str, Any]]:
        return self._store.query(order_by="-timestamp", limit=limit)

    def compare_results(self, result_ids: list[str]) -> list[dict[str, Any]]:
        """The documents of the ids that exist, in the order asked."""
        found = (self._store.get_result(result_id) for result_id in result_ids)
        return [document for document in found if document]

    def import_directory(self, directory: Path) -> int:
        """Import a tree of ``metrics.json`` files (0 for a store that cannot)."""
        importer = getattr(self._store, "import_directory", None)
        return int(importer(directory)) if importer is not None else 0

    def close(self) -> None:
        """Close a store this service opened itself."""
        if self._owns:
            self._store.close()
