"""``karr-db history`` draws a metric over time; the docs draw the lifecycles."""

from __future__ import annotations

import csv
import io
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from karr_db.cli import docs
from karr_db.models import Base
from karr_db.repositories._lifecycle import Transition
from karr_db.repositories.campaigns import (
    CAMPAIGN_TRANSITIONS,
    CampaignsRepository,
    CampaignStatus,
)
from karr_db.repositories.quick_tests import (
    QUICK_TEST_TRANSITIONS,
    QuickTestsRepository,
    QuickTestStatus,
)
from tests.support.cli import cli, run_in_pty, write_variants

RUNS = 12
PER_RUN = 3  # the throughput sample has three throughput benchmarks (run numbers 1-3)


@pytest.fixture
def history_url(migrated_url: str, samples_dir: Path, tmp_path: Path) -> str:
    write_variants(samples_dir, tmp_path / "docs", RUNS)  # avg_tps 40, 41, ... hourly
    assert cli("import", "--database", migrated_url, str(tmp_path / "docs")).exit_code == 0
    return migrated_url


def test_history_draws_a_chart_on_a_terminal(history_url: str) -> None:
    code, screen = run_in_pty(
        "history", "--database", history_url, "--metric", "avg_tps", columns=100
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    assert code == 0, plain
    assert "avg_tps (throughput)" in plain  # the title names metric and test
    assert re.search("[\u2801-\u28ff]", plain), plain  # braille points of the curve
    assert "┤" in plain
    assert "└" in plain
    assert "2026-01-01" in plain  # dates on the x axis
    assert re.search(r"^ *40┤", plain, re.MULTILINE), plain  # y labels as tables write them
    assert re.search(r"^ *51┤", plain, re.MULTILINE), plain
    assert f"{RUNS * PER_RUN} value(s) from {RUNS} run(s)" in plain
    assert all(len(line) <= 100 for line in plain.splitlines())


def test_history_off_a_terminal_has_no_colour_codes(history_url: str) -> None:
    result = cli(
        "history", "--database", history_url, "--metric", "avg_tps", "--since", "2026-01-01T18:00"
    )
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout
    assert f"{6 * PER_RUN} value(s) from 6 run(s)" in result.stdout


def test_history_gives_json_and_csv_for_scripts(history_url: str) -> None:
    points = cli("history", "-d", history_url, "--metric", "avg_tps", "--json").json()
    assert [p["value"] for p in points] == [40.0 + n for n in range(RUNS) for _ in range(PER_RUN)]
    assert [p["timestamp"] for p in points] == sorted(p["timestamp"] for p in points)
    result = cli("history", "-d", history_url, "--metric", "avg_tps", "--csv", "--limit", "3")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["value"] for r in rows] == ["40.0"] * 3
    assert [r["run_number"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {
        "run_id",
        "model",
        "engine",
        "timestamp",
        "test_name",
        "run_number",
        "value",
    }
    assert {(r["model"], r["engine"]) for r in rows} == {("qwen2.5:14b-instruct-q5_K_M", "ollama")}
    assert {r["run_id"] for r in rows} == {p["run_id"] for p in points[:3]}
    both = cli("history", "-d", history_url, "--metric", "avg_tps", "--csv", "--json")
    assert both.exit_code == 2


def test_history_filters_by_model_engine_and_test(history_url: str) -> None:
    base = ("history", "-d", history_url, "--metric", "avg_tps", "--json")
    model = "qwen2.5:14b-instruct-q5_K_M"
    assert len(cli(*base, "--model", model, "--engine", "ollama").json()) == RUNS * PER_RUN
    assert cli(*base, "--engine", "vllm").json() == []
    assert len(cli(*base, "--test", "throughput").json()) == RUNS * PER_RUN


# --- the generated docs -------------------------------------------------------------


def _diagram(text: str, title: str) -> str:
    block = re.search(rf"\*\*{re.escape(title)}\*\*\n\n```mermaid\n(.*?)```", text, re.S)
    assert block is not None, title
    return block.group(1)


@pytest.mark.parametrize(
    ("title", "table", "repository", "statuses"),
    [
        (
            "Campaigns (`web_campaigns.status`)",
            CAMPAIGN_TRANSITIONS,
            CampaignsRepository,
            CampaignStatus,
        ),
        (
            "Quick tests (`quick_tests.status`)",
            QUICK_TEST_TRANSITIONS,
            QuickTestsRepository,
            QuickTestStatus,
        ),
    ],
)
def test_docs_draw_each_lifecycle_from_its_transition_table(
    title: str, table: tuple[Any, ...], repository: type, statuses: type[StrEnum]
) -> None:
    body = _diagram(docs.render(), title)
    assert body.startswith("stateDiagram-v2\n")
    # Every row of the table the repository moves rows by is an arrow.
    for transition in table:
        for source in transition.allowed_from:
            assert re.search(
                rf"^    {source} --> {transition.to} : .*\b{transition.verb}\b", body, re.M
            ), (source, transition.verb)
    edges = docs.lifecycle(table, repository, statuses)
    created = [e for e in edges if e.source is None]
    assert len(created) == 1  # one way a row comes into being
    assert f"    [*] --> {created[0].target} : {created[0].verb}\n" in body
    # Every status the code defines takes part: one the diagram misses would
    # stand alone, so a changed state machine without its arrows is noticed.
    named = {e.source for e in edges} | {e.target for e in edges}
    assert {s.value for s in statuses} <= named


def test_a_new_transition_in_the_table_becomes_an_arrow() -> None:
    extra = Transition("archive", ("completed",), "archived", "", "campaign.archived")
    edges = docs.lifecycle((*CAMPAIGN_TRANSITIONS, extra), CampaignsRepository, CampaignStatus)
    assert docs.Edge("completed", "archived", "archive") in edges
    assert docs.Edge(None, "draft", "create") in edges  # read from create()'s INSERT
    quick = docs.lifecycle(QUICK_TEST_TRANSITIONS, QuickTestsRepository, QuickTestStatus)
    assert docs.Edge(None, "queued", "dispatch") in quick
    assert docs.Edge("queued", "claimed", "claim_next") in quick


def test_the_er_diagram_shows_postgresql_types() -> None:
    text = docs.render()
    diagram = text.split("```mermaid\nerDiagram\n", 1)[1].split("```", 1)[0]
    metrics = diagram.split("    metrics {\n", 1)[1].split("    }", 1)[0]
    assert 'REAL metric_value "PostgreSQL DOUBLE PRECISION"' in metrics
    assert 'INTEGER id PK "PostgreSQL SERIAL"' in metrics
    for table in Base.metadata.sorted_tables:
        block = diagram.split(f"    {table.name} {{\n", 1)[1].split("    }", 1)[0]
        assert block.count('"PostgreSQL ') == len(table.columns), table.name
