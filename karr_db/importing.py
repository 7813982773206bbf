"""Import KITT result files into a database and export stored runs back to files.

Each file is imported in its own transaction, so one bad file never stops
the others and never leaves a partial run; the report says, per file,
whether it was imported, already present, or rejected and why.

Exported files use Python's JSON dialect, the one KITT itself writes: NaN and
the infinities appear as the bare ``NaN``/``Infinity`` tokens, so importing an
exported file yields an equal document and therefore the same run id.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from karr_db.db import transaction
from karr_db.errors import KarrError
from karr_db.repositories.results import ResultsRepository, RunFilter
from karr_db.repositories.results_dto import ImportOutcome, ImportReport

__all__ = [
    "RESULT_FILE_NAME",
    "collect_files",
    "export_run",
    "export_runs",
    "import_file",
    "import_paths",
    "write_document",
]

#: The name KITT gives its result document; directory imports look for it.
RESULT_FILE_NAME = "metrics.json"


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files to import: each file as given, every ``metrics.json`` below each directory.

    Paths that do not exist are kept, so the import can report them.
    """
    seen: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob(RESULT_FILE_NAME) if p.is_file())
            seen.update(dict.fromkeys(found))
        else:
            seen[path] = None
    return list(seen)


def import_file(engine: Engine, path: str | Path) -> ImportOutcome:
    """Import one file in its own transaction; never raises for a bad file."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return ImportOutcome(path=name, status="rejected", reason=f"cannot read: {exc.strerror}")
    try:
        with transaction(engine, immediate=True) as session:
            saved = ResultsRepository(session).save(data)
    except KarrError as exc:
        return ImportOutcome(path=name, status="rejected", reason=str(exc))
    except SQLAlchemyError as exc:  # defensive: the repository translates driver errors
        return ImportOutcome(path=name, status="rejected", reason=f"database error: {exc}")
    return ImportOutcome(
        path=name,
        status="imported" if saved.created else "already_present",
        run_id=saved.run.id,
    )


def import_paths(engine: Engine, paths: Iterable[str | Path]) -> ImportReport:
    """Import files and directory trees (see :func:`collect_files`), one transaction each."""
    return ImportReport(outcomes=[import_file(engine, path) for path in collect_files(paths)])


def write_document(document: Any, path: Path) -> None:
    """Write a document atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_run(session: Session, run_id: str, path: str | Path) -> Path:
    """Write one stored run's document to ``path``."""
    target = Path(path)
    write_document(ResultsRepository(session).get_document(run_id), target)
    return target


def export_runs(
    session: Session,
    directory: str | Path,
    filters: RunFilter | Mapping[str, Any] | None = None,
    *,
    batch_size: int = 100,
) -> int:
    """Write every matching run to ``directory/<run id>/metrics.json``; returns the count.

    Documents are streamed from the database in batches, so memory does not
    grow with the number of runs; the layout can be imported back as a tree.
    """
    root = Path(directory)
    written = 0
    for run_id, document in ResultsRepository(session).iter_documents(
        filters, batch_size=batch_size
    ):
        write_document(document, root / run_id / RESULT_FILE_NAME)
        written += 1
    return written
