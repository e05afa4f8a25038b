"""Webhook request checks: GitHub- and Stripe-style HMAC signatures and shared tokens."""

from __future__ import annotations

from baton_server.events.signatures import (
    github_signature,
    stripe_signature,
    verify_github,
    verify_stripe,
    verify_token,
)

SECRET = "s3cret-value"
BODY = b'{"ref": "refs/heads/main"}'


def test_github_signatures() -> None:
    assert verify_github(SECRET, BODY, github_signature(SECRET, BODY))
    assert not verify_github(SECRET, BODY, github_signature("other-secret", BODY))
    assert not verify_github(SECRET, BODY + b" ", github_signature(SECRET, BODY))
    assert not verify_github(SECRET, BODY, None)
    assert not verify_github(SECRET, BODY, "sha1=abc")


def test_stripe_signatures_are_bound_to_their_time() -> None:
    now = 1_700_000_000
    header = stripe_signature(SECRET, BODY, now)
    assert verify_stripe(SECRET, BODY, header, now=now + 10, tolerance=300)
    assert not verify_stripe(SECRET, BODY, header, now=now + 301, tolerance=300)  # a replay
    assert not verify_stripe("other-secret", BODY, header, now=now, tolerance=300)
    rotating = f"{header},v1={'0' * 64}"  # several v1 during a rotation: any may match
    assert verify_stripe(SECRET, BODY, rotating, now=now, tolerance=300)
    assert not verify_stripe(SECRET, BODY, "v1=abc", now=now, tolerance=300)


def test_tokens_plain_or_bearer() -> None:
    assert verify_token("tok-12345678", "tok-12345678")
    assert verify_token("tok-12345678", "Bearer tok-12345678")
    assert not verify_token("tok-12345678", "tok-1234567")
    assert not verify_token("tok-12345678", None)
