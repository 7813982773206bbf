"""Issue 14 item 8: ``karr-db history`` draws a metric over time; the docs draw the lifecycles."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from karr_db import docs
from karr_db.models import Base
from karr_db.repositories.campaigns import CampaignsRepository, CampaignStatus
from karr_db.repositories.quick_tests import QuickTestsRepository, QuickTestStatus
from tests.cli_helpers import cli, run_in_pty, write_variants

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
    assert "40.0" in plain
    assert "51.0" in plain
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
    assert set(rows[0]) == {"run_id", "timestamp", "test_name", "run_number", "value"}
    assert {r["run_id"] for r in rows} == {p["run_id"] for p in points[:3]}
    both = cli("history", "-d", history_url, "--metric", "avg_tps", "--csv", "--json")
    assert both.exit_code == 2


def test_history_filters_by_model_engine_and_test(history_url: str) -> None:
    base = ("history", "-d", history_url, "--metric", "avg_tps", "--json")
    model = "/home/kitt/.kitt/models/Llama-3.1-8B-Instruct-Q4_K_M.gguf"
    assert len(cli(*base, "--model", model, "--engine", "llama_cpp").json()) == RUNS * PER_RUN
    assert cli(*base, "--engine", "vllm").json() == []
    assert len(cli(*base, "--test", "throughput").json()) == RUNS * PER_RUN


# --- the generated docs -------------------------------------------------------------


def _diagram(text: str, title: str) -> str:
    block = re.search(rf"\*\*{re.escape(title)}\*\*\n\n```mermaid\n(.*?)```", text, re.S)
    assert block is not None, title
    return block.group(1)


@pytest.mark.parametrize(
    ("title", "repository", "statuses"),
    [
        ("Campaigns (`web_campaigns.status`)", CampaignsRepository, CampaignStatus),
        ("Quick tests (`quick_tests.status`)", QuickTestsRepository, QuickTestStatus),
    ],
)
def test_docs_draw_each_lifecycle_from_the_repositorys_transitions(
    title: str, repository: type, statuses: type
) -> None:
    body = _diagram(docs.render(), title)
    assert body.startswith("stateDiagram-v2\n")
    transitions = docs.lifecycle(repository, statuses)
    for t in transitions:
        assert f"{t.source or '[*]'} --> {t.target} : " in body
    # Every status the code defines takes part (a status the extraction misses
    # would stand alone: this fails, so a changed state machine is noticed).
    named = {t.source for t in transitions} | {t.target for t in transitions}
    assert {s.value for s in statuses} <= named
    assert any(t.source is None for t in transitions)  # how a row is created


def test_known_transitions_are_found() -> None:
    campaign = {
        (t.source, t.target, t.verb) for t in docs.lifecycle(CampaignsRepository, CampaignStatus)
    }
    assert (None, "pending", "create") in campaign
    assert ("failed", "running", "restart") in campaign
    assert ("running", "cancelled", "cancel") in campaign
    quick = {
        (t.source, t.target, t.verb) for t in docs.lifecycle(QuickTestsRepository, QuickTestStatus)
    }
    assert ("queued", "claimed", "claim_next") in quick  # a Core UPDATE, not _move
    assert ("running", "queued", "requeue") in quick
    assert not any(
        t.target == "cancelled" and t.source == "running"
        for t in docs.lifecycle(QuickTestsRepository, QuickTestStatus)
    )


def test_the_er_diagram_shows_postgresql_types() -> None:
    text = docs.render()
    diagram = text.split("```mermaid\nerDiagram\n", 1)[1].split("```", 1)[0]
    metrics = diagram.split("    metrics {\n", 1)[1].split("    }", 1)[0]
    assert 'REAL metric_value "PostgreSQL DOUBLE PRECISION"' in metrics
    assert 'INTEGER id PK "PostgreSQL SERIAL"' in metrics
    for table in Base.metadata.sorted_tables:
        block = diagram.split(f"    {table.name} {{\n", 1)[1].split("    }", 1)[0]
        assert block.count('"PostgreSQL ') == len(table.columns), table.name
