"""The configuration file: where it is, what it holds, its place in the order
flag > environment > file > default, ``karr-db config``, and the switch-over."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from karr_db.config import config_path, read_config, set_value
from karr_db.database import Database
from karr_db.engine import default_database_url, normalize_url
from karr_db.errors import ValidationError
from tests.support.cli import cli, cli_process
from tests.support.legacy import build_legacy


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "xdg" / "karr-db" / "config.toml"
    monkeypatch.delenv("KARR_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KARR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KARR_DATABASE_URL", raising=False)
    assert config_path() == path  # the XDG location
    return path


def test_the_file_lives_under_xdg_config_home_or_karr_config(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli("config", "path").stdout.strip() == str(config_file)
    monkeypatch.setenv("KARR_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert config_path() == tmp_path / "elsewhere.toml"


def test_precedence_flag_environment_file_default(
    config_file: Path, migrated_url: str, tmp_path: Path
) -> None:
    default = f"sqlite:///{tmp_path / 'home' / 'karr.db'}"
    assert default_database_url() == default
    missing = f"sqlite:///{tmp_path / 'nowhere.db'}"
    set_value("database.url", migrated_url)
    assert default_database_url() == migrated_url
    # The file names a working database: plain commands use it.
    assert cli("list").exit_code == 0
    shown = cli("config", "--json").json()
    assert shown["database"]["source"] == "configuration file"
    # The environment wins over the file, the flag over both.
    env: dict[str, str | None] = {"KARR_DATABASE_URL": missing}
    assert "nowhere.db does not exist" in cli("list", env=env).stderr
    assert cli("list", "-d", migrated_url, env=env).exit_code == 0
    assert cli("config", "--json", env=env).json()["database"]["source"] == "$KARR_DATABASE_URL"
    assert cli("-d", missing, "config", "--json").json()["database"]["source"] == "--database"


def test_database_without_a_url_reads_the_file(config_file: Path, migrated_url: str) -> None:
    set_value("database.url", migrated_url)
    with Database() as db, db.unit_of_work(readonly=True) as uow:
        assert db.engine.url == normalize_url(migrated_url)
        assert uow.results.count() == 0


def test_config_set_show_and_unset(config_file: Path, tmp_path: Path) -> None:
    url = "postgresql://karr:s3cret@db.example/karr"
    done = cli("config", "set", "database.url", url)
    assert done.exit_code == 0, done.output
    assert "s3cret" not in done.stdout  # passwords are masked in output, kept in the file
    assert read_config() == {"database.url": url}
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    shown = cli("config")
    assert "database.url" in shown.stdout
    assert "postgresql://karr:***@db.example/karr" in shown.stdout
    assert "s3cret" not in shown.stdout
    assert cli("config", "unset", "database.url").exit_code == 0
    assert read_config() == {}
    assert "was not set" in cli("config", "unset", "database.url").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("config", "set", "database.uri", "x"), "unknown setting 'database.uri'"),
        (("config", "set", "database.url"), "give the value"),
        (("config", "frobnicate"), "unknown action"),
    ],
)
def test_config_usage_errors(config_file: Path, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert not config_file.exists()


def test_a_broken_file_is_an_error_naming_it(config_file: Path) -> None:
    config_file.parent.mkdir(parents=True)
    config_file.write_text("[database]\nurl = 'sqlite:///a.db'\nuri = 'typo'\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        read_config()
    assert caught.value.fields == ["database.uri"]
    result = cli("list")
    assert result.exit_code == 1
    assert str(config_file) in result.stderr
    assert "database.uri" in result.stderr
    config_file.write_text("[database\n", encoding="utf-8")
    assert "is not valid TOML" in cli("list").stderr


def test_shell_completion_is_available() -> None:
    assert "--install-completion" in cli("--help").stdout
    # What --show-completion prints for the shell it detects, asked for bash.
    script = cli_process(env={"_KARR_DB_COMPLETE": "source_bash"})
    assert script.returncode == 0, script.stderr
    assert "complete -o default -F" in script.stdout
    completed = cli_process(
        env={"_KARR_DB_COMPLETE": "complete_bash", "COMP_WORDS": "karr-db lea", "COMP_CWORD": "1"}
    )
    assert "leaderboard" in completed.stdout.split()


# --- the switch-over from the earlier system --------------------------------------


@pytest.fixture
def kitt_home(tmp_path: Path, samples_dir: Path) -> Path:
    home = tmp_path / "kitt-home"
    home.mkdir()
    build_legacy(f"sqlite:///{home / 'kitt.db'}", 2, samples_dir)
    return home


def test_adopting_with_remember_makes_it_the_default(kitt_home: Path, tmp_path: Path) -> None:
    env = {"KARR_HOME": str(kitt_home), "KARR_CONFIG": str(tmp_path / "config.toml")}
    kitt = f"sqlite:///{kitt_home / 'kitt.db'}"
    before = cli_process("list", env=env)
    assert "adopt it with" in before.stderr
    adopted = cli_process("upgrade", "-d", kitt, "--remember", env=env)
    assert adopted.returncode == 0, adopted.stderr
    assert "recorded as the default database" in adopted.stdout
    after = cli_process("list", env=env)
    assert after.returncode == 0, after.stderr
    assert "adopt" not in after.stderr
    assert "run(s)" in after.stdout


def test_after_adoption_the_hint_says_how_to_use_it(kitt_home: Path, tmp_path: Path) -> None:
    env = {"KARR_HOME": str(kitt_home), "KARR_CONFIG": str(tmp_path / "config.toml")}
    kitt = f"sqlite:///{kitt_home / 'kitt.db'}"
    adopted = cli_process("upgrade", "-d", kitt, env=env)  # not a terminal: nothing asked
    assert adopted.returncode == 0, adopted.stderr
    assert f"to use it by default: karr-db config set database.url {kitt}" in adopted.stdout
    assert not (tmp_path / "config.toml").exists()
    after = cli_process("list", env=env)
    assert after.returncode == 1
    assert "adopt it with" not in after.stderr  # the adoption hint stops
    assert "is adopted already" in after.stderr
    assert f"karr-db config set database.url {kitt}" in after.stderr
    recorded = cli_process("config", "set", "database.url", kitt, env=env)
    assert recorded.returncode == 0, recorded.stderr
    assert cli_process("list", env=env).returncode == 0


def test_a_relative_sqlite_path_is_recorded_absolute(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("config", "set", "database.url", "sqlite:///here.db").exit_code == 0
    assert read_config() == {"database.url": f"sqlite:///{tmp_path / 'here.db'}"}


def test_writing_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """The temporary file is a fresh name made exclusively: a symlink planted at
    the old fixed ``.partial`` name is neither followed nor truncated."""
    path = tmp_path / "new" / "karr-db" / "config.toml"
    path.parent.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (path.parent / "config.toml.partial").symlink_to(victim)
    set_value("database.url", "sqlite:////tmp/karr.db", path)
    assert victim.read_text() == "keep me\n"
    assert read_config(path) == {"database.url": "sqlite:////tmp/karr.db"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml", "config.toml.partial"]


def test_a_new_configuration_directory_is_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "karr-db" / "config.toml"
    set_value("database.url", "sqlite:////tmp/karr.db", path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
