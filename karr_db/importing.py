"""Import KITT result files into a database and export stored runs back to files.

Files are validated one by one and stored in batches: each batch is one
transaction with a few statements per table (see
:meth:`~karr_db.repositories.results.ResultsRepository.save_many`). One bad
file never stops the others and never leaves a partial run: a file that fails
validation is reported and left out of its batch, and a batch the database
refuses is re-run one file per transaction to find the culprit. The report
says, per file, whether it was imported, already present, or rejected and why.

Exported files use Python's JSON dialect, the one KITT itself writes: NaN and
the infinities appear as the bare ``NaN``/``Infinity`` tokens, so importing an
exported file yields an equal document and therefore the same run id.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from karr_db.documents import ValidatedDocument, load_document
from karr_db.errors import KarrError
from karr_db.repositories.results import ResultsRepository, RunFilter
from karr_db.repositories.results.dto import ImportOutcome, ImportReport
from karr_db.uow import run_transaction, transaction

__all__ = [
    "RESULT_FILE_NAME",
    "collect_files",
    "export_run",
    "export_runs",
    "import_file",
    "import_files",
    "import_paths",
    "write_document",
]

#: The name KITT gives its result document; directory imports look for it.
RESULT_FILE_NAME = "metrics.json"


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files to import: each file as given; below each directory every
    ``metrics.json`` (KITT's name), or every ``*.json`` when it holds none (a
    folder of collected documents).

    Paths that do not exist are kept, so the import can report them.
    """
    seen: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob(RESULT_FILE_NAME) if p.is_file())
            if not found:
                found = sorted(p for p in path.rglob("*.json") if p.is_file())
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
        # Deadlocks, SQLite locks and lost connections are retried (bounded); a save
        # is idempotent (its run id comes from the content), so even a connection
        # lost during COMMIT may be: the rerun finds the run.
        saved = run_transaction(
            engine,
            lambda uow: uow.results.save(data),
            immediate=True,
            idempotent=True,
            operation="importing a file",
        )
    except KarrError as exc:
        return ImportOutcome(path=name, status="rejected", reason=str(exc))
    except SQLAlchemyError as exc:  # defensive: the repository translates driver errors
        return ImportOutcome(path=name, status="rejected", reason=f"database error: {exc}")
    return ImportOutcome(
        path=name,
        status="imported" if saved.created else "already_present",
        run_id=saved.run.id,
    )


#: Files per transaction of :func:`import_files`: large enough that a commit
#: (an fsync) and the per-statement costs are shared by many runs, small enough
#: that a batch's rows stay a few megabytes.
IMPORT_BATCH_SIZE = 200


def import_files(
    engine: Engine,
    paths: Iterable[str | Path],
    *,
    batch_size: int = IMPORT_BATCH_SIZE,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[ImportOutcome]:
    """Import files in batches of ``batch_size`` per transaction; one outcome per file, in order.

    Outcomes of a batch are yielded once it is committed. If the database
    refuses a batch, its files are imported again one transaction each
    (:func:`import_file`), so only the file at fault is rejected.
    ``should_stop`` is asked before each batch: true ends the import there,
    so the outcomes yielded are exactly the files handled (a Ctrl-C).
    """
    batch: list[Path] = []
    for path in paths:
        batch.append(Path(path))
        if len(batch) >= batch_size:
            if should_stop is not None and should_stop():
                return
            yield from _import_batch(engine, batch)
            batch = []
    if batch and not (should_stop is not None and should_stop()):
        yield from _import_batch(engine, batch)


def _import_batch(engine: Engine, paths: list[Path]) -> list[ImportOutcome]:
    outcomes: list[ImportOutcome | None] = []
    valid: list[tuple[int, ValidatedDocument]] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            outcomes.append(
                ImportOutcome(
                    path=str(path), status="rejected", reason=f"cannot read: {exc.strerror}"
                )
            )
            continue
        try:
            valid.append((len(outcomes), load_document(data)))
        except KarrError as exc:
            outcomes.append(ImportOutcome(path=str(path), status="rejected", reason=str(exc)))
            continue
        outcomes.append(None)
    if valid:
        try:
            with transaction(engine, immediate=True) as uow:
                saved = uow.results.save_many([doc for _, doc in valid])
        except (KarrError, SQLAlchemyError):
            for index, _ in valid:
                outcomes[index] = import_file(engine, paths[index])
        else:
            for (index, _), result in zip(valid, saved, strict=True):
                outcomes[index] = ImportOutcome(
                    path=str(paths[index]),
                    status="imported" if result.created else "already_present",
                    run_id=result.run.id,
                )
    return [o for o in outcomes if o is not None]


def import_paths(
    engine: Engine, paths: Iterable[str | Path], *, batch_size: int = IMPORT_BATCH_SIZE
) -> ImportReport:
    """Import files and directory trees (see :func:`collect_files`) in batched transactions."""
    files = collect_files(paths)
    return ImportReport(outcomes=list(import_files(engine, files, batch_size=batch_size)))


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
    write_document(ResultsRepository(session.connection()).get_document(run_id), target)
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
    for run_id, document in ResultsRepository(session.connection()).iter_documents(
        filters, batch_size=batch_size
    ):
        write_document(document, root / run_id / RESULT_FILE_NAME)
        written += 1
    return written
