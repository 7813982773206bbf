"""karr_db: the data layer of KARR, the results store of KITT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("karr-db")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

#: The reference schema version this release implements, the number kept in the
#: ``schema_version`` table. karr_db's own revisions beyond the reference (the
#: append-only guard on events, query indexes, ...) do not change it; they are
#: tracked by the Alembic revision alone (``migrations.status().head_revision``).
#: A test ties it to the scripts.
SCHEMA_VERSION = 2

__all__ = ["SCHEMA_VERSION", "__version__"]
