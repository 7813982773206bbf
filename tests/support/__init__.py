"""What the tests (and ``bench/``) share: databases, documents, the earlier system, workers.

Imported as ``tests.support.<module>`` everywhere, so each module loads once.
"""

from __future__ import annotations

from pathlib import Path

#: The checkout's root (where ``alembic.ini`` and ``pyproject.toml`` are).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: ``tests/data``: the reference facts and the sample documents.
DATA_DIR = REPO_ROOT / "tests" / "data"
#: KITT result documents written for these tests (three runs: an accuracy suite
#: on tgi that failed one benchmark, and a throughput and a latency run on ollama).
SAMPLES_DIR = DATA_DIR / "samples"
