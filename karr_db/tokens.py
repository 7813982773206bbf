"""Agent tokens: generated here, shown once, stored only as a SHA-256 digest.

The stored form is KITT's (its schema 4): ``agents.token_hash`` holds the
SHA-256 hex digest of the token text (UTF-8), ``agents.token_prefix`` its first
eight characters for display, and ``agents.token`` is empty. So an agent
registered through KITT authenticates through karr_db and the other way round.
Comparison is always constant time (:func:`hmac.compare_digest`).

Why plain SHA-256 and not a slow password hash (bcrypt, scrypt, argon2): a
slow hash exists to make guessing a *low-entropy* secret expensive. The tokens
issued here carry 256 random bits, so no guessing attack is feasible whatever
the hash costs, and a single SHA-256 keeps verification cheap on every agent
request.

That argument holds only for high-entropy tokens, so a token the caller
brings (KITT's agents generate their own) must pass :func:`token_problem`: at
least :data:`MIN_TOKEN_LENGTH` printable characters, not one string repeated,
and an estimated :data:`MIN_TOKEN_BITS` bits in the part after the shown
prefix (the first :data:`PREFIX_LENGTH` characters are stored in clear).
Tokens from ``secrets`` (``token_hex(20)``, ``token_urlsafe(30)`` or longer)
pass with a margin (the lowest estimate of 20,000 ``token_hex(20)`` was 91
bits); short passwords, repeated words and runs of one character do not. It
is a guard against the obviously weak, not a proof of randomness.

Older forms still verify, and the repository moves them to ``token_hash`` on
first use: a plaintext token in ``token`` (KITT before schema 4), karr_db's
earlier ``sha256$<hex>`` digest in ``token``, and a digest of that digest
(what KITT's schema-4 migration made of karr_db's form when it ran on a karr_db
database: its ``token_prefix`` starts with ``sha256$``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections import Counter

__all__ = [
    "HASH_PREFIX",
    "PREFIX_LENGTH",
    "generate_token",
    "hash_token",
    "matches",
    "token_prefix",
    "token_problem",
]

#: Marks a digest karr_db once stored in ``agents.token``; anything else there is
#: a plaintext token of KITT's before its schema 4.
HASH_PREFIX = "sha256$"
#: How much of a token ``token_prefix`` shows.
PREFIX_LENGTH = 8
#: Random bytes per token (256 bits).
TOKEN_BYTES = 32
#: The shortest token a caller may bring: its first ``PREFIX_LENGTH`` characters
#: are shown, so 32 more stay secret.
MIN_TOKEN_LENGTH = 40
#: The longest (a bound on what is hashed per request).
MAX_TOKEN_LENGTH = 512
#: The least estimated entropy of a caller's token, in bits.
MIN_TOKEN_BITS = 80


def generate_token() -> str:
    """A fresh URL-safe token with 256 bits of randomness."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The value stored in ``agents.token_hash`` for ``token``: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_prefix(token: str) -> str:
    """The value stored in ``agents.token_prefix``: what a user may see of the token."""
    return token[:PREFIX_LENGTH]


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def matches(token_hash: str | None, prefix: str | None, legacy: str | None, presented: str) -> bool:
    """Constant-time check of a presented token against an agent's stored columns.

    ``token_hash`` decides when it is set; else ``legacy`` (the ``token``
    column) does. Nothing stored, or an empty presented token, never matches
    (KITT lets an agent without any token through; karr_db does not).
    """
    if not presented:
        return False
    if token_hash:
        if prefix and prefix.startswith(HASH_PREFIX):
            # KITT's schema-4 migration digested karr_db's sha256$ form once more.
            return _same(token_hash, hash_token(HASH_PREFIX + hash_token(presented)))
        return _same(token_hash, hash_token(presented))
    if not legacy:
        return False
    if legacy.startswith(HASH_PREFIX):
        return _same(legacy, HASH_PREFIX + hash_token(presented))
    return _same(legacy, presented)


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
    # The prefix is stored and shown in clear: only what follows it is secret.
    secret = token[PREFIX_LENGTH:]
    counts = Counter(secret).values()
    bits = -sum(n * math.log2(n / len(secret)) for n in counts)
    if bits < MIN_TOKEN_BITS:
        return f"too weak: about {bits:.0f} bits of entropy, at least {MIN_TOKEN_BITS} needed"
    return None
