"""Where this release's schema stands: the numbers readiness needs without
importing Alembic, the models or anything else (a leaf module).

Both are held to Alembic's chain by ``tests/migrations/test_readiness.py`` and
``tests/migrations/test_migrations.py``; a new revision moves ``HEAD_REVISION``.
"""

#: The revision this release's models are at: Alembic's head.
HEAD_REVISION = "0030"

#: KITT's schema number this release implements, the highest kept in the
#: ``schema_version`` table: the reference's 1 and 2 and KITT's later 3..11,
#: each recorded by the revision that makes it. karr_db's own revisions beyond
#: KITT's (the append-only guard on events, query indexes, ...) do not change it;
#: they are tracked by the Alembic revision alone
#: (``migrations.status().head_revision``).
SCHEMA_VERSION = 11
