"""The access-token codec keeps the claims of tokens it verified: only for the same string,
never past their expiry, and bounded."""
from __future__ import annotations

import uuid

from nexus_pyramid.services import tokens
from nexus_pyramid.services.tokens import make_codec

SETTINGS = {"jwt.secret": "s" * 40, "jwt.algorithm": "HS256", "jwt.access_token_ttl": 900}


def test_a_verified_token_is_checked_for_expiry_on_every_use(monkeypatch):
    codec = make_codec(SETTINGS)
    user_id = uuid.uuid4()
    token = codec.create_token(str(user_id), typ="access", ver=3)
    first = codec.decode_access(token)
    assert first["sub"] == user_id and first["ver"] == 3 and first["sid"] is None
    first["ver"] = 99  # a caller's change does not reach the kept claims
    assert codec.decode_access(token)["ver"] == 3
    assert token in codec._verified
    expires = codec._verified[token]["exp"]
    monkeypatch.setattr(tokens.time, "time", lambda: expires - 0.5)
    assert codec.decode_access(token) is not None
    monkeypatch.setattr(tokens.time, "time", lambda: expires)
    assert codec.decode_access(token) is None  # as PyJWT: expired once exp <= now


def test_only_the_exact_verified_string_is_taken_from_the_cache():
    codec = make_codec(SETTINGS)
    token = codec.create_token(str(uuid.uuid4()), typ="access", ver=0)
    assert codec.decode_access(token) is not None
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert codec.decode_access(forged) is None
    assert forged not in codec._verified  # a failure is never kept
    other = make_codec({**SETTINGS, "jwt.secret": "t" * 40})  # another app's codec: its own cache
    assert other.decode_access(token) is None


def test_the_cache_is_bounded_oldest_first(monkeypatch):
    monkeypatch.setattr(tokens.TokenCodec, "VERIFIED_CACHE_SIZE", 3)
    codec = make_codec(SETTINGS)
    issued = [codec.create_token(str(uuid.uuid4()), typ="access", ver=0) for _ in range(5)]
    for token in issued:
        assert codec.decode_access(token) is not None
    assert list(codec._verified) == issued[2:]
    assert codec.decode_access(issued[0]) is not None  # verified again, then kept again
    assert list(codec._verified) == issued[3:] + issued[:1]
