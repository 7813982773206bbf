"""The sample documents the suite uses ship with the repository and are valid KITT results.

They were written for these tests (a tgi accuracy suite that failed one of its
benchmarks, and an ollama throughput and latency run); other tests rely on the
shapes listed here, so a change to the samples shows up here first.
"""

from __future__ import annotations

import json
from pathlib import Path

from karr_db.documents import load_document, run_id_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_samples_live_inside_the_repository(samples_dir: Path) -> None:
    assert samples_dir.is_relative_to(REPO_ROOT)
    assert sorted(p.name for p in samples_dir.glob("*.json")) == [
        "sample_accuracy.json",
        "sample_agent_latency.json",
        "sample_decode_speed.json",
    ]


def test_every_sample_is_a_valid_distinct_document(samples_dir: Path) -> None:
    documents = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(samples_dir.glob("*"))]
    for document in documents:
        load_document(document)  # raises ValidationError naming the field otherwise
    assert len({run_id_for(d) for d in documents}) == len(documents)
    engines = sorted(d["engine"] for d in documents)
    assert engines == ["ollama", "ollama", "tgi"]
    assert [d["passed"] for d in documents] == [False, True, True]
    # Shapes the other tests lean on: nested metrics, a string and a boolean metric.
    accuracy, latency, speed = documents
    assert isinstance(accuracy["results"][0]["metrics"]["per_category_accuracy"], dict)
    assert accuracy["results"][2]["metrics"]["eval_method"] == "strict"
    assert accuracy["results"][3]["metrics"]["truncated_prompts"] is False
    assert set(latency["results"][0]["metrics"]) == {"ttft_ms", "total_latency_ms"}
    assert [r["run_number"] for r in speed["results"]] == [1, 2, 3]
