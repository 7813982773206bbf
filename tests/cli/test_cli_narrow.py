"""The tables at 80 columns on a real (pseudo-)terminal: rows stay apart, nothing
wraps that should not."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import import_samples, run_in_pty

WIDTH = 80
SUBJECTS = ("abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge")
MODELS = (
    "/home/kitt/.kitt/models/Llama-3.1-8B-Instruct-Q4_K_M.gguf",
    "/home/kitt/.kitt/models/Qwen2.5-7B-Instruct-Q4_K_M.gguf",
)


def _document(model: str, hour: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {"avg_tps": 40.0 + hour, "avg_latency_ms": 11227.5 + hour}
    metrics["per_subject_accuracy"] = {s: 0.5 + hour / 100 for s in SUBJECTS}
    return {
        "model": model,
        "engine": "llama_cpp",
        "suite_name": "standard",
        "timestamp": f"2026-02-27T{hour:02d}:00:00",
        "passed": True,
        "results": [{"test_name": "mmlu", "run_number": 1, "passed": True, "metrics": metrics}],
    }


@pytest.fixture
def narrow_url(migrated_url: str, tmp_path: Path) -> tuple[str, list[str]]:
    for n, model in enumerate(MODELS):
        path = tmp_path / str(n) / "metrics.json"
        path.parent.mkdir()
        path.write_text(json.dumps(_document(model, n + 1)), encoding="utf-8")
    return migrated_url, import_samples(migrated_url, tmp_path)


def _screen(*args: str) -> list[str]:
    code, screen = run_in_pty(*args, columns=WIDTH)
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen).replace("\r", "")
    assert code == 0, plain
    lines = plain.splitlines()
    assert all(len(line.rstrip()) <= WIDTH for line in lines), plain
    return lines


def test_leaderboard_rows_of_different_models_look_different(
    narrow_url: tuple[str, list[str]],
) -> None:
    url, _ = narrow_url
    lines = _screen("leaderboard", "-d", url, "--metric", "avg_tps", "--by", "model,engine")
    text = "\n".join(lines)
    assert "-8B-Instruct-Q4_K_M.gguf" in text, text  # the distinguishing tail
    assert "-7B-Instruct-Q4_K_M.gguf" in text, text
    assert "/home/kitt/.kitt/mo" not in text, text  # not the shared head
    rows = [line for line in lines if re.match(r"^\s+[12]\s", line)]
    assert len(rows) == 2
    assert rows[0].split()[1] != rows[1].split()[1]


def test_leaderboard_wraps_paths_that_differ_only_early(migrated_url: str, tmp_path: Path) -> None:
    same_file = [f"/data/{team}/models/Llama-3.1-8B-Instruct-Q4_K_M.gguf" for team in "ab"]
    for n, model in enumerate(same_file):
        path = tmp_path / str(n) / "metrics.json"
        path.parent.mkdir()
        path.write_text(json.dumps(_document(model, n + 1)), encoding="utf-8")
    import_samples(migrated_url, tmp_path)
    lines = _screen("leaderboard", "-d", migrated_url, "--metric", "avg_tps")
    text = "\n".join(lines)
    assert "/data/a/" in text, text  # wrapped whole, not cut to the same tail
    assert "/data/b/" in text, text


def test_compare_shows_each_metric_name_whole(narrow_url: tuple[str, list[str]]) -> None:
    url, ids = narrow_url
    lines = _screen("compare", "-d", url, *ids)
    text = "\n".join(lines)
    assert "…" not in text, text
    assert "mmlu #1" in text  # the benchmark titles its table
    for subject in SUBJECTS:
        assert re.search(rf"^\s+per_subject_accuracy\.{subject}\s+0\.51\s", text, re.M), text
    assert "0.52 (+0.01, +2.0%)" in text


def test_events_keep_each_timestamp_on_one_line(narrow_url: tuple[str, list[str]]) -> None:
    url, ids = narrow_url
    lines = _screen("events", "-d", url, "-n", "3")
    stamps = [line for line in lines if re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)]
    assert len(stamps) == 2, "\n".join(lines)  # two run.saved events, each time whole
    for run_id, line in zip(ids, stamps, strict=True):
        assert run_id[:13] in line  # the source's start, a prefix commands take
