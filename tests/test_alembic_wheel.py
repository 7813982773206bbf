"""Plain Alembic against an installed wheel, outside the checkout.

The wheel ships the scripts and an ``alembic.ini`` in ``karr_db/migrations/alembic``;
``karr-db alembic ...`` passes through to Alembic with that configuration.
The fresh virtual environment gets the wheel alone; its dependencies come
from this environment's site-packages, appended after its own, so that the
karr_db it imports is the wheel's and not this checkout's editable install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from karr_db.migrations.scripts import head_revision

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("KARR_DATABASE_URL", "PYTHONPATH")
    }
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**environment, "KARR_HOME": str(cwd / "home")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, outside the checkout, with the wheel built from it installed."""
    root = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", root / "dist", REPO_ROOT, cwd=root,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("karr_db-*.whl")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root
        ).stdout.strip()
    )
    (site / "_karr_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", wheel, cwd=root,
    )  # fmt: skip
    if install.returncode != 0 and "no such option: --python" in install.stderr:
        install = _run(
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
            "--target", site, wheel, cwd=root,
        )  # fmt: skip
    assert install.returncode == 0, install.stderr
    where = _run(python, "-c", "import karr_db; print(karr_db.__file__)", cwd=root)
    assert where.stdout.strip().startswith(str(env_dir)), where
    return env_dir


def test_plain_alembic_upgrades_with_the_shipped_ini(installed: Path, tmp_path: Path) -> None:
    python = installed / "bin" / "python"
    ini = _run(
        python, "-c", "import karr_db.migrations.scripts as s; print(s.packaged_ini())",
        cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert ini.startswith(str(installed))
    assert ini.endswith("karr_db/migrations/alembic/alembic.ini")
    url = f"sqlite:///{tmp_path / 'plain.db'}"

    upgraded = _run(python, "-m", "alembic", "-c", ini, "-x", f"url={url}", "upgrade", "head",
                    cwd=tmp_path)  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade" in upgraded.stderr  # the shipped ini configures logging
    current = _run(python, "-m", "alembic", "-c", ini, "-x", f"url={url}", "current", cwd=tmp_path)
    assert current.returncode == 0, current.stderr
    assert f"{head_revision()} (head)" in current.stdout


def test_a_minimal_ini_without_logging_sections_works(installed: Path, tmp_path: Path) -> None:
    python = installed / "bin" / "python"
    location = _run(
        python, "-c", "import karr_db.migrations.scripts as s; print(s.script_location())",
        cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    minimal = tmp_path / "alembic.ini"
    minimal.write_text(f"[alembic]\nscript_location = {location}\n")
    url = f"sqlite:///{tmp_path / 'minimal.db'}"
    upgraded = _run(python, "-m", "alembic", "-x", f"url={url}", "upgrade", "head", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "KeyError" not in upgraded.stderr


def test_karr_db_alembic_passes_through(installed: Path, tmp_path: Path) -> None:
    karr_db = installed / "bin" / "karr-db"
    url = f"sqlite:///{tmp_path / 'through.db'}"
    upgraded = _run(karr_db, "alembic", "-x", f"url={url}", "upgrade", "head", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    current = _run(karr_db, "--database", url, "alembic", "current", cwd=tmp_path)
    assert current.returncode == 0, current.stderr
    assert f"{head_revision()} (head)" in current.stdout
    history = _run(karr_db, "alembic", "history", cwd=tmp_path)
    assert head_revision() in history.stdout
    status = _run(karr_db, "status", "--json", "--database", url, cwd=tmp_path)
    assert '"kind": "managed"' in status.stdout
    helped = _run(karr_db, "alembic", cwd=tmp_path)
    assert helped.returncode == 2
    assert "upgrade" in helped.stdout
