"""The document model, metric flattening, ids, and the JSON encoding they rely on (no database)."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import karr_db.documents as documents_package
from karr_db.documents import (
    canonical_json,
    flatten_metrics,
    load_document,
    run_id_for,
)
from karr_db.errors import ValidationError
from karr_db.models.types import decode_json, dumps_json, encode_json, parse_timestamp
from tests.support.documents import minimal
from tests.support.equality import same
from tests.support.strategies import documents, json_values


def test_flattening_dots_nested_names_and_keeps_only_numbers() -> None:
    flat = flatten_metrics(
        {
            "ttft_ms": {"p50": 35.1, "p99": 88.2},
            "per_prompt_peak_gb": {"long": 3, "short": {"deep": 1}},
            "ok": True,
            "bad": False,
            "method": "mc1",
            "list": [1, 2],
            "none": None,
            "nan": math.nan,
        }
    )
    got = {f.name: f.value for f in flat}
    assert list(got) == [
        "ttft_ms.p50",
        "ttft_ms.p99",
        "per_prompt_peak_gb.long",
        "per_prompt_peak_gb.short.deep",
        "ok",
        "bad",
        "nan",
    ]
    assert got["ok"] == 1.0
    assert got["bad"] == 0.0
    assert isinstance(got["per_prompt_peak_gb.long"], float)
    assert math.isnan(got["nan"])


def test_names_that_collide_once_flattened_are_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        load_document(minimal(results=[{"test_name": "t", "metrics": {"a": {"b": 1}, "a.b": 2}}]))
    assert caught.value.fields == ["results.0.metrics.a.b"]


def test_an_integer_metric_beyond_float_range_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        load_document(minimal(results=[{"test_name": "t", "metrics": {"n": 10**400}}]))
    assert caught.value.fields == ["results.0.metrics.n"]


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        load_document({"model": 1, "timestamp": "soon", "results": [{"passed": "no"}]})
    assert set(caught.value.fields) == {
        "model",
        "engine",
        "timestamp",
        "results.0.test_name",
        "results.0.passed",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not"),
        ("", "not JSON"),
        ("null", "expected a JSON object"),
        ('"text"', "expected a JSON object"),
    ],
)
def test_non_documents_are_rejected(data: str | bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        load_document(data)
    assert caught.value.fields == ["<document>"]


def test_strings_postgresql_cannot_store_are_rejected_by_field() -> None:
    document = minimal(extra={"list": ["ok", "bad\x00"]}, nested={"k\x00": 1})
    with pytest.raises(ValidationError) as caught:
        load_document(document)
    assert caught.value.fields == ["extra.list.1", "nested.'k\\x00'"]
    with pytest.raises(ValidationError) as caught:
        load_document(minimal(model="\ud800"))
    assert caught.value.fields == ["model"]


def test_non_json_python_values_are_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        load_document(minimal(when=object(), keys={1: "x"}))
    assert caught.value.fields == ["when", "keys.1"]


def test_integers_must_fit_the_columns() -> None:
    with pytest.raises(ValidationError) as caught:
        load_document(minimal(total_benchmarks=2**31, passed=1))
    assert caught.value.fields == ["passed", "total_benchmarks"]


def test_unknown_keys_are_kept() -> None:
    document = minimal(ram_type="DDR5", system_info={"storage": {"type": "nvme"}})
    assert load_document(document).document == document


def test_the_id_ignores_key_order_and_follows_content() -> None:
    a = minimal(x=1, y=[1.5, {"b": 2, "a": 3}])
    b = dict(reversed(list(a.items())))
    b["y"] = [1.5, {"a": 3, "b": 2}]
    assert run_id_for(a) == run_id_for(b)
    assert run_id_for(a) != run_id_for(minimal(x=2, y=a["y"]))
    assert run_id_for(minimal(x=1.0)) != run_id_for(minimal(x=1))


def test_the_id_is_stable_across_releases() -> None:
    """Stored ids depend on the namespace and canonical form: they must never change."""
    assert canonical_json({"b": math.nan, "a": 1e16}) == (
        '{"a":{"$float":"1e+16"},"b":{"$float":"NaN"}}'
    )
    assert run_id_for(minimal()) == "7441fa93-a4fc-5184-b7a8-ac9c2d6241a2"


def test_text_with_nan_tokens_loads_as_floats() -> None:
    loaded = load_document('{"model":"m","engine":"e","timestamp":"2026-01-01","x":NaN}')
    assert math.isnan(loaded.document["x"])


@settings(max_examples=200)
@given(value=json_values)
def test_json_encoding_round_trips_through_strict_json(value: Any) -> None:
    text = dumps_json(value)
    assert same(decode_json(json.loads(text)), value)
    assert same(decode_json(encode_json(value)), value)


@pytest.mark.parametrize("number", [1e16, 1.5e16, 1e300, -0.0, math.nan, math.inf, -math.inf])
def test_floats_jsonb_would_turn_into_ints_are_marked(number: float) -> None:
    encoded = encode_json([number])[0]
    assert isinstance(encoded, dict)
    assert same(decode_json(encoded), number)


@pytest.mark.parametrize("number", [0.0, 1.0, 0.1, 1e-7, 5e-324, 123456.789])
def test_ordinary_floats_stay_plain(number: float) -> None:
    assert encode_json(number) == number


@settings(max_examples=50)
@given(document=documents())
def test_generated_documents_are_valid(document: dict[str, Any]) -> None:
    loaded = load_document(document)
    assert loaded.run_id == run_id_for(json.loads(json.dumps(document)))
    assert len(loaded.metrics) == len(document.get("results", []))


@given(st.sampled_from(["model", "engine", "timestamp"]))
def test_each_required_field_is_named_when_missing(field: str) -> None:
    document = minimal()
    del document[field]
    with pytest.raises(ValidationError) as caught:
        load_document(document)
    assert caught.value.fields == [field]


@pytest.mark.parametrize(
    "timestamp", ["0999-12-31T23:59:59", "9999-12-31T23:00:00-05:00", "", "2026-13-01"]
)
def test_timestamps_outside_the_columns_range_are_rejected(timestamp: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_document(minimal(timestamp=timestamp))
    assert caught.value.fields == ["timestamp"]


def test_timestamps_with_an_offset_are_accepted() -> None:
    loaded = load_document(minimal(timestamp="2026-02-27T03:40:12+05:00"))
    run_timestamp = parse_timestamp(loaded.model.timestamp)  # as the runs column reads it
    assert run_timestamp is not None
    assert run_timestamp.hour == 22


def test_duplicate_keys_keep_the_last_value_before_anything_is_stored() -> None:
    """JSONB would drop duplicates anyway; parsing decides once, the same for both dialects."""
    loaded = load_document('{"model":"a","engine":"e","timestamp":"2026-01-01","model":"b"}')
    assert loaded.model.model == "b"
    assert loaded.document == {"model": "b", "engine": "e", "timestamp": "2026-01-01"}


@pytest.mark.parametrize("size", [math.nan, math.inf, 1e300, 2**40])
def test_hardware_sizes_must_fit_their_columns(size: float) -> None:
    with pytest.raises(ValidationError) as caught:
        load_document(minimal(system_info={"ram_gb": size, "gpu": {"vram_gb": size}}))
    assert caught.value.fields == ["system_info.gpu.vram_gb", "system_info.ram_gb"]


def test_fractional_hardware_sizes_are_accepted() -> None:
    loaded = load_document(minimal(system_info={"ram_gb": 62.7}))
    assert loaded.model.system_info is not None
    assert loaded.model.system_info.ram_gb == 62.7


class _Level(enum.IntEnum):
    LOW = 1


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


#: Values a caller may hand over that are not what json.loads builds: each must
#: take the full checks (refused by name, or accepted exactly as they accept it).
_odd_values = st.one_of(
    st.tuples(st.integers()),
    st.builds(lambda: _Level.LOW),
    st.binary(max_size=3),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
    st.just("nul\x00inside"),
    st.just("lone \ud800 surrogate"),
    st.just(10**3100),
    st.builds(_nested, st.integers(60, 70)),
)


def _outcome(document: Any) -> Any:
    try:
        checked = load_document(document)
    except ValidationError as exc:
        return ("refused", sorted((e.field, e.message) for e in exc.errors))
    return ("accepted", checked.run_id, checked.model.model_dump(), checked.metrics)


@settings(max_examples=300, deadline=None)
@given(
    document=documents(),
    odd=st.one_of(st.none(), _odd_values),
    where=st.sampled_from(["top", "metrics", "system_info"]),
)
def test_the_plain_json_shortcut_gives_the_full_checks_answer(
    document: dict[str, Any], odd: Any, where: str
) -> None:
    """``load_document`` skips its walks for values built like parsed JSON
    (``plain_json``); with the shortcut off, every document gets the same answer."""
    if odd is not None:
        target = {
            "top": document,
            "metrics": (document.get("results") or [{"metrics": document}])[0]["metrics"],
            "system_info": document.get("system_info") or document,
        }[where]
        target["odd"] = odd
    fast = _outcome(document)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(documents_package, "plain_json", lambda value: False)
        full = _outcome(document)
    assert same(fast, full)
