"""``karr-db`` commands on both dialects: happy paths, --json output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from karr_db.cli import docs
from karr_db.importing import RESULT_FILE_NAME
from karr_db.migrations.scripts import head_revision, reference_version_at, script_directory
from tests.cli_helpers import cli, cli_process, copy_samples, import_samples

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (
    "upgrade",
    "migrate",
    "status",
    "check",
    "import",
    "export",
    "list",
    "show",
    "stats",
    "leaderboard",
    "compare",
    "metrics",
    "history",
    "rederive",
    "agents",
    "campaigns",
    "quick-tests",
    "events",
    "docs",
    "grant",
)
#: Every revision, oldest first, and the head: what a fresh database gets.
REVISIONS = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
HEAD = head_revision()
HEAD_VERSION = reference_version_at(HEAD)


# --- schema commands -------------------------------------------------------------


def test_upgrade_creates_then_finds_nothing_to_do(empty_url: str) -> None:
    first = cli("upgrade", "--database", empty_url)
    assert first.exit_code == 0, first.output
    assert f"applied: {', '.join(REVISIONS)}" in first.stdout
    again = cli("migrate", "--database", empty_url, "--json")
    assert again.exit_code == 0, again.output
    assert again.json()["applied"] == []
    assert again.json()["to_revision"] == HEAD


def test_upgrade_sql_prints_ddl_without_touching_the_database(empty_url: str) -> None:
    result = cli("upgrade", "--sql", "--database", empty_url)
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE runs" in result.stdout
    if empty_url.startswith("sqlite"):
        assert not Path(empty_url.removeprefix("sqlite:///")).exists()
    else:
        assert cli("status", "--database", empty_url, "--json").json()["kind"] == "empty"


def test_status_reports_revision_pending_and_row_counts(
    migrated_url: str, samples_dir: Path
) -> None:
    import_samples(migrated_url, samples_dir)
    result = cli("status", "--database", migrated_url, "--json")
    assert result.exit_code == 0, result.output
    status = result.json()
    assert status["kind"] == "managed"
    assert status["alembic_revision"] == status["head_revision"] == HEAD
    assert status["pending"] == []
    assert status["needs_adoption"] is False
    assert status["row_counts"]["runs"] == 3
    assert status["row_counts"]["events"] == 3
    assert status["row_counts"]["schema_version"] == HEAD_VERSION
    human = cli("status", "--database", migrated_url)
    assert human.exit_code == 0
    assert "managed" in human.stdout
    assert "benchmarks" in human.stdout


def _empty_file(url: str) -> str:
    """An empty database: for SQLite an existing, empty file (a missing one is an error)."""
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).touch()
    return url


def test_status_of_an_empty_database_lists_what_upgrade_would_apply(empty_url: str) -> None:
    _empty_file(empty_url)
    status = cli("status", "--database", empty_url, "--json").json()
    assert status["kind"] == "empty"
    assert status["pending"] == REVISIONS
    assert status["row_counts"] == {}


def test_check_passes_on_a_migrated_database(migrated_url: str) -> None:
    result = cli("check", "--database", migrated_url)
    assert result.exit_code == 0, result.output
    assert "no findings" in result.stdout
    assert cli("check", "--database", migrated_url, "--json").json() == []


def test_check_exits_1_and_lists_each_finding(empty_url: str) -> None:
    _empty_file(empty_url)
    result = cli("check", "--database", empty_url)
    assert result.exit_code == 1
    assert "state: database is empty: run upgrade" in result.stdout
    findings = cli("check", "--database", empty_url, "--json")
    assert findings.exit_code == 1
    assert [f["kind"] for f in findings.json()] == ["state"]


def test_database_comes_from_the_environment(migrated_url: str) -> None:
    result = cli("status", "--json", env={"KARR_DATABASE_URL": migrated_url})
    assert result.exit_code == 0, result.output
    assert result.json()["kind"] == "managed"


def test_the_global_database_option_works_before_the_command(migrated_url: str) -> None:
    result = cli("--database", migrated_url, "status", "--json")
    assert result.json()["kind"] == "managed"


# --- import and export -------------------------------------------------------------


def test_import_a_directory_of_documents_then_again(migrated_url: str, samples_dir: Path) -> None:
    first = cli("import", "--database", migrated_url, str(samples_dir))
    assert first.exit_code == 0, first.output
    lines = [line for line in first.stdout.splitlines() if line.startswith("imported ")]
    assert len(lines) == 3  # one plain line per file off a terminal
    again = cli("import", "--database", migrated_url, "--json", str(samples_dir))
    assert again.exit_code == 0
    assert {o["status"] for o in again.json()["outcomes"]} == {"already_present"}


def test_import_a_tree_with_good_duplicate_and_broken_files(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "results"
    good = copy_samples(samples_dir, tree)
    import_samples(migrated_url, good[0])  # already present before the tree import
    broken = tree / "broken" / RESULT_FILE_NAME
    broken.parent.mkdir()
    broken.write_text("{not json", encoding="utf-8")
    invalid = tree / "nested" / "deeper" / RESULT_FILE_NAME
    invalid.parent.mkdir(parents=True)
    invalid.write_text(json.dumps({"model": "m", "passed": "perhaps"}), encoding="utf-8")
    (tree / "notes.json").write_text("{}", encoding="utf-8")  # not a result file name

    result = cli("import", "--database", migrated_url, str(tree))
    assert result.exit_code == 1
    assert "rejected" in result.stdout
    assert str(broken) in result.stdout
    assert "file(s) rejected" in result.stderr
    assert "notes.json" not in result.stdout

    report = cli("import", "--database", migrated_url, "--json", str(tree))
    assert report.exit_code == 1
    outcomes = {o["path"]: o for o in report.json()["outcomes"]}
    assert set(outcomes) == {*(str(p) for p in good), str(broken), str(invalid)}
    assert outcomes[str(broken)]["status"] == "rejected"
    assert outcomes[str(broken)]["reason"]
    assert outcomes[str(invalid)]["status"] == "rejected"
    assert {outcomes[str(p)]["status"] for p in good} == {"already_present"}
    assert cli("stats", "--database", migrated_url, "--json").json()["runs"] == 3


def test_import_shows_a_summary_table(migrated_url: str, samples_dir: Path) -> None:
    result = cli_process("import", "--database", migrated_url, str(samples_dir))
    assert result.returncode == 0, result.stderr
    assert "already present" in result.stdout
    assert "Traceback" not in result.stderr


def test_export_one_run_imports_back_as_the_same_run(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    run_id = import_samples(migrated_url, samples_dir)[0]
    target = tmp_path / "one.json"
    result = cli("export", run_id, "-o", str(target), "--database", migrated_url)
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8"))["model"]
    again = cli("import", "--database", migrated_url, "--json", str(target)).json()
    assert again["outcomes"][0] == {
        "path": str(target),
        "status": "already_present",
        "run_id": run_id,
        "reason": None,
    }


def test_export_by_filters_writes_a_tree(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    import_samples(migrated_url, samples_dir)
    out = tmp_path / "export"
    result = cli("export", "--engine", "ollama", "-o", str(out), "--database", migrated_url)
    assert result.exit_code == 0, result.output
    assert "exported 2 run(s)" in result.stdout
    assert len(list(out.glob(f"*/{RESULT_FILE_NAME}"))) == 2


def test_export_usage_errors_exit_2(migrated_url: str, tmp_path: Path) -> None:
    both = cli("export", "some-run", "--engine", "vllm", "-o", str(tmp_path), "-d", migrated_url)
    assert both.exit_code == 2
    assert cli("export", "some-run", "--database", migrated_url).exit_code == 2


# --- reading results ----------------------------------------------------------------


def test_list_is_newest_first_filtered_and_limited(migrated_url: str, samples_dir: Path) -> None:
    import_samples(migrated_url, samples_dir)
    runs = cli("list", "--database", migrated_url, "--json").json()["items"]
    stamps = [r["timestamp"] for r in runs]
    assert len(runs) == 3
    assert stamps == sorted(stamps, reverse=True)
    limited = cli("list", "--database", migrated_url, "--json", "--limit", "2").json()["items"]
    assert [r["id"] for r in limited] == [r["id"] for r in runs[:2]]
    tgi = cli("list", "--database", migrated_url, "--json", "--engine", "tgi").json()["items"]
    assert [r["engine"] for r in tgi] == ["tgi"]
    failed = cli("list", "--database", migrated_url, "--json", "--failed").json()["items"]
    assert [r["passed"] for r in failed] == [False]
    human = cli("list", "--database", migrated_url, "--limit", "2")
    assert human.exit_code == 0
    assert "2 of 3 run(s)" in human.stdout


def test_show_prints_benchmarks_and_metrics(migrated_url: str, samples_dir: Path) -> None:
    ids = import_samples(migrated_url, samples_dir)
    throughput = next(
        i
        for i in ids
        if cli("show", i, "--database", migrated_url, "--json").json()["suite_name"] == "quick"
        and cli("show", i, "--database", migrated_url, "--json").json()["total_benchmarks"] == 3
    )
    detail = cli("show", throughput, "--database", migrated_url, "--json").json()
    assert len(detail["benchmarks"]) == 3
    assert detail["benchmarks"][0]["metrics"]["avg_tps"] == pytest.approx(45.6)
    human = cli("show", throughput, "--database", migrated_url)
    assert human.exit_code == 0
    assert "avg_tps" in human.stdout
    assert "throughput #1" in human.stdout


def test_stats_counts_by_engine_and_model(migrated_url: str, samples_dir: Path) -> None:
    import_samples(migrated_url, samples_dir)
    stats = cli("stats", "--database", migrated_url, "--json").json()
    assert (stats["runs"], stats["passed"], stats["failed"]) == (3, 2, 1)
    assert {e["engine"]: e["runs"] for e in stats["by_engine"]} == {"ollama": 2, "tgi": 1}
    assert sum(m["runs"] for m in stats["by_model"]) == 3
    assert "3 run(s): 2 passed, 1 failed" in cli("stats", "--database", migrated_url).stdout


def test_leaderboard_groups_and_ranks(migrated_url: str, samples_dir: Path) -> None:
    import_samples(migrated_url, samples_dir)
    rows = cli(
        "leaderboard",
        "--metric",
        "avg_tps",
        "--by",
        "model,engine",
        "--test",
        "throughput",
        "--database",
        migrated_url,
        "--json",
    ).json()
    assert rows
    assert all(set(r["group"]) == {"model", "engine"} for r in rows)
    averages = [r["avg"] for r in rows]
    assert averages == sorted(averages, reverse=True)
    human = cli("leaderboard", "--metric", "avg_tps", "--database", migrated_url)
    assert human.exit_code == 0
    assert "avg_tps" in human.stdout


def test_leaderboard_with_an_unknown_group_field_exits_1(migrated_url: str) -> None:
    result = cli("leaderboard", "--metric", "avg_tps", "--by", "colour", "-d", migrated_url)
    assert result.exit_code == 1
    assert "unknown group field" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_lines_up_metrics(migrated_url: str, samples_dir: Path) -> None:
    ids = import_samples(migrated_url, samples_dir)
    comparison = cli("compare", *ids[:2], "--database", migrated_url, "--json").json()
    assert comparison["run_ids"] == ids[:2]
    assert all(len(row["values"]) == 2 for row in comparison["rows"])
    human = cli("compare", *ids, "--database", migrated_url)
    assert human.exit_code == 0
    assert ids[1][:8] in human.stdout


def test_compare_needs_two_runs(migrated_url: str) -> None:
    assert cli("compare", "only-one", "--database", migrated_url).exit_code == 2


def test_show_of_an_unknown_run_exits_1(migrated_url: str) -> None:
    result = cli("show", "no-such-run", "--database", migrated_url)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: run 'no-such-run' not found"


# --- docs, version, help -------------------------------------------------------------


def test_docs_check_passes_on_the_committed_file() -> None:
    committed = REPO_ROOT / docs.DEFAULT_PATH
    result = cli("docs", "--check", "-o", str(committed))
    assert result.exit_code == 0, result.output


def test_docs_writes_and_check_detects_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "database.md"
    assert cli("docs", "--check", "-o", str(target)).exit_code == 1
    written = cli("docs", "-o", str(target))
    assert written.exit_code == 0
    assert target.read_text(encoding="utf-8") == docs.render()
    assert cli("docs", "--check", "-o", str(target)).exit_code == 0
    target.write_text(docs.render() + "edited\n", encoding="utf-8")
    stale = cli("docs", "--check", "-o", str(target))
    assert stale.exit_code == 1
    assert "out of date" in stale.stderr


def test_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("karr-db ")


def test_help_shows_an_example_per_command() -> None:
    top = cli("--help")
    assert top.exit_code == 0
    for command in COMMANDS:
        assert f"karr-db {command}" in top.stdout or command == "migrate", command
        own = cli(command, "--help")
        assert own.exit_code == 0, command
        assert "Example: karr-db" in own.stdout, command


def test_usage_errors_exit_2() -> None:
    assert cli("list", "--no-such-option").exit_code == 2
    assert cli("no-such-command").exit_code == 2
    assert cli("leaderboard").exit_code == 2  # --metric is required


def test_import_on_a_terminal_draws_progress_instead_of_lines(
    migrated_url: str, samples_dir: Path
) -> None:
    """Under a pseudo-terminal the per-file lines give way to a (transient) progress bar."""
    pty = pytest.importorskip("pty")
    import os
    import subprocess

    from tests.cli_helpers import KARR_DB

    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "KARR_DATABASE_URL"}
    with subprocess.Popen(
        [str(KARR_DB), "import", "--database", migrated_url, str(samples_dir)],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**environment, "COLUMNS": "120", "TERM": "xterm"},
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process is done writing
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=120)
    os.close(leader)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert process.returncode == 0
    assert "importing" in screen  # the bar's label
    assert "already present" in screen  # the summary table follows it
    assert not any(line.startswith("imported        ") for line in screen.splitlines())
