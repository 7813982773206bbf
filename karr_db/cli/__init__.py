"""``karr-db``: the command line over karr_db's Python API (no SQL of its own).

Each command resolves the database (``--database``, else ``KARR_DATABASE_URL``,
else the SQLite default), calls :mod:`karr_db.migrations`, :mod:`karr_db.importing`
or a repository through :class:`karr_db.database.Database`, and prints a table or,
with ``--json``, JSON. A command's module is imported only when it runs
(``_app.COMMAND_MODULES``), so each command pays only for what it uses.
"""

from karr_db.cli._app import app

__all__ = ["app"]
