"""``--model`` as a user types it: exact, substring or glob, the same on both dialects,
through every read that takes run filters."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from karr_db.errors import InvalidQueryError
from karr_db.repositories.results import ResultsRepository
from karr_db.repositories.results.filters import match_models
from tests.integration.test_results_query import doc
from tests.support.cli import cli
from tests.support.repositories import on

LLAMA_Q4 = "/home/kitt/.kitt/models/Llama-3.1-8B-Instruct-Q4_K_M.gguf"
LLAMA_Q8 = "/home/kitt/.kitt/models/Llama-3.1-8B-Instruct-Q8_0.gguf"
QWEN = "/srv/models/Qwen2.5-32B-Instruct"
MODELS = (LLAMA_Q4, LLAMA_Q8, QWEN, "llama")


@pytest.mark.parametrize(
    ("text", "how", "found"),
    [
        ("llama", "exact", ("llama",)),  # a stored name is taken as it is
        ("Llama-3.1", "substring", (LLAMA_Q4, LLAMA_Q8)),
        ("qwen", "substring", (QWEN,)),  # case ignored
        ("*q4*", "glob", (LLAMA_Q4,)),
        ("*LLAMA*", "glob", (LLAMA_Q4, LLAMA_Q8, "llama")),
        ("/srv/*", "glob", (QWEN,)),
        ("*.gguf", "glob", (LLAMA_Q4, LLAMA_Q8)),
        ("mistral", "substring", ()),
        ("[", "glob", ()),  # an unclosed class matches nothing rather than failing
    ],
)
def test_match_models(text: str, how: str, found: tuple[str, ...]) -> None:
    match = match_models(text, MODELS)
    assert (match.how, set(match.models)) == (how, set(found))


@pytest.fixture
def repo(session: Session) -> ResultsRepository:
    repo = on(ResultsRepository, session)
    for day, model in enumerate(MODELS, 1):
        repo.save(doc(model, "llama_cpp", day, [10.0 * day]))
    return repo


def test_every_read_selects_the_matched_models(repo: ResultsRepository) -> None:
    match = repo.match_models("Llama-3.1")
    assert match.how == "substring"
    assert set(match.models) == {LLAMA_Q4, LLAMA_Q8}
    chosen = {"models": match.models}
    assert {r.model for r in repo.list(chosen).items} == {LLAMA_Q4, LLAMA_Q8}
    assert repo.count(chosen) == 2
    assert {g.name for g in repo.stats(chosen).by_model} == {LLAMA_Q4, LLAMA_Q8}
    board = repo.leaderboard("avg_tps", filters=chosen, median=False)
    assert {r.group["model"] for r in board} == {LLAMA_Q4, LLAMA_Q8}
    history = repo.metric_history("avg_tps", filters=chosen).items
    assert {(p.model, p.value) for p in history} == {(LLAMA_Q4, 10.0), (LLAMA_Q8, 20.0)}
    assert {r.model for r in repo.iter_metric_values(chosen)} == {LLAMA_Q4, LLAMA_Q8}
    assert repo.count({"models": ()}) == 0  # nothing matched: nothing selected
    assert repo.match_models("llama").models == ("llama",)


def test_a_models_filter_with_an_unstorable_name_is_refused(repo: ResultsRepository) -> None:
    with pytest.raises(InvalidQueryError, match="models"):
        repo.count({"models": ("ok", "bad\x00")})


def test_the_cli_model_option_finds_kitt_paths(migrated_url: str, tmp_path: Path) -> None:
    import json

    for day, model in enumerate(MODELS[:3], 1):
        path = tmp_path / str(day) / "metrics.json"
        path.parent.mkdir()
        path.write_text(json.dumps(doc(model, "llama_cpp", day, [1.0 * day])), encoding="utf-8")
    assert cli("import", "-d", migrated_url, str(tmp_path)).exit_code == 0
    listed = cli("list", "--model", "llama", "-n", "20", "-d", migrated_url)
    assert listed.exit_code == 0, listed.output
    assert "2 of 2 run(s)" in listed.stdout
    assert "no model is named 'llama'" in listed.stderr  # the hint says how it matched
    as_json = cli("list", "--model", "*Q8*", "--json", "-d", migrated_url).json()
    assert [r["model"] for r in as_json["items"]] == [LLAMA_Q8]
    stats = cli("stats", "--model", "qwen", "--json", "-d", migrated_url).json()
    assert stats["runs"] == 1
    board = cli("leaderboard", "-m", "avg_tps", "--model", "llama", "--json", "-d", migrated_url)
    assert {r["group"]["model"] for r in board.json()} == {LLAMA_Q4, LLAMA_Q8}
    history = cli("history", "-m", "avg_tps", "--model", "*q4*", "--json", "-d", migrated_url)
    assert {p["model"] for p in history.json()} == {LLAMA_Q4}
    tidy = cli("export", "--format", "csv", "--model", "llama", "-o", "-", "-d", migrated_url)
    assert {line.split(",")[1] for line in tidy.stdout.splitlines()[1:]} == {LLAMA_Q4, LLAMA_Q8}
    nothing = cli("list", "--model", "mistral", "-d", migrated_url)
    assert nothing.exit_code == 0
    assert "matches no stored model name" in nothing.stderr
