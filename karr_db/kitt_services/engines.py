"""KITT 1.7's ``EngineService`` over karr_db: engine profiles and each agent's engines.

Storage is :class:`~karr_db.repositories.engine_profiles.EngineProfilesRepository`
and :class:`~karr_db.repositories.agent_engines.AgentEnginesRepository`; the
answers are KITT's dicts (configurations parsed, times ISO 8601 in UTC with
their offset).

Deliberately stricter than KITT: a profile name already taken is
:class:`~karr_db.errors.AlreadyExistsError` (KITT's database raises a raw
integrity error; its API checks first), ``mode`` is ``docker`` or ``native``,
configurations are JSON objects, and an engine reported for an unknown agent
is :class:`~karr_db.errors.NotFoundError`; a bad field is a
:class:`~karr_db.errors.ValidationError` naming it. Ids are UUID strings.
"""

from __future__ import annotations

from typing import Any

from karr_db.errors import NotFoundError
from karr_db.kitt_services._base import Service, api_dict, iso, required
from karr_db.limits import PAGE_LIMIT
from karr_db.repositories.agent_engines import AgentEngineDTO
from karr_db.repositories.engine_profiles import EngineProfileDTO
from karr_db.uow import UnitOfWork

__all__ = ["EngineService", "agent_engine_dict", "profile_dict"]

#: The profile fields KITT's ``update_profile`` takes from its ``data``.
PROFILE_FIELDS = ("name", "engine", "mode", "description", "build_config", "runtime_config")


def profile_dict(profile: EngineProfileDTO) -> dict[str, Any]:
    """A profile as KITT's API returns its row."""
    return api_dict(profile)


def agent_engine_dict(row: AgentEngineDTO) -> dict[str, Any]:
    """An agent's engine as KITT's API returns its row (``""`` when never checked)."""
    return {**api_dict(row), "last_checked": iso(row.last_checked) or ""}


class EngineService(Service):
    """KITT's ``EngineService`` over karr_db (see the module docstring)."""

    # --- engine profiles --------------------------------------------------------

    def create_profile(self, data: dict[str, Any]) -> dict[str, Any]:
        """A new profile from KITT's request body (``name`` and ``engine`` required)."""
        required("engine profile", data, "name", "engine")

        def work(uow: UnitOfWork) -> EngineProfileDTO:
            return uow.engine_profiles.create(
                data["name"],
                data["engine"],
                mode=data.get("mode", "docker"),
                description=data.get("description", ""),
                build_config=data.get("build_config") or {},
                runtime_config=data.get("runtime_config") or {},
            )

        return profile_dict(self._write(work, "creating an engine profile"))

    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        return self._found(lambda uow: uow.engine_profiles.find(profile_id), profile_dict)

    def get_profile_by_name(self, name: str) -> dict[str, Any] | None:
        return self._found(lambda uow: uow.engine_profiles.find_by_name(name), profile_dict)

    def list_profiles(self, engine: str | None = None) -> list[dict[str, Any]]:
        """Every profile by name, of one engine when ``engine`` is given."""
        profiles: list[dict[str, Any]] = []
        with self._read() as uow:
            cursor: str | None = None
            while True:
                page = uow.engine_profiles.list(
                    engine=engine or None, limit=PAGE_LIMIT, cursor=cursor
                )
                profiles += [profile_dict(p) for p in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    return profiles

    def update_profile(self, profile_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Change the fields ``data`` gives; ``None`` for an unknown profile."""
        required("engine profile", data)
        given = {key: data[key] for key in PROFILE_FIELDS if key in data}

        def work(uow: UnitOfWork) -> EngineProfileDTO | None:
            try:
                return uow.engine_profiles.update(profile_id, **given)
            except NotFoundError:
                return None

        updated = self._write(work, "updating an engine profile")
        return None if updated is None else profile_dict(updated)

    def delete_profile(self, profile_id: str) -> bool:
        return self._changed(
            lambda uow: uow.engine_profiles.delete(profile_id), "deleting an engine profile"
        )

    # --- agents' engines ----------------------------------------------------------

    def get_agent_engines(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's engines by name (and mode)."""
        with self._read() as uow:
            rows = uow.agent_engines.for_agent(agent_id)
        return [agent_engine_dict(row) for row in rows]

    def upsert_agent_engine(self, agent_id: str, engine_data: dict[str, Any]) -> None:
        """Record what an agent reports of one engine (checked now)."""
        required("agent engine", engine_data, "engine")

        def work(uow: UnitOfWork) -> None:
            uow.agent_engines.report(
                agent_id,
                engine_data["engine"],
                mode=engine_data.get("mode", "docker"),
                version=engine_data.get("version", ""),
                binary_path=engine_data.get("binary_path", ""),
                status=engine_data.get("status", "unknown"),
            )

        self._write(work, "recording an agent's engine")

    def get_engine_status_matrix(self) -> dict[str, list[dict[str, Any]]]:
        """Every agent's engines, by agent id."""
        matrix: dict[str, list[dict[str, Any]]] = {}
        with self._read() as uow:
            cursor: str | None = None
            while True:
                page = uow.agent_engines.list(limit=PAGE_LIMIT, cursor=cursor)
                for row in page.items:
                    matrix.setdefault(row.agent_id, []).append(agent_engine_dict(row))
                cursor = page.next_cursor
                if cursor is None:
                    return matrix
