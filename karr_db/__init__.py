"""karr_db: the data layer of KARR, the results store of KITT.

The public API::

    from karr_db import Database, transaction, run_transaction, StorageError

    with Database(url) as db, db.unit_of_work() as uow:
        uow.results.save(document)

Importing the package stays light (the errors and two constants): the rest is
imported when first named, so ``karr-db`` commands and applications that use a
part of the layer pay only for that part (the module ``__getattr__`` of PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from karr_db.errors import (
    AdoptionError,
    AlreadyExistsError,
    AmbiguousIdError,
    BackupError,
    ConcurrencyError,
    ConnectionLostError,
    CounterLimitError,
    DatabaseURLError,
    DowngradeRefusedError,
    FieldError,
    InvalidQueryError,
    InvalidTokenError,
    InvalidTransitionError,
    KarrError,
    MissingDatabaseError,
    NewerSchemaError,
    NotFoundError,
    NotReadyError,
    PageLimitError,
    RevisionContractError,
    SchemaError,
    StillReferencedError,
    StorageError,
    TransientStorageError,
    UnadoptableSchemaError,
    UnversionedDatabaseError,
    ValidationError,
)
from karr_db.head import SCHEMA_VERSION

if TYPE_CHECKING:
    from karr_db.database import Database
    from karr_db.uow import UnitOfWork, run_transaction, transaction


#: Names imported on first use, and the module each comes from.
_LAZY = {
    "Database": "karr_db.database",
    "UnitOfWork": "karr_db.uow",
    "transaction": "karr_db.uow",
    "run_transaction": "karr_db.uow",
}

__all__ = [
    "SCHEMA_VERSION",
    "AdoptionError",
    "AlreadyExistsError",
    "AmbiguousIdError",
    "BackupError",
    "ConcurrencyError",
    "ConnectionLostError",
    "CounterLimitError",
    "Database",
    "DatabaseURLError",
    "DowngradeRefusedError",
    "FieldError",
    "InvalidQueryError",
    "InvalidTokenError",
    "InvalidTransitionError",
    "KarrError",
    "MissingDatabaseError",
    "NewerSchemaError",
    "NotFoundError",
    "NotReadyError",
    "PageLimitError",
    "RevisionContractError",
    "SchemaError",
    "StillReferencedError",
    "StorageError",
    "TransientStorageError",
    "UnadoptableSchemaError",
    "UnitOfWork",
    "UnversionedDatabaseError",
    "ValidationError",
    "__version__",
    "run_transaction",
    "transaction",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value: Any = version("karr-db")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            value = "0.0.0"
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'karr_db' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
