"""One set of Python values on both dialects: the types in karr_db.models.types."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import StatementError

from karr_db.engine import make_engine
from karr_db.models import Base
from karr_db.models.types import (
    TIMESTAMP_FORMAT,
    decode_json,
    encode_json,
    format_timestamp,
    parse_timestamp,
)
from tests.support.equality import same

runs = Base.metadata.tables["runs"]
metrics = Base.metadata.tables["metrics"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-12 10:00:00", datetime(2026, 2, 12, 10, 0, tzinfo=UTC)),
        ("2026-02-12T10:00:00.123456", datetime(2026, 2, 12, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-02-12T10:00:00+00:00", datetime(2026, 2, 12, 10, 0, tzinfo=UTC)),
        ("2026-02-12T12:30:00+02:00", datetime(2026, 2, 12, 10, 30, tzinfo=UTC)),
        ("2026-02-12 10:00:00.000000+00:00", datetime(2026, 2, 12, 10, 0, tzinfo=UTC)),
        ("", None),
        ("   ", None),
    ],
)
def test_every_legacy_timestamp_form_reads_back(text: str, expected: datetime | None) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


def test_unreadable_timestamp_names_the_value() -> None:
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_timestamp("yesterday")


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_timestamp(datetime(2026, 1, 1))


aware = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.astimezone(timezone(timedelta(hours=-7))))


@given(st.lists(aware, min_size=2, max_size=8))
def test_stored_text_is_fixed_width_and_orders_like_the_times(values: list[datetime]) -> None:
    texts = [format_timestamp(v) for v in values]
    assert len({len(t) for t in texts}) == 1
    assert sorted(texts) == [format_timestamp(v) for v in sorted(values)]
    assert all(
        datetime.strptime(t, TIMESTAMP_FORMAT).replace(tzinfo=UTC) == v
        for t, v in zip(texts, values, strict=True)
    )


@pytest.mark.parametrize("year", [1, 999, 1000, 9999])
def test_every_year_is_written_four_digits_wide_and_reads_back(year: int) -> None:
    value = datetime(year, 6, 1, 12, 0, 0, 5, tzinfo=UTC)
    text = format_timestamp(value)
    assert text == f"{year:04d}-06-01 12:00:00.000005+00:00"
    assert parse_timestamp(text) == value


def test_new_timestamps_sort_correctly_against_legacy_utc_text() -> None:
    legacy = "2026-02-12 10:00:00"
    assert format_timestamp(datetime(2026, 2, 12, 9, 59, 59, 999999, tzinfo=UTC)) < legacy
    assert format_timestamp(datetime(2026, 2, 12, 10, 0, 0, 1, tzinfo=UTC)) > legacy


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(aware, min_size=1, max_size=6, unique=True))
def test_timestamps_round_trip_and_order_in_the_database(
    engine: sa.Engine, values: list[datetime]
) -> None:
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(
            sa.insert(runs), [{"id": f"r{i}", "timestamp": v} for i, v in enumerate(values)]
        )
        read = (
            connection.execute(sa.select(runs.c.timestamp).order_by(runs.c.timestamp))
            .scalars()
            .all()
        )
        transaction.rollback()
    assert read == sorted(values)
    assert all(v is not None and v.tzinfo is UTC for v in read)


def test_naive_datetime_is_refused_by_the_column(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        with pytest.raises(StatementError, match="naive"):
            connection.execute(sa.insert(runs).values(id="r", timestamp=datetime(2026, 1, 1)))
        connection.rollback()
        assert connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 0


def test_text_timestamps_of_the_earlier_system_read_back(sqlite_databases: Any) -> None:
    # SQLite only: PostgreSQL's TIMESTAMPTZ columns cannot hold text.
    url = sqlite_databases.migrated()
    engine = make_engine(url)
    forms = ["2026-02-12 10:00:00", "2026-02-12T10:00:00.123456", "2026-02-12T10:00:00+00:00", ""]
    with engine.begin() as connection:
        for i, text in enumerate(forms):
            connection.exec_driver_sql(
                "INSERT INTO runs (id, timestamp) VALUES (?, ?)", (f"r{i}", text)
            )
        read = dict(connection.execute(sa.select(runs.c.id, runs.c.timestamp)).all())
    engine.dispose()
    assert read == {f"r{i}": parse_timestamp(text) for i, text in enumerate(forms)}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.1, -0.0, 1e308, 5e-324])
def test_metric_values_round_trip_exactly(engine: sa.Engine, value: float) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(metrics).values(metric_name="m", metric_value=value))
        read = connection.execute(sa.select(metrics.c.metric_value)).scalar_one()
    assert isinstance(read, float)
    # SQLite keeps REAL zero without its sign; everything else exactly.
    assert same(read, value, strict=value != 0)


@pytest.mark.parametrize("value", [True, False, None])
def test_booleans_round_trip(engine: sa.Engine, value: bool | None) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(runs).values(id="r", passed=value))
        assert connection.execute(sa.select(runs.c.passed)).scalar_one() is value


DOCUMENTS: list[Any] = [
    {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "nested": [{"x": math.nan}]},
    {"$float": "NaN"},  # looks like the encoding's marker: must stay a dict
    {"$escaped": {"$float": "Infinity"}},
    {"a": {"$float": "not-a-token"}},
    {"unicode": "ünïcødé ✓ 日本語 🚀", "empty": {}, "list": [], "null": None},
    [1, 2.5, "three", None, True],
    "a bare string",
    42,
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_json_documents_round_trip(engine: sa.Engine, document: Any) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(runs).values(id="r", raw_json=document))
        read = connection.execute(sa.select(runs.c.raw_json)).scalar_one()
    assert same(read, document)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["$float", "$escaped", "a", "b"]) | st.text(max_size=4),
            children,
            max_size=3,
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_json_encoding_is_lossless_and_strict(value: Any) -> None:
    import json

    encoded = encode_json(value)
    text = json.dumps(encoded, allow_nan=False)  # strict JSON: no NaN tokens left
    assert same(decode_json(json.loads(text)), value)
