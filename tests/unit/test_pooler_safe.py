"""No session state that a transaction-mode pooler cannot carry, anywhere in karr_db:
the server connection under a session changes between transactions there.

tests/deploy runs the code through a real PgBouncer; this scan keeps a new
statement of one of these kinds from arriving unnoticed in code those tests do
not reach. LISTEN is allowed only where it is chosen against a pooler
(``dialects/postgresql.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import karr_db

PACKAGE = Path(karr_db.__file__).parent
SESSION_STATE = {
    "a session-level advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\("),
    "a session-level SET": re.compile(
        r"[\"']SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)\w+\s*(=|TO\b)", re.IGNORECASE
    ),
    "a startup parameter": re.compile(r"[\"']options[\"']\s*:"),
    "a prepared statement": re.compile(r"\bprepare\s*=\s*True"),
    "LISTEN": re.compile(r"[\"']LISTEN\b"),
}
LISTEN_ALLOWED = PACKAGE / "dialects" / "postgresql.py"


def test_no_session_state_a_pooler_cannot_carry() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for what, pattern in SESSION_STATE.items():
                if what == "LISTEN" and path == LISTEN_ALLOWED:
                    continue
                if pattern.search(line):
                    found.append(f"{path.relative_to(PACKAGE)}:{number}: {what}")
    assert found == []


def test_the_scan_finds_each_kind() -> None:
    samples = {
        "a session-level advisory lock": "SELECT pg_advisory_lock(1)",
        "a session-level SET": "exec('SET TimeZone = UTC')",
        "a startup parameter": "{'options': '-c TimeZone=UTC'}",
        "a prepared statement": "cursor.execute(sql, prepare=True)",
        "LISTEN": "exec('LISTEN karr_events')",
    }
    for what, sample in samples.items():
        assert SESSION_STATE[what].search(sample), what
    assert not SESSION_STATE["a session-level SET"].search("exec(\"SET LOCAL TimeZone = 'UTC'\")")
