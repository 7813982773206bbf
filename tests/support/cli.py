"""Running ``karr-db`` in-process (Typer's runner) or as a real subprocess, for the CLI tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from karr_db.cli import app

KARR_DB = Path(sys.executable).parent / "karr-db"


@dataclass
class Outcome:
    """What a run of ``karr-db`` printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(*args: str, env: dict[str, str | None] | None = None) -> Outcome:
    """``karr-db ARGS`` in this process; the environment's database URL is ignored unless given."""
    runner = CliRunner()
    environment: dict[str, str | None] = {"KARR_DATABASE_URL": None, **(env or {})}
    result = runner.invoke(app, list(args), env=environment, prog_name="karr-db")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def cli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``karr-db ARGS`` as the installed console script (not a terminal)."""
    environment = {k: v for k, v in os.environ.items() if k != "KARR_DATABASE_URL"}
    return subprocess.run(
        [str(KARR_DB), *args],
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def copy_samples(samples_dir: Path, target: Path) -> list[Path]:
    """The sample documents laid out as KITT writes them: ``<run>/metrics.json``."""
    copied = []
    for sample in sorted(samples_dir.glob("*.json")):
        path = target / sample.stem / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, path)
        copied.append(path)
    return copied


def import_samples(url: str, samples_dir: Path) -> list[str]:
    """Import the samples through the CLI; their run ids, in sample-file order."""
    result = cli("import", "--database", url, "--json", str(samples_dir))
    assert result.exit_code == 0, result.output
    return [o["run_id"] for o in result.json()["outcomes"]]


def write_variants(samples_dir: Path, target: Path, count: int) -> list[Path]:
    """``count`` distinct documents made from the throughput sample, an hour apart
    and with avg_tps rising, as ``<target>/<n>/metrics.json``."""
    from datetime import datetime, timedelta

    base = json.loads((samples_dir / "sample_decode_speed.json").read_text(encoding="utf-8"))
    start = datetime(2026, 1, 1, 12, 0, 0)
    paths = []
    for n in range(count):
        document = json.loads(json.dumps(base))
        document["timestamp"] = (start + timedelta(hours=n)).isoformat()
        for result in document["results"]:
            if "avg_tps" in result["metrics"]:
                result["metrics"]["avg_tps"] = 40.0 + n
        path = target / f"{n:05d}" / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document), encoding="utf-8")
        paths.append(path)
    return paths


def run_in_pty(
    *args: str, columns: int = 80, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, str]:
    """``karr-db ARGS`` on a pseudo-terminal of ``columns`` columns: exit code and screen text."""
    import pty

    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "KARR_DATABASE_URL"}
    environment.update({"COLUMNS": str(columns), "LINES": "50", "TERM": "xterm", **(env or {})})
    with subprocess.Popen(
        [str(KARR_DB), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=environment,
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process is done writing
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=timeout)
    os.close(leader)
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")
