"""Hypothesis strategies for KITT result documents (compare them with ``equality.same``).

Strings avoid NUL and lone surrogates, which the layer rejects on purpose
(tested separately); floats include NaN, the infinities, ``-0.0`` and large
values such as ``1e16`` that PostgreSQL's JSONB would otherwise hand back as
ints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import strategies as st

KNOWN_TOP_LEVEL = frozenset(
    {
        "model",
        "engine",
        "timestamp",
        "suite_name",
        "passed",
        "total_benchmarks",
        "passed_count",
        "failed_count",
        "total_time_seconds",
        "kitt_version",
        "results",
        "system_info",
    }
)

texts = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e16, 1.5e16, -0.0, 1e300, 5e-324, 0.1]),
)
ints = st.integers(min_value=-(2**63), max_value=2**63)
leaves = st.one_of(st.none(), st.booleans(), ints, floats, texts)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=12,
)
int32 = st.integers(min_value=0, max_value=2**31 - 1)
timestamps = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(st.none(), st.timezones()),
).map(lambda d: d.isoformat())
# '.' would let {"a": {"b": 1}} and {"a.b": 2} collide once flattened; that
# case is rejected on purpose and tested on its own.
metric_keys = texts.filter(lambda k: "." not in k)
metric_leaves = st.one_of(floats, ints.filter(lambda i: abs(i) < 2**62), st.booleans(), texts)
metric_values = st.recursive(
    metric_leaves,
    lambda children: st.dictionaries(metric_keys, children, max_size=4),
    max_leaves=10,
)


@st.composite
def benchmark_results(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {
                "test_name": texts,
                "metrics": st.dictionaries(metric_keys, metric_values, max_size=6),
            },
            optional={
                "test_version": texts,
                "run_number": int32,
                "passed": st.booleans(),
                "timestamp": timestamps,
                "errors": st.lists(texts, max_size=2),
                "warmup_times": st.lists(floats, max_size=3),
            },
        )
    )
    return item


system_infos = st.fixed_dictionaries(
    {},
    optional={
        "gpu": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "model": texts,
                "vram_gb": st.integers(0, 4096),
                "count": st.integers(0, 16),
                "compute_capability": st.lists(st.integers(0, 20), max_size=2),
            },
        ),
        "cpu": st.fixed_dictionaries(
            {}, optional={"model": texts, "cores": st.integers(1, 512), "threads": int32}
        ),
        "ram_gb": st.integers(0, 4096),
        "environment_type": texts,
        "fingerprint": texts,
        "cuda_version": st.none() | texts,
    },
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid result document: the known fields plus arbitrary extra keys."""
    document: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {"model": texts, "engine": texts, "timestamp": timestamps},
            optional={
                "suite_name": texts,
                "passed": st.booleans(),
                "total_benchmarks": int32,
                "passed_count": int32,
                "failed_count": int32,
                "total_time_seconds": floats,
                "kitt_version": texts,
                "results": st.lists(benchmark_results(), max_size=4),
                "system_info": system_infos,
            },
        )
    )
    extra = draw(
        st.dictionaries(texts.filter(lambda k: k not in KNOWN_TOP_LEVEL), json_values, max_size=3)
    )
    document.update(extra)
    return document
