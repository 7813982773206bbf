"""Web settings and agent settings (KITT's schemas 3 and 8), on both dialects."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from karr_db.errors import NotFoundError, ValidationError
from karr_db.limits import MAX_INDEXED_BYTES, MAX_SETTING_BYTES, MAX_WEB_SETTINGS
from karr_db.models import AgentSetting
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.settings import (
    AGENT_SETTING_DEFAULTS,
    AgentSettingsRepository,
    WebSettingsRepository,
)
from tests.support.repositories import on


def events_of(session: Session, source_id: str) -> list[tuple[str | None, Any]]:
    page = EventsRepository(session).list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


# --- web settings ------------------------------------------------------------------


def test_a_setting_is_set_read_replaced_and_deleted(session: Session) -> None:
    settings = on(WebSettingsRepository, session)
    assert settings.find("devon_tab_visible") is None
    with pytest.raises(NotFoundError, match="devon_tab_visible"):
        settings.get("devon_tab_visible")
    assert settings.set("devon_tab_visible", "false").value == "false"
    assert settings.get("devon_tab_visible").value == "false"
    settings.set("devon_tab_visible", "true")
    settings.set("theme", "dark")
    assert settings.all() == {"devon_tab_visible": "true", "theme": "dark"}
    settings.delete("theme")
    assert settings.all() == {"devon_tab_visible": "true"}
    with pytest.raises(NotFoundError):
        settings.delete("theme")
    assert events_of(session, "devon_tab_visible") == [
        ("web_setting.changed", {"from": None, "to": "false"}),
        ("web_setting.changed", {"from": "false", "to": "true"}),
    ]
    assert events_of(session, "theme") == [
        ("web_setting.changed", {"from": None, "to": "dark"}),
        ("web_setting.deleted", {"from": "dark"}),
    ]


def test_setting_the_same_value_again_changes_nothing(session: Session) -> None:
    settings = on(WebSettingsRepository, session)
    settings.set("k", "v")
    settings.set("k", "v")
    assert len(events_of(session, "k")) == 1


def test_settings_page_by_key(session: Session) -> None:
    settings = on(WebSettingsRepository, session)
    for key in ("c", "a", "b"):
        settings.set(key, key.upper())
    first = settings.list(limit=2)
    assert [s.key for s in first.items] == ["a", "b"]
    rest = settings.list(limit=2, cursor=first.next_cursor)
    assert [(s.key, s.value) for s in rest.items] == [("c", "C")]
    assert rest.next_cursor is None


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("", "v", "key"),
        ("  ", "v", "key"),
        ("k\x00", "v", "key"),
        ("x" * (MAX_INDEXED_BYTES + 1), "v", "key"),
        ("k", "v\x00", "value"),
        ("k", "\ud800", "value"),
        ("k", "x" * (MAX_SETTING_BYTES + 1), "value"),
    ],
)
def test_bad_keys_and_values_are_refused_by_name(
    session: Session, key: str, value: str, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        on(WebSettingsRepository, session).set(key, value)
    assert refused.value.fields == [field]
    assert on(WebSettingsRepository, session).all() == {}


def test_the_number_of_settings_is_bounded(session: Session) -> None:
    session.execute(
        text("INSERT INTO web_settings (key, value) VALUES (:key, '')"),
        [{"key": f"k{n:05}"} for n in range(MAX_WEB_SETTINGS)],
    )
    settings = on(WebSettingsRepository, session)
    settings.set("k00000", "still changes")  # an existing key is not new
    with pytest.raises(ValidationError) as refused:
        settings.set("one-more", "v")
    assert refused.value.fields == ["key"]
    assert len(settings.all()) == MAX_WEB_SETTINGS


def test_a_value_kitt_wrote_reads_back(session: Session) -> None:
    session.execute(text("INSERT INTO web_settings (key, value) VALUES ('devon_url', 'http://x')"))
    assert on(WebSettingsRepository, session).get("devon_url").value == "http://x"


# --- agent settings ----------------------------------------------------------------


@pytest.fixture
def agent_id(session: Session) -> str:
    return on(AgentsRepository, session).register("gpu-box-1").agent.id


def test_a_new_agent_has_the_six_defaults(session: Session, agent_id: str) -> None:
    assert on(AgentSettingsRepository, session).get(agent_id).values == dict(AGENT_SETTING_DEFAULTS)
    assert dict(AGENT_SETTING_DEFAULTS) == {
        "model_storage_dir": "~/.kitt/models",
        "model_share_source": "",
        "model_share_mount": "",
        "auto_cleanup": "true",
        "heartbeat_interval_s": "30",
        "kitt_image": "",
    }


def test_re_registering_keeps_changed_settings(session: Session, agent_id: str) -> None:
    settings = on(AgentSettingsRepository, session)
    settings.update(agent_id, {"model_storage_dir": "/data/models"})
    on(AgentsRepository, session).register("gpu-box-1", replace=True)
    assert settings.get(agent_id).values["model_storage_dir"] == "/data/models"


def test_update_changes_only_the_keys_given(session: Session, agent_id: str) -> None:
    settings = on(AgentSettingsRepository, session)
    updated = settings.update(
        agent_id, {"auto_cleanup": "false", "heartbeat_interval_s": "15", "kitt_image": ""}
    )
    assert updated.values == {
        **AGENT_SETTING_DEFAULTS,
        "auto_cleanup": "false",
        "heartbeat_interval_s": "15",
    }
    changes = [data for kind, data in events_of(session, agent_id) if "settings" in str(kind)]
    assert changes == [{"changed": {"auto_cleanup": "false", "heartbeat_interval_s": "15"}}]
    settings.update(agent_id, {"auto_cleanup": "false"})  # no change, no event
    assert len([k for k, _ in events_of(session, agent_id) if "settings" in str(k)]) == 1


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"nope": "x"}, ["values.nope"]),
        ({"auto_cleanup": "maybe"}, ["values.auto_cleanup"]),
        ({"heartbeat_interval_s": "0"}, ["values.heartbeat_interval_s"]),
        ({"heartbeat_interval_s": "1e3"}, ["values.heartbeat_interval_s"]),
        ({"heartbeat_interval_s": "\u0663"}, ["values.heartbeat_interval_s"]),  # Arabic 3
        ({"kitt_image": "a\x00"}, ["values.kitt_image"]),
        ({"kitt_image": 3, "nope": "x"}, ["values.kitt_image", "values.nope"]),
    ],
)
def test_bad_updates_name_every_field_and_write_nothing(
    session: Session, agent_id: str, values: dict[str, Any], fields: list[str]
) -> None:
    settings = on(AgentSettingsRepository, session)
    with pytest.raises(ValidationError) as refused:
        settings.update(agent_id, {"model_share_mount": "/mnt", **values})
    assert refused.value.fields == fields
    assert settings.get(agent_id).values == dict(AGENT_SETTING_DEFAULTS)


def test_an_unknown_agent_is_not_found(session: Session) -> None:
    settings = on(AgentSettingsRepository, session)
    assert settings.find("no-such-agent") is None
    with pytest.raises(NotFoundError, match="no-such-agent"):
        settings.update("no-such-agent", {"auto_cleanup": "false"})


def test_defaults_are_restored_for_an_agent_written_without_them(
    session: Session, agent_id: str
) -> None:
    session.execute(
        text("DELETE FROM agent_settings WHERE agent_id = :id AND key <> 'kitt_image'"),
        {"id": agent_id},
    )
    session.execute(
        text("UPDATE agent_settings SET value = 'img:1' WHERE agent_id = :id"), {"id": agent_id}
    )
    restored = on(AgentSettingsRepository, session).ensure_defaults(agent_id)
    assert restored.values == {**AGENT_SETTING_DEFAULTS, "kitt_image": "img:1"}


def test_settings_go_with_their_agent(session: Session, agent_id: str) -> None:
    on(AgentsRepository, session).retire(agent_id)
    left = session.scalar(
        select(func.count()).select_from(AgentSetting).where(AgentSetting.agent_id == agent_id)
    )
    assert left == 0
