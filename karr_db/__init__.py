"""karr_db: the data layer of KARR, the results store of KITT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("karr-db")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

#: The schema version this release writes (the reference's "current schema version").
SCHEMA_VERSION = 2

__all__ = ["SCHEMA_VERSION", "__version__"]
