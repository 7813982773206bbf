"""Agent tokens: generated here, shown once, stored only as a one-way hash.

Why plain SHA-256 and not a slow password hash (bcrypt, scrypt, argon2): a
slow hash exists to make guessing a *low-entropy* secret expensive. The tokens
issued here carry 256 random bits, so no guessing attack is feasible whatever
the hash costs, and a single SHA-256 keeps verification cheap on every agent
request. The stored form is ``sha256$<64 hex digits>``; comparison is always
constant time (:func:`hmac.compare_digest`).

That argument holds only for high-entropy tokens, so a token the caller
brings (KITT's agents generate their own) must pass :func:`token_problem`: at
least :data:`MIN_TOKEN_LENGTH` printable characters, not one string repeated,
and an estimated :data:`MIN_TOKEN_BITS` bits. Tokens from ``secrets``
(``token_hex(16)``, ``token_urlsafe(24)`` or longer) pass with a wide margin
(the lowest estimate of 20,000 ``token_hex(16)`` was 94 bits); short
passwords, repeated words and runs of one character do not. It is a guard
against the obviously weak, not a proof of randomness.

Tokens written in plain text by the earlier system (any stored value without
the ``sha256$`` prefix) still verify, by constant-time comparison with the
stored value, and the repository replaces them with their hash on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections import Counter

__all__ = [
    "HASH_PREFIX",
    "generate_token",
    "hash_token",
    "is_hashed",
    "matches",
    "prefix",
    "token_problem",
]

#: Marks a stored value as a hash; anything else is a legacy plaintext token.
HASH_PREFIX = "sha256$"
#: Random bytes per token (256 bits).
TOKEN_BYTES = 32
#: The shortest token a caller may bring.
MIN_TOKEN_LENGTH = 32
#: The longest (a bound on what is hashed per request).
MAX_TOKEN_LENGTH = 512
#: The least estimated entropy of a caller's token, in bits.
MIN_TOKEN_BITS = 80


def generate_token() -> str:
    """A fresh URL-safe token with 256 bits of randomness."""
    return secrets.token_urlsafe(TOKEN_BYTES)


#: How many leading characters of a token are stored to tell tokens apart on a
#: screen (KITT's ``token_prefix``); the rest of a generated token keeps over 200
#: random bits.
PREFIX_LENGTH = 8


def prefix(token: str) -> str:
    """The part of ``token`` shown to users (``agents.token_prefix``)."""
    return token[:PREFIX_LENGTH]


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


def token_problem(token: str) -> str | None:
    """Why a caller-supplied token is refused, or ``None`` when it is acceptable.

    The entropy estimate is the length times the Shannon entropy of the
    token's own character frequencies: close to (a little under) the strength
    of a random token, and far under the alphabet's worth for text with few
    distinct symbols or with repeats.
    """
    if not isinstance(token, str) or not token:
        return "must not be empty"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"too weak: at least {MIN_TOKEN_LENGTH} characters, got {len(token)}"
    if len(token) > MAX_TOKEN_LENGTH:
        return f"at most {MAX_TOKEN_LENGTH} characters"
    if not all("!" <= c <= "~" for c in token):
        return "only printable ASCII characters without spaces"
    if token in (token + token)[1:-1]:
        return "too weak: one shorter string repeated"
    counts = Counter(token).values()
    bits = -sum(n * math.log2(n / len(token)) for n in counts)
    if bits < MIN_TOKEN_BITS:
        return f"too weak: about {bits:.0f} bits of entropy, at least {MIN_TOKEN_BITS} needed"
    return None
