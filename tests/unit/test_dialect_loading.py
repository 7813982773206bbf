"""The dialect seam imports an implementation when its dialect is first asked for
(so SQLite users never load SQLAlchemy's PostgreSQL dialect).

What must survive the laziness: PostgreSQL's compilation rule for
``group_digest`` (md5) applies to every statement compiled for PostgreSQL, even
one compiled before anything asked the seam for PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from karr_db.dialects import EVENT_LOG_LOCK_KEY, for_dialect
from karr_db.errors import DatabaseURLError


def _fresh(code: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter; the JSON object it prints last."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_seam_loads_no_implementation() -> None:
    found = _fresh(
        """
        import json, sys
        import karr_db.dialects, karr_db.models, karr_db.repositories.events
        from karr_db.repositories.events import EVENT_LOG_LOCK_KEY
        print(json.dumps({m: m in sys.modules for m in (
            "karr_db.dialects.sqlite", "karr_db.dialects.postgresql",
            "sqlalchemy.dialects.postgresql",
        )}))
        """
    )
    assert found == {
        "karr_db.dialects.sqlite": False,
        "karr_db.dialects.postgresql": False,
        "sqlalchemy.dialects.postgresql": False,
    }


def test_each_dialect_loads_its_own_implementation_only() -> None:
    found = _fresh(
        """
        import json, sys
        from karr_db.dialects import for_dialect
        seen = {"sqlite": for_dialect("sqlite").name}
        seen["postgresql loaded"] = "sqlalchemy.dialects.postgresql" in sys.modules
        seen["postgresql"] = for_dialect("postgresql").name
        seen["same object"] = for_dialect("postgresql") is for_dialect("postgresql")
        print(json.dumps(seen))
        """
    )
    assert found == {
        "sqlite": "sqlite",
        "postgresql loaded": False,
        "postgresql": "postgresql",
        "same object": True,
    }


def test_group_digest_is_md5_on_postgresql_even_before_the_seam_is_asked() -> None:
    # The leaderboard aggregate's upsert compiled straight from SQLAlchemy's
    # PostgreSQL dialect, as a bare `compile()` would: the first compilation
    # loads the implementation and its rule.
    found = _fresh(
        """
        import json, sys
        from sqlalchemy import literal
        from sqlalchemy.dialects import postgresql, sqlite
        from karr_db.dialects import group_digest
        before = "karr_db.dialects.postgresql" in sys.modules
        key = group_digest(literal("k"))
        print(json.dumps({
            "loaded before": before,
            "postgresql": str(key.compile(dialect=postgresql.dialect())),
            "sqlite": str(key.compile(dialect=sqlite.dialect())),
            "postgresql again": str(key.compile(dialect=postgresql.dialect())),
        }))
        """
    )
    assert found["loaded before"] is False
    assert str(found["postgresql"]).startswith("md5(")
    assert found["postgresql again"] == found["postgresql"]
    assert "md5" not in str(found["sqlite"])


def test_the_event_log_key_is_the_implementations() -> None:
    from karr_db.dialects import postgresql
    from karr_db.migrations import frozen
    from karr_db.repositories import events

    assert postgresql.EVENT_LOG_LOCK_KEY == events.EVENT_LOG_LOCK_KEY == EVENT_LOG_LOCK_KEY
    # The revisions' karr_append_events takes the lock the layer's appends take.
    assert frozen.EVENTS_LOCK_KEY == EVENT_LOG_LOCK_KEY


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(DatabaseURLError, match="supports sqlite and postgresql"):
        for_dialect("mysql")
