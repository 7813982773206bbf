"""The agent and quick-test columns KITT's schemas 4..11 added, through the repositories."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from karr_db.errors import NotFoundError, ValidationError
from karr_db.limits import MAX_CONFIG_BYTES
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.engine_profiles import EngineProfilesRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from tests.support.repositories import on

DETAILS = {"gpus": [{"name": "H100", "memory_gb": 80}], "numa_nodes": 2, "nvlink": True}


def test_registration_stores_the_hardware_report(session: Session) -> None:
    agents = on(AgentsRepository, session)
    credentials = agents.register("dgx", cpu_arch="arm64", hardware_details=DETAILS)
    agent = credentials.agent
    assert (agent.cpu_arch, agent.hardware_details) == ("arm64", DETAILS)
    assert agent.token_prefix == credentials.token.get_secret_value()[:8]
    assert agents.get(agent.id) == agent


def test_a_heartbeat_updates_only_what_it_carries(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent_id = agents.register("dgx", cpu_arch="amd64", hardware_details=DETAILS).agent.id
    assert agents.heartbeat(agent_id).hardware_details == DETAILS
    beat = agents.heartbeat(agent_id, cpu_arch="arm64", hardware_details={"numa_nodes": 1})
    assert (beat.cpu_arch, beat.hardware_details) == ("arm64", {"numa_nodes": 1})


def test_rotation_moves_the_prefix_with_the_token(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent_id = agents.register("dgx").agent.id
    rotated = agents.rotate_token(agent_id)
    assert rotated.agent.token_prefix == rotated.token.get_secret_value()[:8]


def test_an_agent_without_a_report_has_none(session: Session) -> None:
    agent = on(AgentsRepository, session).register("old").agent
    assert agent.hardware_details is None
    # A foreign writer may leave JSON that is no object.
    for stored in ("[1, 2]", '"text"'):
        session.execute(
            text("UPDATE agents SET hardware_details = :v WHERE id = :id"),
            {"v": stored, "id": agent.id},
        )
        assert on(AgentsRepository, session).get(agent.id).hardware_details is None


@pytest.mark.parametrize(
    ("details", "fields"),
    [
        ([1, 2], ["hardware_details"]),
        ({"s": "\ud800"}, ["hardware_details.s"]),
        ({"big": 10**5000}, ["hardware_details.big"]),
        ({"x": "y" * MAX_CONFIG_BYTES}, ["hardware_details"]),
    ],
)
def test_bad_hardware_reports_are_refused(
    session: Session, details: Any, fields: list[str]
) -> None:
    agents = on(AgentsRepository, session)
    with pytest.raises(ValidationError) as refused:
        agents.register("dgx", hardware_details=details)
    assert refused.value.fields == fields
    agent_id = agents.register("dgx").agent.id
    with pytest.raises(ValidationError) as refused:
        agents.heartbeat(agent_id, hardware_details=details)
    assert refused.value.fields == fields
    assert agents.get(agent_id).hardware_details is None


def test_a_quick_test_carries_its_command_mode_and_profile(session: Session) -> None:
    agent_id = on(AgentsRepository, session).register("dgx").agent.id
    profile = on(EngineProfilesRepository, session).create("fp8", "vllm", mode="native")
    tests = on(QuickTestsRepository, session)
    plain = tests.dispatch(agent_id, model_path="m", engine_name="vllm", benchmark_name="b")
    assert (plain.engine_mode, plain.profile_id) == ("docker", "")
    assert plain.command_id
    assert plain.command_id != plain.id
    native = tests.dispatch(
        agent_id,
        model_path="m",
        engine_name="vllm",
        benchmark_name="b",
        engine_mode="native",
        profile_id=profile.id,
    )
    assert (native.engine_mode, native.profile_id) == ("native", profile.id)
    assert native.command_id not in (None, plain.command_id)
    on(EngineProfilesRepository, session).delete(profile.id)
    assert tests.get(native.id).profile_id == profile.id  # history keeps the id


def test_dispatch_checks_mode_and_profile(session: Session) -> None:
    agent_id = on(AgentsRepository, session).register("dgx").agent.id
    tests = on(QuickTestsRepository, session)
    with pytest.raises(ValidationError) as refused:
        tests.dispatch(
            agent_id, model_path="m", engine_name="e", benchmark_name="b", engine_mode="vm"
        )
    assert refused.value.fields == ["engine_mode"]
    with pytest.raises(NotFoundError, match="no-such-profile"):
        tests.dispatch(
            agent_id,
            model_path="m",
            engine_name="e",
            benchmark_name="b",
            profile_id="no-such-profile",
        )
    assert tests.count() == 0
