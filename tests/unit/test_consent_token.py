"""Rule 15: consent links are unguessable bearer secrets, and only their SHA-256 hash is ever stored."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from mci.domain.consent_token import new_token, plausible, same_hash, token_hash

URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_a_token_carries_at_least_128_random_bits() -> None:
    token = new_token()
    assert URLSAFE.match(token), token
    assert len(token) * 6 >= 128  # each URL-safe base64 character carries 6 bits
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) * 8 >= 128


def test_tokens_never_repeat() -> None:
    tokens = [new_token() for _ in range(20_000)]
    assert len(set(tokens)) == len(tokens)
    # No shared prefix long enough to hint at a counter or a clock inside the token.
    assert len({t[:8] for t in tokens}) > 19_900


def test_every_new_token_passes_the_shape_check() -> None:
    assert all(plausible(new_token()) for _ in range(1_000))


def test_the_stored_form_is_the_sha256_hex_digest() -> None:
    token = new_token()
    digest = token_hash(token)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert token not in digest
    assert token_hash(new_token()) != digest


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "x" * 42,
        "x" * 44,
        "x" * 500,
        "../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaa",
        "a" * 42 + "=",
        "a" * 42 + "/",
        "a" * 42 + " ",
        "a" * 42 + "é",
        "a" * 42 + "\n",
    ],
)
def test_malformed_tokens_are_not_plausible(text: str) -> None:
    assert not plausible(text)


def test_same_hash_compares_digests_and_refuses_missing_ones() -> None:
    digest = token_hash(new_token())
    assert same_hash(digest, str(digest))
    assert not same_hash(digest, token_hash(new_token()))
    assert not same_hash(None, digest)
    assert not same_hash(digest, None)
    assert not same_hash(None, None)


def test_a_valid_shape_followed_by_a_newline_is_not_plausible() -> None:
    # re.match with "$" would accept it: "$" also matches before a trailing newline.
    assert not plausible(new_token() + "\n")
