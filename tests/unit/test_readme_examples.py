"""Every ```python block of README.md runs as pasted: each in a fresh directory
of its own, as its own program, against the SQLite files it names there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_readme_has_python_examples() -> None:
    assert len(_blocks()) >= 5


@pytest.mark.parametrize(
    ("line", "code"), _blocks(), ids=lambda v: f"line{v}" if isinstance(v, int) else ""
)
def test_a_readme_python_block_runs_as_pasted(line: int, code: str, tmp_path: Path) -> None:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("KARR_DATABASE_URL", "PYTHONPATH")
    }
    environment.update(
        KARR_HOME=str(tmp_path / "home"),
        KARR_CONFIG=str(tmp_path / "config.toml"),
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"README.md line {line}:\n{code}\n{done.stderr}"
