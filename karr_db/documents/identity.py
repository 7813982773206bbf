"""A document's identity: its canonical JSON text and the run id derived from it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from karr_db.models.types import dumps_document, encode_json

#: Namespace of content-derived run ids. Never change it: every stored id
#: depends on it.
RUN_ID_NAMESPACE = uuid.UUID("6f1f3a52-58c1-4d8e-9a57-2b0c7d1e4a90")


def canonical_json(document: Any) -> str:
    """The one text of a document that its id is derived from (key order ignored)."""
    if _string_keys_only(document):
        return dumps_document(document, sort_keys=True)
    return json.dumps(
        encode_json(document),
        sort_keys=True,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )


def _string_keys_only(value: Any) -> bool:
    """Whether every object key is a string (always true of parsed JSON)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _string_keys_only(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_string_keys_only(v) for v in value)
    return True


def run_id_for(document: Any) -> str:
    """The content-derived run id: UUIDv5 of the canonical JSON, as a full UUID string."""
    return run_id_of(canonical_json(document))


def run_id_of(canonical: str) -> str:
    return str(uuid.uuid5(RUN_ID_NAMESPACE, canonical))


def clean_text(canonical: str) -> bool:
    """Whether the canonical text of a parsed JSON document shows no string both
    dialects cannot store: ``json.dumps`` escapes NUL as ``\\u0000`` and writes
    lone surrogates raw (which UTF-8 refuses)."""
    if "\\u0000" in canonical:
        return False
    try:
        canonical.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
