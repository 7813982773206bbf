"""The benchmark's code paths at tiny sizes, so that ``make bench`` cannot rot.

No timings are checked (machines are noisy); the bench itself checks that the
project and the raw-driver baseline give the same answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import main


def test_bench_runs_every_workload(
    backend: str, postgres_server: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--tiny", "--dialect", backend, "--workdir", str(tmp_path), "--scale", "25"]
    if backend == "postgresql":
        assert postgres_server is not None
        args += ["--postgres", postgres_server]
    assert main(args) == 0
    out = capsys.readouterr().out
    for workload in (
        "save 1 document",
        "import",
        "leaderboard",
        "leaderboard count/avg/min/max (aggregate)",
        "reference schema / ours",
        "tail reader",
        "export",
        "alembic upgrade head",
        "adopt + upgrade",
    ):
        assert workload in out
    assert "scaling" in out
    assert list(tmp_path.iterdir()) == []  # every file and database cleaned up
