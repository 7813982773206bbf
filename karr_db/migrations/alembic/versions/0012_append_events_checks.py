"""Revision 0012, beyond the reference: the append function checks what it is given.

Adds no table and no column. PostgreSQL only (SQLite has no
roles: every writer goes through the layer's own checks).

``karr_append_events`` (revision 0008) runs as its owner, so the application
role could hand it anything the column types hold: an ``infinity`` or year-0
time, NULL types, arrays of different lengths (``unnest`` pads the short ones
with NULLs), any number of events, JSON nested thousands of levels deep. A
reader of the log cannot read such rows. It now refuses, before taking the
lock, what the layer's own checks refuse (``karr_db.limits``, as they are at
this revision):

* arguments NULL, arrays of more than one dimension or of unequal lengths,
  more than 10,000 events in one call;
* a time that is not finite or falls outside the years 1-9999 in UTC;
* an event type NULL or longer than 1,000 bytes, a source id longer than
  1,000 bytes;
* data whose JSON text is longer than 2,000,000 bytes (twice the layer's
  1,000,000-byte bound on compact text: ``jsonb`` prints spaces the compact
  form does not), or nested deeper than 64 levels (counted as the layer
  counts: the outermost array or object is level 1).

Each refusal is ``invalid_parameter_value`` (22023) naming the event by its
position, or ``datetime_field_overflow`` (22008) for the time.
"""

from alembic import op

from karr_db.migrations import frozen, ops

revision: str = "0012"
down_revision: str | None = "0011"

FUNCTION = "karr_append_events"
_MAX_EVENTS = 10_000
_MAX_INDEXED_BYTES = 1_000
_MAX_DATA_TEXT_BYTES = 2_000_000
_MAX_DEPTH = 64

_APPEND_BODY = f"""
DECLARE
    ids bigint[];
    total integer;
    bad bigint;
BEGIN
    IF event_types IS NULL OR source_ids IS NULL OR payloads IS NULL OR created IS NULL THEN
        RAISE EXCEPTION 'karr_append_events: no argument may be NULL' USING ERRCODE = '22023';
    END IF;
    total := cardinality(event_types);
    IF coalesce(array_ndims(event_types), 1) <> 1 OR coalesce(array_ndims(source_ids), 1) <> 1
        OR coalesce(array_ndims(payloads), 1) <> 1
        OR cardinality(source_ids) <> total OR cardinality(payloads) <> total THEN
        RAISE EXCEPTION 'karr_append_events: the arrays must have one dimension and one length'
            USING ERRCODE = '22023';
    END IF;
    IF total > {_MAX_EVENTS} THEN
        RAISE EXCEPTION 'karr_append_events: % events in one call, more than {_MAX_EVENTS}', total
            USING ERRCODE = '22023';
    END IF;
    IF NOT isfinite(created) OR created < '0001-01-01 00:00:00+00'::timestamptz
        OR created >= '10000-01-01 00:00:00+00'::timestamptz THEN
        RAISE EXCEPTION 'karr_append_events: created % is outside the years 1-9999 (UTC)', created
            USING ERRCODE = '22008';
    END IF;
    SELECT n INTO bad
        FROM unnest(event_types, source_ids, payloads)
            WITH ORDINALITY AS t(event_type, source_id, data, n)
        WHERE event_type IS NULL OR octet_length(event_type) > {_MAX_INDEXED_BYTES}
            OR octet_length(source_id) > {_MAX_INDEXED_BYTES}
            OR octet_length(data::text) > {_MAX_DATA_TEXT_BYTES}
        ORDER BY n LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'karr_append_events: event % (from 1): NULL or too long', bad
            USING ERRCODE = '22023';
    END IF;
    WITH RECURSIVE walk(n, value, depth) AS (
        SELECT t.n, t.data, 1
            FROM unnest(payloads) WITH ORDINALITY AS t(data, n)
            WHERE jsonb_typeof(t.data) IN ('object', 'array')
        UNION ALL
        SELECT walk.n, child.value, walk.depth + 1
            FROM walk CROSS JOIN LATERAL (
                SELECT e.value FROM jsonb_each(
                    CASE WHEN jsonb_typeof(walk.value) = 'object' THEN walk.value END) AS e
                UNION ALL
                SELECT a.value FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(walk.value) = 'array' THEN walk.value END) AS a
            ) AS child
            WHERE walk.depth <= {_MAX_DEPTH} AND jsonb_typeof(child.value) IN ('object', 'array')
    )
    SELECT min(walk.n) INTO bad FROM walk WHERE walk.depth > {_MAX_DEPTH};
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'karr_append_events: event % (from 1): data nested too deep', bad
            USING ERRCODE = '22023';
    END IF;
{frozen.APPEND_EVENTS_TAIL}"""

#: The same signature, owner, search_path and grants as revision 0008's: only the body changes.
_POSTGRESQL = f"""
DO $do$
BEGIN
    EXECUTE format(
        $f$CREATE OR REPLACE FUNCTION {FUNCTION}(
            event_types text[], source_ids text[], payloads jsonb[], created timestamptz
        ) RETURNS bigint[] LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = %I, pg_temp
        AS $body${_APPEND_BODY.replace("%", "%%")}$body$$f$,
        current_schema()
    );
END
$do$
"""

contract = ops.RevisionContract(
    reference_schema_version=None,
    guards=(
        ops.PostgresFunction(
            FUNCTION,
            _APPEND_BODY,
            security_definer=True,
            search_path="{schema}, pg_temp",
        ),
    ),
)


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_POSTGRESQL.strip())
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
