"""Alembic environment for karr_db: wiring only.

The work (URL resolution, the migration lock, refusing newer or unversioned
databases, adopting legacy ones) lives in ``karr_db.migrations.runner`` so that
``alembic upgrade head`` and the Python API behave identically.
"""

from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError

from karr_db.errors import KarrError
from karr_db.migrations.runner import run_offline, run_online

if context.config.config_file_name is not None and context.config.attributes.get(
    "configure_logger", True
):
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

try:
    if context.is_offline_mode():
        run_offline(context)
    else:
        run_online(context)
except KarrError as exc:
    # From the ``alembic`` command (it sets cmd_opts), a refusal is alembic's own
    # one-line "FAILED: ..." (``--raiseerr`` shows the traceback); callers of the
    # Python API keep the layer's exception.
    if context.config.cmd_opts is None:
        raise
    raise CommandError(str(exc)) from exc
