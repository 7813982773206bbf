"""What the tables say: numbers without exponents, a run's errors in ``show``,
``history`` kept apart by model and engine."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from karr_db.cli._output import fmt, number
from tests.support.cli import cli, import_samples

#: Scientific notation as Python, Rich or plotext would write it.
EXPONENT = re.compile(r"\d[eE][+-]?\d")


def _read_back(text: str) -> float:
    return float(text.replace(",", ""))


@given(
    st.one_of(
        st.floats(min_value=1e4, max_value=1e6),
        st.floats(min_value=-1e6, max_value=-1e4),
        st.floats(min_value=1e-12, max_value=1e-3),
        st.floats(min_value=1e6, max_value=1e15),
    )
)
def test_numbers_never_use_an_exponent_and_keep_four_digits(value: float) -> None:
    for text in (number(value), number(value, sign=True), fmt(value)):
        assert not EXPONENT.search(text), text
        assert math.isclose(_read_back(text), value, rel_tol=1e-3), (value, text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (11227.5, "11,228"),
        (18240.6, "18,241"),
        (5566.0, "5,566"),
        (45.57, "45.57"),
        (1e6, "1,000,000"),
        (0.0001234, "0.0001234"),
        (0.0, "0"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_number_examples(value: float, text: str) -> None:
    assert number(value) == text


def _document(model: str, engine: str, hour: int, **metrics: float) -> dict[str, Any]:
    return {
        "model": model,
        "engine": engine,
        "suite_name": "quick",
        "timestamp": f"2026-02-01T{hour:02d}:00:00",
        "passed": True,
        "results": [
            {
                "test_name": "throughput",
                "run_number": 1,
                "passed": True,
                "metrics": metrics,
                "errors": [],
            }
        ],
    }


def _import(url: str, directory: Path, documents: list[dict[str, Any]]) -> list[str]:
    for n, document in enumerate(documents):
        path = directory / f"{n:03d}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(document), encoding="utf-8")
    return import_samples(url, directory)


def test_every_table_writes_large_and_tiny_values_without_exponents(
    migrated_url: str, tmp_path: Path
) -> None:
    ids = _import(
        migrated_url,
        tmp_path,
        [
            _document("m1", "vllm", 1, avg_latency_ms=11227.5, tiny=0.0000123, big=543210.9),
            _document("m2", "vllm", 2, avg_latency_ms=18240.6, tiny=0.0000456, big=987654.3),
        ],
    )
    outputs = [
        cli("show", ids[0], "-d", migrated_url),
        cli("leaderboard", "--metric", "avg_latency_ms", "-d", migrated_url),
        cli("leaderboard", "--metric", "tiny", "-d", migrated_url),
        cli("compare", *ids, "-d", migrated_url),
        cli("history", "--metric", "big", "--model", "m1", "-d", migrated_url),
    ]
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert not EXPONENT.search(result.stdout), result.stdout
    assert "11,228" in outputs[0].stdout
    assert "0.0000123" in outputs[0].stdout
    assert "18,241" in outputs[1].stdout
    assert "0.0000456" in outputs[2].stdout
    assert "+7,013" in outputs[3].stdout  # the difference, grouped like the values
    assert "+444,443" in outputs[3].stdout


def test_show_reports_the_errors_of_each_benchmark(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    ids = import_samples(migrated_url, samples_dir)
    accuracy = ids[0]  # sample_accuracy.json: humaneval reported two errors
    table = cli("show", accuracy, "-d", migrated_url)
    assert table.exit_code == 0, table.output
    assert "HTTP Error 503: Service Unavailable" in table.stdout
    assert "generation exceeded 60 s and was cut off" in table.stdout
    detail = cli("show", accuracy, "-d", migrated_url, "--json").json()
    by_test = {b["test_name"]: b["errors"] for b in detail["benchmarks"]}
    assert by_test["humaneval"] == [
        "Problem HumanEval/32: generation exceeded 60 s and was cut off",
        "Problem HumanEval/129: HTTP Error 503: Service Unavailable",
    ]
    assert by_test["ifeval"] == []
    clean = cli("show", ids[2], "-d", migrated_url, "--json").json()
    assert all(b["errors"] == [] for b in clean["benchmarks"])


def test_history_keeps_models_and_engines_apart(migrated_url: str, tmp_path: Path) -> None:
    documents = [
        _document("/home/kitt/.kitt/models/small.gguf", "llama_cpp", h, avg_tps=100.0 + h)
        for h in range(3)
    ] + [
        _document("/home/kitt/.kitt/models/large.gguf", "llama_cpp", h, avg_tps=10.0 + h)
        for h in range(3, 6)
    ]
    _import(migrated_url, tmp_path, documents)
    rows = list(
        csv.DictReader(
            io.StringIO(cli("history", "-m", "avg_tps", "--csv", "-d", migrated_url).stdout)
        )
    )
    assert [(r["model"].rsplit("/", 1)[-1], r["engine"]) for r in rows] == [
        ("small.gguf", "llama_cpp")
    ] * 3 + [("large.gguf", "llama_cpp")] * 3
    points = cli("history", "-m", "avg_tps", "--json", "-d", migrated_url).json()
    assert {p["model"].rsplit("/", 1)[-1] for p in points} == {"small.gguf", "large.gguf"}
    chart = cli("history", "-m", "avg_tps", "-d", migrated_url)
    assert chart.exit_code == 0, chart.output
    assert "small.gguf" in chart.stdout  # one line per model, each in the legend
    assert "large.gguf" in chart.stdout
    assert "in 2 series" in chart.stdout
    one = cli("history", "-m", "avg_tps", "--model", "*large*", "-d", migrated_url)
    assert "avg_tps (throughput) of large.gguf on llama_cpp" in one.stdout


def test_history_refuses_more_lines_than_a_chart_can_show(
    migrated_url: str, tmp_path: Path
) -> None:
    _import(
        migrated_url, tmp_path, [_document(f"model-{n}", "vllm", n, avg_tps=1.0) for n in range(9)]
    )
    result = cli("history", "-m", "avg_tps", "-d", migrated_url)
    assert result.exit_code == 2
    assert "9 series (9 model(s), 1 engine(s), 1 test(s))" in result.output
    assert "--model" in result.output
