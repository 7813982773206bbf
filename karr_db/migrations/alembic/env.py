"""Alembic environment for karr_db: wiring only.

The work (URL resolution, the migration lock, refusing newer or unversioned
databases, adopting legacy ones) lives in ``karr_db.migrations.runner`` so that
``alembic upgrade head`` and the Python API behave identically.
"""

from logging.config import fileConfig
from typing import cast

from alembic import context
from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError

from karr_db.errors import KarrError
from karr_db.migrations.runner import run_offline, run_online

# Logging only from a file that configures it: a minimal alembic.ini (no
# [formatters] section) would otherwise crash fileConfig with KeyError.
config = context.config
if (
    config.config_file_name is not None
    and config.attributes.get("configure_logger", True)
    and config.file_config.has_section("formatters")
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# ``alembic.context`` is a module that proxies the running EnvironmentContext.
environment = cast(EnvironmentContext, context)
try:
    if context.is_offline_mode():
        run_offline(environment)
    else:
        run_online(environment)
except KarrError as exc:
    # From the ``alembic`` command (it sets cmd_opts), a refusal is alembic's own
    # one-line "FAILED: ..." (``--raiseerr`` shows the traceback); callers of the
    # Python API keep the layer's exception.
    if context.config.cmd_opts is None:
        raise
    raise CommandError(str(exc)) from exc
