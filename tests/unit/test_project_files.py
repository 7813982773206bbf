"""The files a contributor meets first: the Makefile's install stamps, the
workflow (actionlint), the package metadata and the documentation site."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _make_dry_run(target: str, venv: Path) -> str:
    """The commands ``make TARGET`` would run with the virtualenv at ``venv``."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _installs(commands: str) -> list[str]:
    return [line for line in commands.splitlines() if "pip install" in line and "-e" in line]


def test_make_run_installs_the_runtime_alone(tmp_path: Path) -> None:
    installs = _installs(_make_dry_run("run", tmp_path / "venv"))
    assert installs, "make run on a fresh clone installs karr_db"
    assert all("[dev]" not in line and "-e ." in line for line in installs), installs


@pytest.mark.parametrize("target", ["test", "lint", "docs"])
def test_the_contributor_targets_install_the_dev_extra(target: str, tmp_path: Path) -> None:
    installs = _installs(_make_dry_run(target, tmp_path / "venv"))
    assert any("'.[dev]'" in line for line in installs), installs


def test_a_dev_install_satisfies_make_run_and_a_runtime_one_not_make_test(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed-runtime").touch()
    assert _installs(_make_dry_run("run", venv)) == []
    assert _installs(_make_dry_run("test", venv)) != []
    (venv / ".installed").touch()
    assert _installs(_make_dry_run("test", venv)) == []


def test_the_workflows_pass_actionlint() -> None:
    actionlint = BIN / "actionlint"
    if not actionlint.exists():
        pytest.skip("actionlint is not installed (the dev extra installs it)")
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    done = subprocess.run(
        [str(actionlint), *workflows], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_refuses_the_runner_context_in_job_environment(tmp_path: Path) -> None:
    # The check above can fail: the mistake that kept the workflow from starting.
    actionlint = BIN / "actionlint"
    if not actionlint.exists():
        pytest.skip("actionlint is not installed (the dev extra installs it)")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n"
        "    env:\n      HOME_DIR: ${{ runner.temp }}/x\n    steps:\n      - run: 'true'\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(actionlint), str(bad)], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode != 0
    assert "runner" in done.stdout


def test_the_package_has_classifiers_and_project_urls() -> None:
    meta = metadata("karr-db")
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues"} <= urls.keys()


def test_the_documentation_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = BIN / "mkdocs"
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (the docs extra installs it)")
    site = tmp_path / "site"
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="karr_db.repositories.results.ResultsRepository.save"' in api
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "Quick start" in home
    assert (site / "database" / "index.html").exists()
