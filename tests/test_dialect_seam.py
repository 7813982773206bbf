"""Dialect decisions live in a few known places; everywhere else asks the seam.

``karr_db.dialects`` holds every dialect-specific statement outside DDL and the
TypeDecorators (``models/types.py``); ``db.py`` (soon ``engine.py``) builds the
engines and translates driver errors; ``migrations/`` writes DDL per dialect.
Anywhere else, importing ``sqlalchemy.dialects`` or ``psycopg``, or comparing a
dialect's or URL backend's name, is a new branch the seam should own. Ruff's
banned-api (TID251, pyproject) catches the imports at lint time; this also
catches the comparisons, which no lint rule knows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import karr_db

PACKAGE = Path(karr_db.__file__).parent
ALLOWED = ("models/types.py", "db.py", "engine.py", "dialects/", "migrations/")
DIALECT_NAMES = {"sqlite", "postgresql", "postgres", "psycopg"}


def _allowed(path: Path) -> bool:
    relative = path.relative_to(PACKAGE).as_posix()
    return any(relative == a or (a.endswith("/") and relative.startswith(a)) for a in ALLOWED)


def _is_name_of_dialect(node: ast.expr) -> bool:
    """``<x>.dialect.name``, ``<x>.get_backend_name()`` or a dialect's name as a literal."""
    if isinstance(node, ast.Attribute) and node.attr == "name":
        inner = node.value
        return (isinstance(inner, ast.Attribute) and inner.attr == "dialect") or (
            isinstance(inner, ast.Name) and inner.id == "dialect"
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in {"get_backend_name", "get_driver_name"}
    return isinstance(node, ast.Constant) and node.value in DIALECT_NAMES


def violations(source: str, where: str) -> list[str]:
    """Every dialect decision in ``source``, as ``where:line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            if module.split(".")[0] == "psycopg" or module.startswith("sqlalchemy.dialects"):
                found.append(f"{where}:{node.lineno}: imports {module}")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if sum(_is_name_of_dialect(side) for side in sides) and any(
                isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
            ):
                found.append(f"{where}:{node.lineno}: compares a dialect name")
    return found


def test_dialect_decisions_stay_in_their_places() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if not _allowed(path):
            found.extend(violations(path.read_text(encoding="utf-8"), str(path)))
    assert found == [], "ask karr_db.dialects instead:\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_decision() -> None:
    # The check itself must not go blind: each form it knows is found.
    source = (
        "import psycopg\n"
        "from sqlalchemy.dialects import postgresql\n"
        "a = connection.dialect.name == 'postgresql'\n"
        "b = url.get_backend_name() != 'sqlite'\n"
        "c = dialect.name in ('sqlite',)\n"
    )
    assert [v.split(": ", 1)[1] for v in violations(source, "x")] == [
        "imports psycopg",
        "imports sqlalchemy.dialects",
        "compares a dialect name",
        "compares a dialect name",
        "compares a dialect name",
    ]
