"""Seeded KITT result documents shaped like ``../shared/samples/``.

A run has a dozen benchmarks (latency, throughput, quality, memory), nested
latency metrics such as ``ttft_ms.p50`` and about 200 numeric metric values,
plus the lists and strings KITT writes that live only in ``raw_json``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

MODELS = [
    "/models/Qwen2.5-32B-Instruct",
    "/models/Llama-3.1-70B-Instruct",
    "Llama-3.1-8B-Instruct-Q4_K_M.gguf",
    "/models/Mistral-7B-Instruct-v0.3",
    "/models/gemma-2-27b-it",
    "/models/Phi-3.5-mini-instruct",
    "/models/DeepSeek-R1-Distill-Qwen-14B",
    "/models/Qwen2.5-7B-Instruct",
]
ENGINES = ["vllm", "llama_cpp", "ollama", "sglang", "tgi"]
SUITES = ["standard", "quick", "nightly"]
GPUS = [
    ("NVIDIA H100 80GB HBM3", 80, "dgx"),
    ("NVIDIA RTX 4090 24GB", 24, "native_linux"),
    ("NVIDIA GB10", 0, "dgx_spark"),
    ("NVIDIA A100-SXM4-40GB", 40, "wsl2"),
]
SUBJECTS = [
    "abstract_algebra",
    "college_physics",
    "high_school_biology",
    "moral_scenarios",
    "professional_law",
    "world_religions",
    "virology",
    "econometrics",
    "astronomy",
    "anatomy",
]
LATENCY_GROUPS = ["ttft_ms", "tpot_ms", "itl_ms", "total_latency_ms"]
STATS = ["avg", "min", "max", "p50", "p90", "p95", "p99", "std_dev"]
START = datetime(2025, 6, 1, tzinfo=UTC)

#: The metric the query workloads aggregate (present in every run).
LEADERBOARD_METRIC = "ttft_ms.p95"


def _stats(rng: random.Random, base: float) -> dict[str, float]:
    values = sorted(round(base * rng.uniform(0.5, 2.5), 3) for _ in range(6))
    return {
        "avg": round(sum(values) / 6, 3),
        "min": values[0],
        "max": values[-1],
        "p50": values[2],
        "p90": values[3],
        "p95": values[4],
        "p99": values[5],
        "std_dev": round(rng.uniform(1, base / 3 + 1), 3),
    }


def _latency(rng: random.Random) -> dict[str, Any]:
    metrics: dict[str, Any] = {g: _stats(rng, rng.uniform(20, 400)) for g in LATENCY_GROUPS}
    metrics["prompt_tokens"] = rng.randint(64, 4096)
    metrics["output_tokens"] = rng.randint(64, 1024)
    metrics["streaming"] = True
    return metrics


def _throughput(rng: random.Random) -> dict[str, Any]:
    tps = rng.uniform(10, 3000)
    return {
        "total_iterations": 5,
        "total_tokens_generated": rng.randint(500, 50_000),
        "total_time_seconds": round(rng.uniform(5, 60), 3),
        "avg_tps": round(tps, 2),
        "min_tps": round(tps * 0.95, 2),
        "max_tps": round(tps * 1.05, 2),
        "avg_latency_ms": round(rng.uniform(100, 6000), 2),
        "p50_latency_ms": round(rng.uniform(100, 6000), 2),
        "p99_latency_ms": round(rng.uniform(100, 9000), 2),
        "batch": {"size": rng.choice([1, 8, 32]), "concurrency": rng.choice([1, 4, 16])},
    }


def _quality(rng: random.Random, subjects: bool) -> dict[str, Any]:
    total = rng.choice([200, 250, 500])
    correct = rng.randint(total // 3, total)
    metrics: dict[str, Any] = {
        "accuracy": round(correct / total, 4),
        "correct": correct,
        "total": total,
        "error_count": rng.randint(0, 2),
        "eval_method": "mc1",
    }
    if subjects:
        metrics["per_subject_accuracy"] = {s: round(rng.random(), 3) for s in SUBJECTS}
        metrics["num_subjects"] = len(SUBJECTS)
    return metrics


def _memory(rng: random.Random) -> dict[str, Any]:
    return {
        "gpu_memory_gb": {s: round(rng.uniform(4, 80), 2) for s in ("peak", "avg", "min")},
        "kv_cache_usage": {s: round(rng.random(), 3) for s in ("peak", "avg")},
        "cpu_memory_gb": round(rng.uniform(2, 64), 2),
        "oom": False,
    }


def document(rng: random.Random, index: int) -> dict[str, Any]:
    """One result document (about 200 metric values in 12 benchmarks)."""
    model = MODELS[rng.randrange(len(MODELS))]
    engine = ENGINES[rng.randrange(len(ENGINES))]
    gpu, vram, env = GPUS[rng.randrange(len(GPUS))]
    started = START + timedelta(seconds=index * 600 + rng.randrange(600))
    specs: list[tuple[str, dict[str, Any]]] = [
        *(("latency", _latency(rng)) for _ in range(3)),
        *(("throughput", _throughput(rng)) for _ in range(3)),
        ("mmlu", _quality(rng, True)),
        ("gsm8k", _quality(rng, False)),
        ("hellaswag", _quality(rng, False)),
        ("truthfulqa", _quality(rng, False)),
        ("memory", _memory(rng)),
        ("long_context", _latency(rng)),
    ]
    results = []
    moment = started
    numbers: dict[str, int] = {}
    for name, metrics in specs:
        numbers[name] = numbers.get(name, 0) + 1
        passed = rng.random() > 0.1
        moment += timedelta(seconds=rng.uniform(5, 90))
        results.append(
            {
                "test_name": name,
                "test_version": "1.0.0",
                "run_number": numbers[name],
                "passed": passed,
                "metrics": metrics,
                "errors": [] if passed else ["Error on question 117: HTTP Error 500"],
                "warmup_times": [round(rng.uniform(0.2, 2.0), 6) for _ in range(3)],
                "timestamp": moment.replace(tzinfo=None).isoformat(),
            }
        )
    passed_count = sum(1 for r in results if r["passed"])
    return {
        "kitt_version": "1.7.0",
        "suite_name": SUITES[rng.randrange(len(SUITES))],
        "timestamp": started.replace(tzinfo=None).isoformat(),
        "engine": engine,
        "model": model,
        "passed": passed_count == len(results),
        "total_benchmarks": len(results),
        "passed_count": passed_count,
        "failed_count": len(results) - passed_count,
        "total_time_seconds": round((moment - started).total_seconds(), 6),
        "results": results,
        "system_info": {
            "gpu": {"model": gpu, "vram_gb": vram, "count": rng.choice([1, 2, 8])},
            "cpu": {"model": "AMD EPYC 9654", "cores": rng.choice([16, 64, 96])},
            "ram_gb": rng.choice([64, 256, 512]),
            "environment_type": env,
            "fingerprint": f"bench-{rng.getrandbits(64):016x}",
        },
        "run_index": index,
    }


def documents(count: int, *, seed: int = 42, start: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` distinct documents, the same for the same seed and start."""
    rng = random.Random(seed * 1_000_003 + start)
    for index in range(start, start + count):
        yield document(rng, index)
