"""karr_db: the data layer of KARR, the results store of KITT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("karr-db")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

#: The schema version this release migrates to: the reference's version 2 plus
#: revision 3 (the append-only guard on events) and revision 4 (query indexes).
#: A test ties it to the scripts.
SCHEMA_VERSION = 4

__all__ = ["SCHEMA_VERSION", "__version__"]
