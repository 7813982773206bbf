"""The layer's own exceptions: callers never need to catch a driver exception."""

from __future__ import annotations


class KarrError(Exception):
    """Base class of every error karr_db raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other arguments than their message, so the default
        # pickling (``cls(*args)``) would fail to rebuild them; worker processes
        # and pools must be able to hand these errors back to their parent.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[KarrError], args: tuple[object, ...], state: dict[str, object]) -> KarrError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class DatabaseURLError(KarrError, ValueError):
    """A database URL that cannot be parsed or names an unsupported database.

    Also a :class:`ValueError`, which is what a bad URL raised before.
    """


class SchemaError(KarrError):
    """The database's schema cannot be used or migrated as asked."""


class RevisionContractError(SchemaError):
    """A migration script has no valid ``contract`` (a defect of the scripts, not
    of the database): named, so the broken revision is found at once."""

    def __init__(self, revision: str, problem: str) -> None:
        self.revision = revision
        super().__init__(f"revision {revision}: {problem}")


class NewerSchemaError(SchemaError):
    """The database was written by a newer release than this one."""

    def __init__(self, found: str, supported: str) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"database schema is at {found}, newer than {supported}, the newest this "
            "release of karr_db knows; upgrade karr_db (nothing was changed)"
        )


class UnversionedDatabaseError(SchemaError):
    """KARR tables exist but nothing says which schema version they follow."""

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        super().__init__(
            f"database has KARR tables ({', '.join(tables)}) but no schema_version rows and "
            "no alembic_version: cannot tell which schema they follow, so nothing was changed; "
            "restore the version table or migrate into an empty database"
        )


class DowngradeRefusedError(SchemaError):
    """Migrations are forward-only."""

    def __init__(self) -> None:
        super().__init__(
            "downgrades are not supported: KARR migrations are forward-only "
            "(nothing was changed); restore a backup to go back"
        )


class AdoptionError(SchemaError):
    """A legacy database could not be brought to the reference schema."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        row: object = None,
    ) -> None:
        self.table = table
        self.column = column
        self.row = row
        where = ".".join(p for p in (table, column) if p)
        if row is not None:
            where += f" (row {row!r})"
        full = f"cannot adopt legacy database: {where}: {message}" if where else message
        super().__init__(full + "; nothing was changed")


class UnadoptableSchemaError(SchemaError):
    """``schema_version`` names a schema that adoption cannot take: a KITT schema
    newer than this release knows (above 11), or a number KITT never wrote."""

    def __init__(self, version: int, adoptable: tuple[int, ...]) -> None:
        self.version = version
        self.adoptable = adoptable
        known = f"{adoptable[0]} to {adoptable[-1]}" if adoptable else "none"
        super().__init__(
            f"database is at KITT's schema {version} and has no alembic_version: this "
            f"release adopts KITT's schemas {known}, so nothing was changed. Install a "
            "karr_db release that adopts schema "
            f"{version}, or keep using the database with the KITT release that wrote it; "
            "if karr_db wrote this database and its alembic_version table was lost, restore "
            "that table from a backup"
        )


class NotReadyError(SchemaError):
    """The database is not at the schema this release reads and writes (empty,
    not yet adopted, behind, or at head with the rows of its runs' documents still to
    derive: ``kind`` is "empty", "legacy", "behind" or "derivation"); the message
    names the next step. Tools that migrate open it with
    ``Database(url, require_current=False)``."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class MissingDatabaseError(SchemaError):
    """A SQLite file to be read does not exist: reading never creates one."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"database file {path} does not exist (check the path; `karr-db upgrade` "
            "creates a new database there)"
        )


class BackupError(KarrError):
    """A backup copy could not be written (or is not karr-db's to write)."""


# --- domain errors raised by the repositories --------------------------------


class NotFoundError(KarrError):
    """The requested row does not exist."""

    def __init__(self, entity: str, key: object) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} {key!r} not found")


class AlreadyExistsError(KarrError):
    """A row with the same unique key already exists."""

    def __init__(self, entity: str, key: object) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} {key!r} already exists")


class InvalidTransitionError(KarrError):
    """A status change that the lifecycle does not allow (or that another process won)."""

    def __init__(self, entity: str, key: object, current: str | None, target: str) -> None:
        self.entity = entity
        self.key = key
        self.current = current
        self.target = target
        super().__init__(f"{entity} {key!r} cannot go from {current!r} to {target!r}")


class StillReferencedError(KarrError):
    """A row cannot be removed while other rows point to it."""

    def __init__(self, entity: str, key: object, referenced_by: list[str]) -> None:
        self.entity = entity
        self.key = key
        self.referenced_by = referenced_by
        super().__init__(
            f"{entity} {key!r} is still referenced by {', '.join(referenced_by)}; "
            "nothing was deleted"
        )


class InvalidTokenError(KarrError):
    """An agent token did not verify. Never carries the token itself."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        super().__init__(f"invalid token for agent {agent!r}")


class FieldError(KarrError):
    """One bad field of an input, by its dotted location."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ValidationError(KarrError):
    """Input rejected before anything was written; names every bad field."""

    def __init__(self, what: str, errors: list[FieldError]) -> None:
        self.what = what
        self.errors = errors
        details = "; ".join(str(e) for e in errors)
        super().__init__(f"invalid {what}: {details}")

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]

    @classmethod
    def from_pydantic(cls, what: str, exc: Exception) -> ValidationError:
        """Translate a ``pydantic.ValidationError`` (without echoing input values)."""
        from pydantic import ValidationError as PydanticValidationError

        if not isinstance(exc, PydanticValidationError):
            return cls(what, [FieldError("<input>", str(exc))])
        errors = [
            FieldError(".".join(str(p) for p in err["loc"]) or "<document>", err["msg"])
            for err in exc.errors(include_input=False, include_url=False)
        ]
        return cls(what, errors)


class InvalidQueryError(KarrError):
    """An unknown filter, order field or malformed cursor."""


class PageLimitError(ValidationError, InvalidQueryError):
    """A page size outside ``1..PAGE_LIMIT`` (:data:`karr_db.limits.PAGE_LIMIT`).

    A :class:`ValidationError` naming the parameter (``limit``, ``batch_size``),
    and still an :class:`InvalidQueryError`, which is what it was before the
    repositories shared one page contract.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__("page request", [FieldError(field, message)])


class StorageError(KarrError):
    """The database refused an operation for a reason outside the input (lock, lost connection).

    Carries the driver's message so nobody above the repository needs to
    catch a driver exception; the caller's transaction should be rolled back.
    """

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"{operation} failed in the database: {detail}")

    #: Whether running the whole transaction again may succeed (see
    #: :func:`karr_db.uow.run_transaction`).
    retryable: bool = False


class TransientStorageError(StorageError):
    """The database rolled the transaction back for a passing reason; running it again may work.

    Nothing of the failed transaction was written (except possibly when a
    :class:`ConnectionLostError` says ``during_commit``).
    """

    retryable = True


class ConcurrencyError(TransientStorageError):
    """Another transaction got in the way: a deadlock, a serialization failure, or a
    SQLite lock still held after the busy timeout. Always safe to re-run."""


class ConnectionLostError(TransientStorageError):
    """The connection to the database broke (server restarted, network, backend killed)
    or could not be made.

    ``during_commit`` means the failure hit the COMMIT itself, so the outcome is
    unknown: only idempotent work may be re-run blindly. Otherwise the
    transaction never committed and nothing of it was written.
    """

    def __init__(self, operation: str, detail: str, *, during_commit: bool = False) -> None:
        self.during_commit = during_commit
        super().__init__(operation, detail)


class CounterLimitError(KarrError):
    """Progress counters would pass the planned total; nothing was changed."""

    def __init__(self, entity: str, key: object, total_runs: int, finished_runs: int) -> None:
        self.entity = entity
        self.key = key
        self.total_runs = total_runs
        self.finished_runs = finished_runs
        super().__init__(
            f"{entity} {key!r} plans {total_runs} run(s) but would count {finished_runs} "
            "finished; nothing was changed"
        )


class AmbiguousIdError(InvalidQueryError):
    """A shortened id matches several stored ones; the message lists them."""

    def __init__(self, entity: str, prefix: str, candidates: list[str], total: int) -> None:
        self.entity = entity
        self.prefix = prefix
        self.candidates = candidates
        self.total = total
        more = f" and {total - len(candidates)} more" if total > len(candidates) else ""
        super().__init__(
            f"{entity} id prefix {prefix!r} is ambiguous: it matches {total} {entity}s "
            f"({', '.join(candidates)}{more}); give more characters"
        )
