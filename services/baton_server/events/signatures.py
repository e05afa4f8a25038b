"""Checking a webhook request: an HMAC-SHA256 signature (GitHub or Stripe style) or a token.

- GitHub: `X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(secret, body)>`.
- Stripe: `Stripe-Signature: t=<unix time>,v1=<hex of HMAC-SHA256(secret, "<t>.<body>")>`,
  possibly several `v1` (during a secret's rotation); `t` must be within the tolerance of now,
  so a captured request cannot be replayed later.
- A token: the header's value is the token, or `Bearer <token>`.

Comparisons are constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def github_signature(secret: str, body: bytes) -> str:
    return f"sha256={_hex_hmac(secret, body)}"


def stripe_signature(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_hex_hmac(secret, f'{timestamp}.'.encode() + body)}"


def verify_github(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(header.strip().encode(), github_signature(secret, body).encode())


def verify_stripe(secret: str, body: bytes, header: str | None, *, now: float, tolerance: float) -> bool:
    if not header:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance:
        return False
    expected = _hex_hmac(secret, f"{timestamp}.".encode() + body).encode()
    # every candidate is compared, so the time taken does not tell which one matched
    return any([hmac.compare_digest(s.encode(), expected) for s in signatures])


def verify_token(token: str, header: str | None) -> bool:
    if not header:
        return False
    value = header.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return hmac.compare_digest(value.encode(), token.encode())
