"""``python -m karr_db.cli``: the same as the ``karr-db`` script (for ``-X importtime``)."""

from karr_db.cli import app

app(prog_name="karr-db")
