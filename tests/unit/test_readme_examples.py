"""Every ```python block of README.md runs as pasted: each in a fresh directory
of its own, as its own program, against the SQLite files it names there.

A block that cannot run here by its nature (lines of another program, KITT's
``create_app``; a primary with its hot standby) says so on the line before it,
``<!-- not run: the reason -->``; those are counted and must give a reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(
    r"^(?:<!-- not run: (?P<reason>[^\n]*?) -->\n)?```python\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def _all_blocks() -> list[tuple[int, str, str | None]]:
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 1, m["code"], m["reason"]) for m in BLOCK.finditer(text)
    ]


def _blocks() -> list[tuple[int, str]]:
    return [(line, code) for line, code, reason in _all_blocks() if reason is None]


def test_blocks_left_out_are_few_and_say_why() -> None:
    left_out = [reason for _, _, reason in _all_blocks() if reason is not None]
    assert len(left_out) <= 2
    assert all(len(reason.split()) >= 3 for reason in left_out)


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
