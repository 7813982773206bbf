"""``karr-db``: the command line over karr_db's Python API (no SQL of its own).

Each command resolves the database (``--database``, else ``KARR_DATABASE_URL``,
else the SQLite default), calls :mod:`karr_db.migrations`, :mod:`karr_db.importing`
or a repository through :class:`karr_db.database.Database`, and prints a table or,
with ``--json``, JSON.
"""

from karr_db.cli import analysis, operations, results, schema, security
from karr_db.cli._app import app

__all__ = ["analysis", "app", "operations", "results", "schema", "security"]
