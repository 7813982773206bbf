"""Engine profiles: named build and runtime configurations of an inference engine.

KITT's schema 11 (``engine_profiles``). A profile has a unique name, the engine
it configures, the mode the engine runs in (:data:`ENGINE_MODES`) and two JSON
objects, ``build_config`` and ``runtime_config``, that KITT hands to the engine
unread by this layer. Quick tests name the profile they ran with in
``quick_tests.profile_id``, which has no foreign key (as in KITT): deleting a
profile leaves those tests naming an id that no longer resolves, so their
history stays as it was.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update

from karr_db.documents import json_object_problems
from karr_db.errors import AlreadyExistsError, FieldError, NotFoundError, ValidationError
from karr_db.limits import MAX_CONFIG_BYTES, PAGE_LIMIT, text_problem
from karr_db.models import EngineProfile
from karr_db.models.types import utcnow
from karr_db.repositories._base import Named
from karr_db.repositories._common import (
    DTO,
    Page,
    RowShape,
)
from karr_db.repositories._validate import checked
from karr_db.repositories.events import EventType

__all__ = ["ENGINE_MODES", "EngineProfileDTO", "EngineProfilesRepository"]

#: How an engine runs on an agent: in KITT's container image, or installed on the host.
ENGINE_MODES = ("docker", "native")


class EngineProfileDTO(DTO):
    """An engine profile; the configurations are JSON objects (``{}`` when unset)."""

    id: str
    name: str
    engine: str
    mode: str
    description: str
    build_config: dict[str, Any]
    runtime_config: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None


def _config(value: Any) -> dict[str, Any]:
    """A stored configuration as an object: what KITT reads from blank or foreign text."""
    return value if isinstance(value, dict) else {}


def _text(value: str | None) -> str:
    return value or ""


SHAPE = RowShape(
    EngineProfileDTO,
    {name: getattr(EngineProfile, name) for name in EngineProfileDTO.model_fields},
    convert={
        "build_config": _config,
        "runtime_config": _config,
        "description": _text,
        "mode": _text,
    },
)


def mode_problem(mode: str) -> str | None:
    """Why ``mode`` is not an engine mode, or ``None``."""
    return None if mode in ENGINE_MODES else f"must be one of {', '.join(ENGINE_MODES)}"


def _name_problem(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    return text_problem(value, indexed=True)


def config_problems(field: str, value: object) -> builtins.list[FieldError]:
    """Why ``value`` cannot be stored as a profile's configuration."""
    return json_object_problems(value, field, max_bytes=MAX_CONFIG_BYTES)


@checked
class EngineProfilesRepository(Named[EngineProfileDTO]):
    """Engine profiles in the caller's transaction, looked up by id or by name;
    every change appends its event."""

    model = EngineProfile
    entity = "engine profile"
    shape = SHAPE

    # --- reading ---------------------------------------------------------------

    def list(
        self, *, engine: str | None = None, limit: int = PAGE_LIMIT, cursor: str | None = None
    ) -> Page[EngineProfileDTO]:
        """Profiles by name, optionally of one engine only, one page at a time."""
        return self._page_by(
            SHAPE,
            (EngineProfile.name, EngineProfile.id),
            *([] if engine is None else [EngineProfile.engine == engine]),
            limit=limit,
            cursor=cursor,
        )

    # --- writing ---------------------------------------------------------------

    def create(
        self,
        name: str,
        engine: str,
        *,
        mode: str = "docker",
        description: str = "",
        build_config: Mapping[str, Any] | None = None,
        runtime_config: Mapping[str, Any] | None = None,
    ) -> EngineProfileDTO:
        """A new profile; :class:`AlreadyExistsError` when the name is taken."""
        self._check(
            {
                "name": name,
                "engine": engine,
                "mode": mode,
                "build_config": build_config,
                "runtime_config": runtime_config,
            }
        )
        self._events.lock_log()
        if self.find_by_name(name) is not None:
            raise AlreadyExistsError("engine profile", name)
        now = utcnow()
        return self._create(
            insert(EngineProfile).values(
                name=name,
                engine=engine,
                mode=mode,
                description=description,
                build_config=dict(build_config or {}),
                runtime_config=dict(runtime_config or {}),
                created_at=now,
                updated_at=now,
            ),
            EventType.ENGINE_PROFILE_CREATED,
            {"name": name, "engine": engine, "mode": mode},
            # A profile of that name written by something that does not take the lock.
            AlreadyExistsError("engine profile", name),
        )

    def update(
        self,
        profile_id: str,
        *,
        name: str | None = None,
        engine: str | None = None,
        mode: str | None = None,
        description: str | None = None,
        build_config: Mapping[str, Any] | None = None,
        runtime_config: Mapping[str, Any] | None = None,
    ) -> EngineProfileDTO:
        """Change the fields given (``None`` leaves one as it is); ``updated_at`` moves
        only when something changed. A name another profile has is
        :class:`AlreadyExistsError`."""
        given: dict[str, Any] = {
            key: dict(value) if isinstance(value, Mapping) else value
            for key, value in (
                ("name", name),
                ("engine", engine),
                ("mode", mode),
                ("description", description),
                ("build_config", build_config),
                ("runtime_config", runtime_config),
            )
            if value is not None
        }
        self._check(given)
        self._events.lock_log()
        current = self.get(profile_id)
        changed = {k: v for k, v in given.items() if getattr(current, k) != v}
        if not changed:
            return current
        if "name" in changed:
            other = self.find_by_name(changed["name"])
            if other is not None:
                raise AlreadyExistsError("engine profile", changed["name"])
        if self._refused(
            update(EngineProfile)
            .where(EngineProfile.id == profile_id)
            .values(**changed, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ):
            raise AlreadyExistsError("engine profile", changed.get("name", current.name))
        self._events.append(
            EventType.ENGINE_PROFILE_UPDATED,
            source_id=profile_id,
            data={"fields": sorted(changed), "name": changed.get("name", current.name)},
        )
        return self.get(profile_id)

    def delete(self, profile_id: str) -> None:
        """Delete the profile; :class:`NotFoundError` when there is none. Quick tests
        that ran with it keep its id (see the module docstring)."""
        self._events.lock_log()
        gone = self.session.execute(
            delete(EngineProfile)
            .where(EngineProfile.id == profile_id)
            .returning(EngineProfile.name, EngineProfile.engine)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if gone is None:
            raise NotFoundError("engine profile", profile_id)
        self._events.append(
            EventType.ENGINE_PROFILE_DELETED,
            source_id=profile_id,
            data={"name": gone.name, "engine": gone.engine},
        )

    @staticmethod
    def _check(given: Mapping[str, Any]) -> None:
        """Refuse the bad fields among ``given`` (``None`` or missing: not given)."""
        errors: builtins.list[FieldError] = []
        for field in ("name", "engine"):
            value = given.get(field)
            problem = None if value is None else _name_problem(value)
            if problem:
                errors.append(FieldError(field, problem))
        mode = given.get("mode")
        if mode is not None and mode_problem(mode):
            errors.append(FieldError("mode", mode_problem(mode) or ""))
        for field in ("build_config", "runtime_config"):
            config = given.get(field)
            if config is not None:
                errors.extend(config_problems(field, config))
        if errors:
            raise ValidationError("engine profile", errors)
