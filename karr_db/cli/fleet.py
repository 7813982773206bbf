"""KITT's fleet data: one agent in detail, settings, engine profiles, engines, logs."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

from karr_db.cli._app import (
    DatabaseOption,
    JsonOption,
    ReplicaOption,
    app,
    open_database,
    subcommands,
)
from karr_db.cli._output import facts, fmt, paged_items, print_json, say, show, table
from karr_db.errors import NotFoundError
from karr_db.limits import PAGE_LIMIT
from karr_db.repositories._base import Named
from karr_db.repositories._common import found
from karr_db.repositories.engine_profiles import ENGINE_MODES, EngineProfileDTO
from karr_db.repositories.logs import LogLineDTO
from karr_db.repositories.settings import AGENT_SETTING_DEFAULTS

D = TypeVar("D", bound=BaseModel)

AgentArgument = Annotated[str, typer.Argument(help="The agent's name or id.")]


def _named(repository: Named[D], name_or_id: str) -> D:
    """The row of that name, else of that id (agents, engine profiles);
    NotFoundError naming what was asked."""
    return found(
        repository.entity,
        name_or_id,
        repository.find_by_name(name_or_id) or repository.find(name_or_id),
    )


# --- one agent -------------------------------------------------------------------


@app.command("agent")
def agent_command(
    agent: AgentArgument,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one agent: its hardware, settings and engines (never its token).

    Example: karr-db agent gpu-box-1
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        found = _named(uow.agents, agent)
        settings = uow.agent_settings.get(found.id).values
        engines = uow.agent_engines.for_agent(found.id)
    if as_json:
        print_json({"agent": found, "settings": settings, "engines": engines})
        return
    address = f"{fmt(found.hostname)}:{found.port}" if found.port else fmt(found.hostname)
    show(
        facts(
            ("id", found.id),
            ("status", found.status),
            ("address", address),
            ("last heartbeat", found.last_heartbeat),
            ("registered", found.registered_at),
            ("token", f"{found.token_prefix}..." if found.token_prefix else found.has_token),
            ("kitt version", found.kitt_version),
            ("environment", found.environment_type),
            ("cpu", found.cpu_info),
            ("cpu arch", found.cpu_arch),
            ("ram (GB)", found.ram_gb),
            ("gpus", f"{found.gpu_count} x {fmt(found.gpu_info)}" if found.gpu_count else None),
            ("fingerprint", found.fingerprint),
            ("tags", found.tags),
            ("notes", found.notes),
            title=f"agent {fmt(found.name)}",
        )
    )
    if found.hardware_details:
        details = table("hardware detail", "value")
        for key, value in found.hardware_details.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            details.add_row(key, text)
        show(details)
    _show_settings(settings)
    if engines:
        matrix = table("engine", "mode", "version", "status", "binary", "last checked")
        for e in engines:
            matrix.add_row(
                e.engine,
                e.mode,
                fmt(e.version or None),
                e.status,
                fmt(e.binary_path or None),
                fmt(e.last_checked),
            )
        show(matrix)
    else:
        say("no engines reported")


def _show_settings(settings: dict[str, str]) -> None:
    rows = table("setting", "value")
    for key, value in settings.items():
        rows.add_row(key, value if value else "''")
    show(rows)


# --- settings ---------------------------------------------------------------------

settings_app = subcommands("settings")


@settings_app.callback(invoke_without_command=True)
def settings_command(
    ctx: typer.Context,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Web UI settings and each agent's settings. Without a subcommand: every web setting.

    Example: karr-db settings set devon_tab_visible false
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        stored = uow.web_settings.all()
    if as_json:
        print_json(stored)
        return
    if not stored:
        say("no web settings stored (KITT uses its defaults)")
        return
    _show_settings(stored)


@settings_app.command("get")
def settings_get(
    key: Annotated[str, typer.Argument(help="The setting's key.")],
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print one web setting's value.

    Example: karr-db settings get devon_tab_visible
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        setting = uow.web_settings.get(key)
    if as_json:
        print_json(setting)
        return
    say(setting.value)


@settings_app.command("set")
def settings_set(
    key: Annotated[str, typer.Argument(help="The setting's key.")],
    value: Annotated[str, typer.Argument(help="Its new value (text).")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a web setting (replacing its value).

    Example: karr-db settings set devon_tab_visible false
    """
    with open_database(database, write=True) as db, db.unit_of_work() as uow:
        setting = uow.web_settings.set(key, value)
    if as_json:
        print_json(setting)
        return
    say(f"{setting.key} = {setting.value}")


@settings_app.command("delete")
def settings_delete(
    key: Annotated[str, typer.Argument(help="The setting's key.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a web setting (KITT then uses its default).

    Example: karr-db settings delete devon_tab_visible
    """
    with open_database(database, write=True) as db, db.unit_of_work() as uow:
        uow.web_settings.delete(key)
    if as_json:
        print_json({"deleted": key})
        return
    say(f"deleted {key}")


@settings_app.command("agent")
def settings_agent(
    agent: AgentArgument,
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help=f"Settings to change: {', '.join(AGENT_SETTING_DEFAULTS)}.",
            show_default=False,
        ),
    ] = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an agent's settings, or change some (all or nothing).

    Example: karr-db settings agent gpu-box-1 auto_cleanup=false heartbeat_interval_s=15
    """
    values: dict[str, str] = {}
    for assignment in assignments or []:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{assignment!r} is not KEY=VALUE", param_hint="KEY=VALUE...")
        values[key] = value
    with (
        open_database(database, write=bool(values), replica=replica) as db,
        db.unit_of_work(readonly=not values) as uow,
    ):
        found = _named(uow.agents, agent)
        if values:
            settings = uow.agent_settings.update(found.id, values)
        else:
            settings = uow.agent_settings.get(found.id)
    if as_json:
        print_json(settings)
        return
    _show_settings(settings.values)


# --- engine profiles ----------------------------------------------------------------

profiles_app = subcommands("engine-profiles")

ModeOption = Annotated[
    str | None,
    typer.Option("--mode", metavar="MODE", help=f"How the engine runs: {', '.join(ENGINE_MODES)}."),
]
BuildOption = Annotated[
    str | None, typer.Option("--build-config", metavar="JSON", help="Build configuration object.")
]
RuntimeOption = Annotated[
    str | None,
    typer.Option("--runtime-config", metavar="JSON", help="Runtime configuration object."),
]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="What it is for.")]
ProfileArgument = Annotated[str, typer.Argument(help="The profile's name or id.")]


def _json_option(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=option) from None


def _show_profile(profile: EngineProfileDTO, as_json: bool) -> None:
    if as_json:
        print_json(profile)
        return
    show(
        facts(
            ("id", profile.id),
            ("engine", profile.engine),
            ("mode", profile.mode),
            ("description", profile.description or None),
            ("created", profile.created_at),
            ("updated", profile.updated_at),
            ("build config", json.dumps(profile.build_config, ensure_ascii=False)),
            ("runtime config", json.dumps(profile.runtime_config, ensure_ascii=False)),
            title=f"engine profile {profile.name}",
        )
    )


@profiles_app.callback(invoke_without_command=True)
def profiles_command(
    ctx: typer.Context,
    engine: Annotated[str | None, typer.Option("--engine", help="Only this engine's.")] = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Named engine configurations. Without a subcommand: list them by name.

    Example: karr-db engine-profiles --engine vllm
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        profiles = paged_items(partial(uow.engine_profiles.list, engine=engine), None)
    if as_json:
        print_json(profiles)
        return
    rows = table("name", "engine", "mode", "description", "id", "updated")
    for p in profiles:
        rows.add_row(p.name, p.engine, p.mode, fmt(p.description or None), p.id, fmt(p.updated_at))
    show(rows)
    say(f"{len(profiles)} engine profile(s)")


@profiles_app.command("show")
def profiles_show(
    profile: ProfileArgument,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one profile with its configurations.

    Example: karr-db engine-profiles show vllm-fp8
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        found = _named(uow.engine_profiles, profile)
    _show_profile(found, as_json)


@profiles_app.command("create")
def profiles_create(
    name: Annotated[str, typer.Argument(help="A name no other profile has.")],
    engine: Annotated[str, typer.Option("--engine", help="The engine it configures.")],
    mode: ModeOption = None,
    description: DescriptionOption = None,
    build_config: BuildOption = None,
    runtime_config: RuntimeOption = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a profile.

    Example: karr-db engine-profiles create fp8 --engine vllm --runtime-config '{"dtype": "fp8"}'
    """
    build = _json_option(build_config, "--build-config")
    runtime = _json_option(runtime_config, "--runtime-config")
    with open_database(database, write=True) as db, db.unit_of_work() as uow:
        made = uow.engine_profiles.create(
            name,
            engine,
            mode=mode or "docker",
            description=description or "",
            build_config=build,
            runtime_config=runtime,
        )
    _show_profile(made, as_json)


@profiles_app.command("update")
def profiles_update(
    profile: ProfileArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="Another engine.")] = None,
    mode: ModeOption = None,
    description: DescriptionOption = None,
    build_config: BuildOption = None,
    runtime_config: RuntimeOption = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change the fields given; a configuration given replaces the stored one.

    Example: karr-db engine-profiles update vllm-fp8 --mode native
    """
    build = _json_option(build_config, "--build-config")
    runtime = _json_option(runtime_config, "--runtime-config")
    with open_database(database, write=True) as db, db.unit_of_work() as uow:
        updated = uow.engine_profiles.update(
            _named(uow.engine_profiles, profile).id,
            name=name,
            engine=engine,
            mode=mode,
            description=description,
            build_config=build,
            runtime_config=runtime,
        )
    _show_profile(updated, as_json)


@profiles_app.command("delete")
def profiles_delete(
    profile: ProfileArgument, database: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Delete a profile (quick tests that used it keep its id).

    Example: karr-db engine-profiles delete vllm-fp8
    """
    with open_database(database, write=True) as db, db.unit_of_work() as uow:
        found = _named(uow.engine_profiles, profile)
        uow.engine_profiles.delete(found.id)
    if as_json:
        print_json({"deleted": found.id, "name": found.name})
        return
    say(f"deleted engine profile {found.name} ({found.id})")


# --- the engine matrix and logs ---------------------------------------------------


@app.command("engines")
def engines_command(
    engine: Annotated[str | None, typer.Option("--engine", help="Only this engine.")] = None,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Which engines each agent has, in which mode and state (KITT's engine matrix).

    Example: karr-db engines --engine vllm
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        rows_of = paged_items(partial(uow.agent_engines.list, engine=engine), None)
        names = {a: (uow.agents.find(a) or None) for a in {r.agent_id for r in rows_of}}
    if as_json:
        print_json(rows_of)
        return
    if not rows_of:
        say("no engines reported")
        return
    rows = table("agent", "engine", "mode", "version", "status", "last checked")
    for r in rows_of:
        agent = names.get(r.agent_id)
        rows.add_row(
            fmt(agent.name if agent else r.agent_id),
            r.engine,
            r.mode,
            fmt(r.version or None),
            r.status,
            fmt(r.last_checked),
        )
    show(rows)


@app.command("logs")
def logs_command(
    owner: Annotated[str, typer.Argument(help="A quick test's or a campaign's id.")],
    after: Annotated[int, typer.Option("--after", min=0, help="Only lines after this id.")] = 0,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 1000,
    database: DatabaseOption = None,
    replica: ReplicaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the output lines a quick test or campaign logged, oldest first.

    Example: karr-db logs 3f2a... --after 120
    """
    with open_database(database, replica=replica) as db, db.unit_of_work(readonly=True) as uow:
        if uow.quick_tests.find(owner) is not None:
            logs: Any = uow.quick_test_logs
        elif uow.campaigns.find(owner) is not None:
            logs = uow.campaign_logs
        else:
            raise NotFoundError("quick test or campaign", owner)
        lines: list[LogLineDTO] = []
        position = after
        while len(lines) < limit:
            page = logs.list(owner, after_id=position, limit=min(PAGE_LIMIT, limit - len(lines)))
            lines += page.items
            if not page.has_more:
                break
            position = lines[-1].id
    if as_json:
        print_json(lines)
        return
    for line in lines:
        say(f"{line.id:>6}  {fmt(line.created_at)}  {line.line}")
    if not lines:
        say("no log lines")
