"""What a revision or adoption runs stays what it was when it was written.

No revision module (``karr_db/migrations/alembic``, which is no package, so the
import-linter contract in pyproject.toml cannot see it), nor the adoption
package and the steps revisions call, may reach the code that derives rows or
saves documents, directly or through what it imports, at module level or
inside a function: that code moves on with the models, and a revision that ran
it would do something else in each release. Deriving is ``upgrade``'s own step
after the revisions (``karr_db.migrations.derivation``).

What revisions share (``karr_db.migrations.frozen``) is frozen with them: it
imports the standard library, SQLAlchemy and Alembic and nothing of karr_db, so
nothing it reaches moves on with the models.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp
import pytest

import karr_db

PACKAGE = Path(karr_db.__file__).resolve().parent
ALEMBIC = PACKAGE / "migrations" / "alembic"
REVISIONS = sorted((ALEMBIC / "versions").glob("*.py"))
FROZEN = PACKAGE / "migrations" / "frozen.py"
#: What the revisions' shared pieces may import.
FROZEN_MAY_IMPORT = frozenset({"sqlalchemy", "alembic", *sys.stdlib_module_names})

#: The live code: deriving, the save path's document checks, the repositories.
FORBIDDEN = ("karr_db.derive", "karr_db.documents", "karr_db.repositories", "karr_db.uow")

#: What revisions and adoption run: the adoption package, the steps revisions
#: call (ops), the runner env.py calls, and the derivation marker they write.
MIGRATION_MODULES = (
    "karr_db.migrations.adopt",
    "karr_db.migrations.ops",
    "karr_db.migrations.pending",
    "karr_db.migrations.runner",
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # What runs: imports under TYPE_CHECKING are for the type checker only.
    return grimp.build_graph("karr_db", exclude_type_checking_imports=True)


def _imported(path: Path, graph: grimp.ImportGraph) -> set[str]:
    """The karr_db modules a file imports anywhere in it (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from karr_db.migrations import ops`` imports the module ops.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(n for n in names if n in graph.modules)
    return found


def _reached(modules: set[str], graph: grimp.ImportGraph) -> set[str]:
    reached = set(modules)
    for module in modules:
        reached |= graph.find_upstream_modules(module)
    return reached


def _live(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(FORBIDDEN))


@pytest.mark.parametrize("path", [*REVISIONS, ALEMBIC / "env.py", FROZEN], ids=lambda p: p.name)
def test_no_revision_reaches_live_code(path: Path, graph: grimp.ImportGraph) -> None:
    imported = _imported(path, graph)
    assert _live(_reached(imported, graph)) == [], path.name


def test_the_revisions_are_all_read() -> None:
    assert len(REVISIONS) >= 20
    assert any(p.name.startswith("0007_") for p in REVISIONS)


@pytest.mark.parametrize("module", MIGRATION_MODULES)
def test_adoption_and_the_revision_steps_reach_no_live_code(
    module: str, graph: grimp.ImportGraph
) -> None:
    package = {m for m in graph.modules if m == module or m.startswith(f"{module}.")}
    assert _live(_reached(package, graph)) == []


def test_the_check_sees_an_import_inside_a_function(
    tmp_path: Path, graph: grimp.ImportGraph
) -> None:
    """The way revision 0007 used to reach derivation: a step importing it when run."""
    revision = tmp_path / "0099_example.py"
    revision.write_text(
        "from karr_db.migrations import ops\n\n"
        "def upgrade() -> None:\n"
        "    from karr_db.derive import fill_fingerprints\n"
        "    fill_fingerprints(None)\n",
        "utf-8",
    )
    live = _live(_reached(_imported(revision, graph), graph))
    assert "karr_db.derive" in live
    assert any(m.startswith("karr_db.repositories") for m in live)  # through derivation


def _top_level_imports(path: Path) -> set[str]:
    """The top-level packages a file imports anywhere in it (relative imports as ``.``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module.split(".")[0] if node.level == 0 and node.module else ".")
    return found


def test_the_shared_pieces_import_only_the_standard_library_sqlalchemy_and_alembic() -> None:
    imported = _top_level_imports(FROZEN)
    assert {"sqlalchemy", "alembic"} <= imported  # the check reads the real file
    assert sorted(imported - FROZEN_MAY_IMPORT) == []


def test_the_shared_pieces_check_sees_a_karr_db_import(tmp_path: Path) -> None:
    shared = tmp_path / "frozen.py"
    shared.write_text(
        "import sqlalchemy as sa\n\n"
        "def column() -> None:\n"
        "    from karr_db.models import Base\n\n"
        "from . import guards\n",
        "utf-8",
    )
    assert sorted(_top_level_imports(shared) - FROZEN_MAY_IMPORT) == [".", "karr_db"]
