"""Agent tokens: generated here, shown once, stored only as a one-way hash.

Why plain SHA-256 and not a slow password hash (bcrypt, scrypt, argon2): a
slow hash exists to make guessing a *low-entropy* secret expensive. The tokens
issued here carry 256 random bits, so no guessing attack is feasible whatever
the hash costs, and a single SHA-256 keeps verification cheap on every agent
request. The stored form is ``sha256$<64 hex digits>``; comparison is always
constant time (:func:`hmac.compare_digest`).

Tokens written in plain text by the earlier system (any stored value without
the ``sha256$`` prefix) still verify, by constant-time comparison with the
stored value, and the repository replaces them with their hash on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "HASH_PREFIX",
    "generate_token",
    "hash_token",
    "is_hashed",
    "matches",
]

#: Marks a stored value as a hash; anything else is a legacy plaintext token.
HASH_PREFIX = "sha256$"
#: Random bytes per token (256 bits).
TOKEN_BYTES = 32


def generate_token() -> str:
    """A fresh URL-safe token with 256 bits of randomness."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The value stored in ``agents.token`` for ``token``."""
    return HASH_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_hashed(stored: str) -> bool:
    """Whether a stored value is a hash (else a legacy plaintext token)."""
    return stored.startswith(HASH_PREFIX)


def matches(stored: str | None, presented: str) -> bool:
    """Constant-time check of a presented token against the stored value.

    A missing or empty stored value never matches, and neither does an empty
    presented token (the earlier system could leave ``''`` in the column).
    """
    if not stored or not presented:
        return False
    # A legacy plaintext value is compared with the presented secret itself.
    presented_form = hash_token(presented) if is_hashed(stored) else presented
    return hmac.compare_digest(stored.encode("utf-8"), presented_form.encode("utf-8"))
