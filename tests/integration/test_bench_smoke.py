"""The benchmark's code paths at tiny sizes, so that ``make bench`` cannot rot.

No timings are checked (machines are noisy); the bench itself checks that the
project and the raw-driver baseline give the same answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main


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


def test_bench_answer_checks_refuse_a_different_answer() -> None:
    """The per-call comparison is what keeps a faster baseline honest: it must refuse."""
    from bench.harness import Disagreement, same_history, same_value

    same_value(3, 3, "count")
    with pytest.raises(Disagreement):
        same_value(3, 4, "count")

    class Point:
        def __init__(self, run_id: str, value: float) -> None:
            self.run_id, self.test_name, self.value = run_id, "t", value

    same_history([Point("a", 1.0)], [("a", None, "t", 1, 1.0)], "pair")
    with pytest.raises(Disagreement):
        same_history([Point("a", 1.0)], [("a", None, "t", 1, 2.0)], "pair")


@pytest.mark.postgres_only
def test_million_bench_runs_at_a_tiny_size(
    postgres_server: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import million

    assert postgres_server is not None
    assert million.main(["--runs", "300", "--repeats", "3", "--postgres", postgres_server]) == 0
    out = capsys.readouterr().out
    for line in ("latest 50 of a model and engine", "metric history", "save", "delete"):
        assert line in out
